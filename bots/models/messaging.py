"""Channels, contacts, conversations and messages: the messaging edge."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ChannelKind(models.TextChoices):
    WHATSAPP = "whatsapp", "WhatsApp"
    MESSENGER = "messenger", "Messenger"
    SMS = "sms", "SMS"


def kind_of_address(address: str) -> str:
    """The channel of an address: `whatsapp:+1...`, `messenger:123...`, a number."""
    prefix = address.split(":", 1)[0].lower() if ":" in address else ""
    if prefix == "whatsapp":
        return ChannelKind.WHATSAPP
    if prefix == "messenger":
        return ChannelKind.MESSENGER
    return ChannelKind.SMS


class Sender(models.Model):
    """One of our addresses customers write to (a WhatsApp number, a Facebook page)."""

    address = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    friendly_name = models.CharField(max_length=100, blank=True)
    flow = models.ForeignKey(
        "bots.Flow",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="senders",
        help_text="The flow a customer's message starts when no flow is running.",
    )
    messaging_service_sid = models.CharField(
        "Messaging Service SID",
        max_length=34,
        blank=True,
        help_text="Send through this Twilio Messaging Service instead of the address.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]

    def __str__(self) -> str:
        return self.friendly_name or self.address


class Contact(models.Model):
    """A customer, as one address on one channel."""

    address = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    profile_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return (
            f"{self.profile_name} ({self.address})"
            if self.profile_name
            else self.address
        )


class Phase(models.TextChoices):
    BOT = "bot", "With the bot"
    QUEUED = "queued", "Waiting for an agent"
    AGENT = "agent", "With an agent"
    CLOSED = "closed", "Closed"


OPEN_PHASES = (Phase.BOT, Phase.QUEUED, Phase.AGENT)


class Conversation(models.Model):
    """The exchange between a contact and a sender; at most one open at a time."""

    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, related_name="conversations"
    )
    sender = models.ForeignKey(
        Sender, on_delete=models.PROTECT, related_name="conversations"
    )
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.BOT)
    task = models.ForeignKey(
        "routing.Task",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        help_text="The routing task for this conversation, once handed to agents.",
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "sender"],
                condition=~Q(phase="closed"),
                name="one_open_conversation_per_contact_and_sender",
            )
        ]

    def __str__(self) -> str:
        return f"{self.contact} ↔ {self.sender} ({self.get_phase_display()})"


class Template(models.Model):
    """An approved WhatsApp message template, with `{{1}}`-style placeholders."""

    name = models.SlugField(max_length=100)
    language = models.CharField(max_length=16, default="es")
    body = models.TextField(
        help_text="Text with numbered placeholders: {{1}}, {{2}}, ..."
    )
    buttons = models.JSONField(
        default=list,
        blank=True,
        help_text='Quick-reply buttons: [{"id": "confirm", "title": "Confirmar"}, ...]',
    )
    content_sid = models.CharField(
        "Content SID",
        max_length=34,
        blank=True,
        help_text="Twilio Content API SID (HX...) for sending it through Twilio.",
    )

    class Meta:
        ordering = ["name", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "language"], name="unique_template_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class Author(models.TextChoices):
    CONTACT = "contact", "Contact"
    BOT = "bot", "Bot"
    AGENT = "agent", "Agent"


class Status(models.TextChoices):
    RECEIVED = "received", "Received"
    SCHEDULED = "scheduled", "Scheduled"
    PENDING = "pending", "Pending"
    SUBMITTING = "submitting", "Submitting"
    ACCEPTED = "accepted", "Accepted"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"
    UNDELIVERED = "undelivered", "Undelivered"
    CANCELED = "canceled", "Canceled"


# An outbound message's status only moves forward along this order; the final
# statuses end it. A late callback (a `sent` after `delivered`) changes nothing.
STATUS_RANK = {
    Status.SCHEDULED: 0,
    Status.PENDING: 0,
    Status.SUBMITTING: 1,
    Status.ACCEPTED: 2,
    Status.QUEUED: 2,
    Status.SENDING: 3,
    Status.SENT: 4,
    Status.DELIVERED: 5,
    Status.READ: 6,
}
FINAL_STATUSES = (Status.READ, Status.FAILED, Status.UNDELIVERED, Status.CANCELED)


class Message(models.Model):
    """One message, either way. Inbound rows keep every raw webhook field."""

    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.PROTECT,
        related_name="messages",
        null=True,
        blank=True,
        help_text="Empty until an inbound message has been processed.",
    )
    direction = models.CharField(max_length=8, choices=Direction.choices)
    author = models.CharField(max_length=8, choices=Author.choices)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="messages_sent",
    )
    from_address = models.CharField(max_length=100)
    to_address = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    media = models.JSONField(
        default=list, blank=True, help_text='[{"url": ..., "content_type": ...}]'
    )
    template = models.ForeignKey(
        Template,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="messages",
    )
    template_variables = models.JSONField(default=dict, blank=True)
    provider_sid = models.CharField(
        "Provider SID", max_length=64, unique=True, null=True, blank=True
    )
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.CharField(max_length=16, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    raw = models.JSONField(
        default=dict, blank=True, help_text="The webhook's fields, unchanged."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    send_at = models.DateTimeField(
        null=True, blank=True, help_text="For a scheduled message: when to send it."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="For an inbound message: when it was processed.",
    )

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The sweeper's reads: unprocessed inbound, due scheduled or retried sends.
            models.Index(
                fields=["created_at"],
                condition=Q(direction="inbound", processed_at__isnull=True),
                name="message_unprocessed_idx",
            ),
            models.Index(
                fields=["send_at"],
                condition=Q(status="scheduled"),
                name="message_scheduled_idx",
            ),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="message_pending_idx",
            ),
            models.Index(
                fields=["updated_at"],
                condition=Q(status="submitting"),
                name="message_submitting_idx",
            ),
            models.Index(
                fields=["conversation", "created_at"], name="message_transcript_idx"
            ),
            models.Index(
                fields=["from_address", "to_address", "created_at"],
                name="message_thread_idx",
            ),
        ]

    def __str__(self) -> str:
        arrow = "←" if self.direction == Direction.INBOUND else "→"
        text = self.body[:40] or (f"[{len(self.media)} media]" if self.media else "")
        return f"{arrow} {text}"

    @property
    def awaiting_receipt(self) -> bool:
        """Handed to the provider, not yet known delivered."""
        return bool(self.provider_sid) and self.status in (
            Status.ACCEPTED,
            Status.QUEUED,
            Status.SENDING,
            Status.SENT,
        )

    @property
    def customer_address(self) -> str:
        return (
            self.from_address
            if self.direction == Direction.INBOUND
            else self.to_address
        )

    @property
    def our_address(self) -> str:
        return (
            self.to_address
            if self.direction == Direction.INBOUND
            else self.from_address
        )


class MessageEvent(models.Model):
    """Append-only log of a message's status changes and send attempts."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="events"
    )
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.CharField(max_length=16, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.status} {self.error_code}".strip()
