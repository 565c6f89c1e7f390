from django.urls import path

from agents.consumers import ConsoleConsumer
from agents.supervisor import SupervisorConsumer
from bots.simulator.consumers import SimulatorConsumer

websocket_urlpatterns = [
    path("ws/simulator/", SimulatorConsumer.as_asgi()),
    path("ws/console/", ConsoleConsumer.as_asgi()),
    path("ws/supervisor/", SupervisorConsumer.as_asgi()),
]
