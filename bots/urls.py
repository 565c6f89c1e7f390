from django.urls import include, path

from bots import api, webhooks

urlpatterns = [
    path(
        "webhooks/twilio/messaging", webhooks.messaging_webhook, name="twilio-messaging"
    ),
    path("webhooks/twilio/status", webhooks.status_webhook, name="twilio-status"),
    path("simulator/", include("bots.simulator.urls")),
    path(
        "api/flows/<slug:name>/executions",
        api.start_execution,
        name="flow-executions",
    ),
]
