"""Development backend: the message goes to the customer simulator at /simulator/.

Nothing leaves the machine. The simulator's phone page shows the stored message
live and reports it delivered and read through the real, signed status webhook.
"""

import uuid

from bots.messaging.backends.base import BaseBackend, OutboundMessage, SendResult


class SimulatorBackend(BaseBackend):
    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(sid=f"SM{uuid.uuid4().hex}", status="sent")
