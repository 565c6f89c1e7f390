"""Studio flows as stored definitions, and their executions with a step log."""

from django.db import models
from django.db.models import Q


class Flow(models.Model):
    """A named bot flow; what runs is its published revision."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    published = models.ForeignKey(
        "FlowRevision",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The revision new executions start on.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FlowRevision(models.Model):
    """One version of a flow's Studio definition, unchanged, with its id mapping."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    definition = models.JSONField(help_text="The Studio flow definition, as exported.")
    mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text="Twilio ids in the definition and the local names they stand for.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["flow", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["flow", "number"], name="unique_flow_revision"
            )
        ]

    def __str__(self) -> str:
        return f"{self.flow.name} r{self.number}"


class ExecutionStatus(models.TextChoices):
    ACTIVE = "active", "Running"
    WAITING = "waiting", "Waiting for a reply"
    ENDED = "ended", "Ended"
    FAILED = "failed", "Stopped"


LIVE_EXECUTION = Q(status__in=["active", "waiting"])


class Execution(models.Model):
    """One run of a flow for one contact: where it is, what it knows, what it did."""

    revision = models.ForeignKey(
        FlowRevision, on_delete=models.PROTECT, related_name="executions"
    )
    conversation = models.ForeignKey(
        "bots.Conversation",
        on_delete=models.PROTECT,
        related_name="executions",
        null=True,
        blank=True,
    )
    contact_address = models.CharField(max_length=100)
    channel_address = models.CharField(max_length=100)
    status = models.CharField(
        max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.ACTIVE
    )
    state = models.JSONField(
        default=dict, help_text="The engine's state: frames, context, counters."
    )
    waiting_widget = models.CharField(max_length=200, blank=True)
    wait_deadline = models.DateTimeField(null=True, blank=True)
    last_input_id = models.BigIntegerField(
        null=True, blank=True, help_text="The last inbound message this execution read."
    )
    end_reason = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=LIVE_EXECUTION,
                name="one_live_execution_per_conversation",
            )
        ]
        indexes = [
            models.Index(
                fields=["wait_deadline"],
                condition=Q(status="waiting"),
                name="execution_wait_deadline_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.revision} for {self.contact_address} ({self.status})"

    @property
    def sid(self) -> str:
        """A Studio-style execution id (`FN...`), as flows read in `flow.sid`."""
        return f"FN{self.pk:032x}"


class ExecutionStep(models.Model):
    """Append-only log of an execution: each widget run, its event and what changed."""

    execution = models.ForeignKey(
        Execution, on_delete=models.CASCADE, related_name="steps"
    )
    flow_name = models.CharField(max_length=100)
    widget = models.CharField(max_length=200)
    widget_type = models.CharField(max_length=64)
    event = models.CharField(max_length=64, blank=True)
    next = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.widget} → {self.event}"
