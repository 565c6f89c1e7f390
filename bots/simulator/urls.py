from django.urls import path

from bots.simulator import views

urlpatterns = [
    path("", views.phone, name="simulator"),
    path("send", views.send, name="simulator-send"),
    path("receipt/<int:message_id>", views.receipt, name="simulator-receipt"),
]
