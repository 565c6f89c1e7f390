from django.urls import include, path

from bots import webhooks

urlpatterns = [
    path(
        "webhooks/twilio/messaging", webhooks.messaging_webhook, name="twilio-messaging"
    ),
    path("webhooks/twilio/status", webhooks.status_webhook, name="twilio-status"),
    path("simulator/", include("bots.simulator.urls")),
]
