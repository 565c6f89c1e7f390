"""Keeps sent messages in `bots.messaging.outbox`, for tests to assert on."""

import uuid

from bots import messaging
from bots.messaging.backends.base import BaseBackend, OutboundMessage, SendResult


class LocmemBackend(BaseBackend):
    def send(self, message: OutboundMessage) -> SendResult:
        messaging.outbox.append(message)
        return SendResult(sid=f"SM{uuid.uuid4().hex}", status="queued")
