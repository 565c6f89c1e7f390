"""Sending messages to customers. See `api.send`.

`outbox` collects what the locmem backend sent, as `django.core.mail.outbox` does.
"""

from bots.messaging.backends.base import OutboundMessage

outbox: list[OutboundMessage] = []

from bots.messaging.api import (  # noqa: E402
    MessagingError,
    NotCancellable,
    OutsideWhatsAppWindow,
    ScheduleOutOfRange,
    TemplateVariableMissing,
    cancel,
    get_backend,
    send,
)

__all__ = [
    "MessagingError",
    "NotCancellable",
    "OutboundMessage",
    "OutsideWhatsAppWindow",
    "ScheduleOutOfRange",
    "TemplateVariableMissing",
    "cancel",
    "get_backend",
    "outbox",
    "send",
]
