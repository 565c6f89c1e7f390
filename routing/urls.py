"""`/api/routing/`: routing statistics as JSON (see routing.views)."""

from django.urls import path

from routing import views

app_name = "routing"

urlpatterns = [
    path("queues", views.queue_list, name="queues"),
    path("queues/<int:queue_id>", views.queue_detail, name="queue"),
    path("statistics", views.statistics, name="statistics"),
    path(
        "workers/<int:worker_id>/activity",
        views.worker_activity,
        name="worker-activity",
    ),
]
