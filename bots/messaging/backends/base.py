"""The shape every outbound backend has, in the manner of Django's email backends."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutboundMessage:
    """What a backend needs to send one message; built from a stored Message."""

    id: int
    from_address: str
    to_address: str
    body: str = ""
    media_urls: tuple[str, ...] = ()
    messaging_service_sid: str = ""
    content_sid: str = ""
    content_variables: dict[str, str] = field(default_factory=dict)
    quick_replies: tuple[dict[str, str], ...] = ()
    status_callback: str = ""


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str = "queued"


class SendError(Exception):
    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class PermanentSendError(SendError):
    """Sending again cannot help (an invalid number, outside the WhatsApp window)."""


class TransientSendError(SendError):
    """Worth retrying later (a timeout, a 5xx, a 429)."""


class BaseBackend:
    """Sends one message to the provider and says what the provider called it."""

    def send(self, message: OutboundMessage) -> SendResult:
        raise NotImplementedError("subclasses of BaseBackend must implement send()")
