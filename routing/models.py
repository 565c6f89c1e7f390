"""Routing records. For now the minimum the bot's send-to-flex needs: a task, in a
workflow, on a task channel. The routing engine builds on these."""

from django.db import models


class Workflow(models.Model):
    """Decides which queue and worker a task goes to (TaskRouter's workflow)."""

    name = models.CharField(max_length=100, unique=True)
    sid = models.CharField(
        "Twilio SID",
        max_length=34,
        blank=True,
        help_text="Its WW... id in Twilio, so that imported flows find it.",
    )
    configuration = models.JSONField(default=dict, blank=True)
    task_reservation_timeout = models.PositiveIntegerField(default=120)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TaskChannel(models.Model):
    """A kind of work (`chat`, `sms`, `voice`...), as TaskRouter names it."""

    unique_name = models.SlugField(max_length=64, unique=True)
    friendly_name = models.CharField(max_length=100, blank=True)
    sid = models.CharField("Twilio SID", max_length=34, blank=True)

    class Meta:
        ordering = ["unique_name"]

    def __str__(self) -> str:
        return self.unique_name


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RESERVED = "reserved", "Reserved"
    ASSIGNED = "assigned", "Assigned"
    WRAPPING = "wrapping", "Wrapping"
    COMPLETED = "completed", "Completed"
    CANCELED = "canceled", "Canceled"


class Task(models.Model):
    """A piece of work waiting for a person: generic, described by its attributes."""

    workflow = models.ForeignKey(
        Workflow, on_delete=models.PROTECT, related_name="tasks"
    )
    channel = models.ForeignKey(
        TaskChannel, on_delete=models.PROTECT, related_name="tasks"
    )
    attributes = models.JSONField(default=dict, blank=True)
    priority = models.IntegerField(default=0)
    timeout = models.PositiveIntegerField(default=86400, help_text="Seconds to live.")
    status = models.CharField(
        max_length=16, choices=TaskStatus.choices, default=TaskStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "created_at"]

    def __str__(self) -> str:
        return f"Task {self.pk} ({self.status})"
