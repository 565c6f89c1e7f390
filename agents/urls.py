from django.urls import path

from agents import supervisor, views

urlpatterns = [
    path("", views.console, name="console"),
    path("status", views.status, name="console-status"),
    path("offers/<int:reservation_id>/accept", views.accept, name="console-accept"),
    path("offers/<int:reservation_id>/reject", views.reject, name="console-reject"),
    path(
        "conversations/<int:conversation_id>",
        views.conversation,
        name="console-conversation",
    ),
    path("conversations/<int:conversation_id>/send", views.send, name="console-send"),
    path(
        "conversations/<int:conversation_id>/transfer",
        views.transfer,
        name="console-transfer",
    ),
    path(
        "conversations/<int:conversation_id>/complete",
        views.complete,
        name="console-complete",
    ),
    path("canned", views.canned, name="console-canned"),
    path("supervisor/", supervisor.dashboard, name="supervisor"),
    path(
        "supervisor/conversations/<int:conversation_id>",
        supervisor.conversation,
        name="supervisor-conversation",
    ),
    path(
        "supervisor/workers/<int:worker_id>/status",
        supervisor.worker_status,
        name="supervisor-worker-status",
    ),
    path(
        "supervisor/tasks/<int:task_id>/cancel",
        supervisor.cancel,
        name="supervisor-cancel",
    ),
    path(
        "supervisor/tasks/<int:task_id>/move", supervisor.move, name="supervisor-move"
    ),
]
