"""What the console adds: canned responses, wrap-up codes and the wrap-ups written."""

from django.conf import settings
from django.db import models


class CannedResponse(models.Model):
    """A ready answer an agent can search for and insert into the reply box."""

    title = models.CharField(max_length=100)
    body = models.TextField()
    shortcut = models.SlugField(max_length=40, blank=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Disposition(models.Model):
    """A wrap-up code: how a conversation ended (resolved, cancelled, callback...)."""

    code = models.SlugField(max_length=40, unique=True)
    label = models.CharField(max_length=100)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class WrapUp(models.Model):
    """What the agent wrote when completing a conversation."""

    conversation = models.ForeignKey(
        "bots.Conversation", on_delete=models.CASCADE, related_name="wrapups"
    )
    task = models.ForeignKey(
        "routing.Task", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wrapups"
    )
    disposition = models.ForeignKey(
        Disposition, on_delete=models.PROTECT, null=True, blank=True
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Wrap-up of conversation {self.conversation_id}"


class ReadMarker(models.Model):
    """The last message an agent has seen in a conversation: unread counts."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    conversation = models.ForeignKey(
        "bots.Conversation", on_delete=models.CASCADE, related_name="+"
    )
    last_message_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "conversation"], name="one_read_marker_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} read {self.conversation_id} up to {self.last_message_id}"


class Presence(models.Model):
    """When a worker's console last showed signs of life."""

    worker = models.OneToOneField(
        "routing.Worker", on_delete=models.CASCADE, related_name="presence"
    )
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.worker} seen {self.last_seen:%H:%M:%S}"
