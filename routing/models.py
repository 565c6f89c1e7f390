"""TaskRouter's resources: activities, workers and their channels, queues,
workflows, tasks, reservations, and the append-only event log.

Every deadline is a column (a reservation's, a routing step's, a task's time to
live), read by beat's sweep through an index, so no timer is lost on a restart.
Times come from `routing.clock`, which `routesim` replaces with a virtual clock.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Activity(models.Model):
    """What a worker is doing; only workers in an available activity get offers."""

    name = models.CharField(max_length=64, unique=True)
    available = models.BooleanField(default=False)
    sid = models.CharField("Twilio SID", max_length=34, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "activities"

    def __str__(self) -> str:
        return f"{self.name} ({'available' if self.available else 'unavailable'})"


class Workspace(models.Model):
    """The one workspace: the activity new workers start in, and the one a worker
    whose offer timed out is moved to."""

    default_activity = models.ForeignKey(
        Activity, on_delete=models.PROTECT, related_name="+"
    )
    timeout_activity = models.ForeignKey(
        Activity, on_delete=models.PROTECT, related_name="+"
    )

    def __str__(self) -> str:
        return "Workspace"


class Worker(models.Model):
    """A person who takes tasks, described by attributes that queues match on."""

    name = models.CharField(max_length=100)
    attributes = models.JSONField(default=dict, blank=True)
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="+")
    activity_changed_at = models.DateTimeField()
    last_task_ended_at = models.DateTimeField(null=True, blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="worker",
    )
    sid = models.CharField("Twilio SID", max_length=34, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="unique_worker_name_ci")
        ]

    def __str__(self) -> str:
        return self.name


class Workflow(models.Model):
    """Decides which queue and worker a task goes to (TaskRouter's workflow)."""

    name = models.CharField(max_length=100, unique=True)
    sid = models.CharField(
        "Twilio SID",
        max_length=34,
        blank=True,
        help_text="Its WW... id in Twilio, so that imported flows find it.",
    )
    configuration = models.JSONField(
        default=dict, blank=True, help_text="TaskRouter's workflow configuration."
    )
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


class WorkerChannel(models.Model):
    """How many tasks of one channel a worker can hold at once."""

    worker = models.ForeignKey(
        Worker, on_delete=models.CASCADE, related_name="channels"
    )
    channel = models.ForeignKey(TaskChannel, on_delete=models.CASCADE, related_name="+")
    capacity = models.PositiveSmallIntegerField(default=1)
    available = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "channel"], name="unique_worker_channel"
            ),
            models.CheckConstraint(
                condition=Q(capacity__lte=50), name="worker_channel_capacity_max_50"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.worker} · {self.channel} ×{self.capacity}"


class TaskOrder(models.TextChoices):
    FIFO = "FIFO", "First in, first out"
    LIFO = "LIFO", "Last in, first out"


class TaskQueue(models.Model):
    name = models.CharField(max_length=100, unique=True)
    target_workers = models.CharField(
        max_length=2000,
        default="1==1",
        help_text="Which workers belong, e.g. languages HAS 'es'. 1==1 is everyone.",
    )
    task_order = models.CharField(
        max_length=4, choices=TaskOrder.choices, default=TaskOrder.FIFO
    )
    max_reserved_workers = models.PositiveSmallIntegerField(default=1)
    sid = models.CharField("Twilio SID", max_length=34, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_reserved_workers__gte=1, max_reserved_workers__lte=50),
                name="queue_max_reserved_workers_1_to_50",
            )
        ]

    def __str__(self) -> str:
        return self.name


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RESERVED = "reserved", "Reserved"
    ASSIGNED = "assigned", "Assigned"
    WRAPPING = "wrapping", "Wrapping"
    COMPLETED = "completed", "Completed"
    CANCELED = "canceled", "Canceled"


LIVE_TASK = (TaskStatus.PENDING, TaskStatus.RESERVED)
HELD_TASK = (TaskStatus.ASSIGNED, TaskStatus.WRAPPING)


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
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="When an unassigned task is canceled.")
    # Where the workflow has put it: the filter and routing step, the step's queue,
    # the priority it gives, and when the step times out (on the task's age).
    filter_name = models.CharField(max_length=200, blank=True)
    filter_index = models.IntegerField(null=True, blank=True)
    target_index = models.IntegerField(null=True, blank=True)
    queue = models.ForeignKey(
        TaskQueue,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
    )
    routing_priority = models.IntegerField(default=0)
    target_expires_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    skipped = models.JSONField(
        default=list, blank=True, help_text="Routing steps skipped by their skip_if."
    )
    # A transfer routes straight to a queue or a worker, bypassing the workflow.
    direct_queue = models.ForeignKey(
        TaskQueue, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    direct_worker = models.ForeignKey(
        Worker, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    transferred_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-priority", "created_at"]
        indexes = [
            models.Index(
                fields=["queue", "-routing_priority", "created_at"],
                condition=Q(status="pending"),
                name="task_waiting_idx",
            ),
            models.Index(
                fields=["queue", "-routing_priority", "-created_at"],
                condition=Q(status="pending"),
                name="task_waiting_lifo_idx",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(status__in=["pending", "reserved"]),
                name="task_ttl_idx",
            ),
            models.Index(
                fields=["target_expires_at"],
                condition=Q(status__in=["pending", "reserved"]),
                name="task_target_deadline_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Task {self.pk} ({self.status})"


class ReservationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    TIMEOUT = "timeout", "Timed out"
    CANCELED = "canceled", "Canceled"
    RESCINDED = "rescinded", "Rescinded"
    WRAPPING = "wrapping", "Wrapping"
    COMPLETED = "completed", "Completed"


# Reservations that take a place of the worker's capacity on the channel.
BUSY_RESERVATION = (
    ReservationStatus.PENDING,
    ReservationStatus.ACCEPTED,
    ReservationStatus.WRAPPING,
)


class Reservation(models.Model):
    """A task offered to one worker, until they accept, reject or let it time out."""

    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, related_name="reservations"
    )
    worker = models.ForeignKey(
        Worker, on_delete=models.CASCADE, related_name="reservations"
    )
    channel = models.ForeignKey(TaskChannel, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16,
        choices=ReservationStatus.choices,
        default=ReservationStatus.PENDING,
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(status="pending"),
                name="reservation_deadline_idx",
            ),
            models.Index(
                fields=["worker", "channel", "status"], name="reservation_load_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "worker"],
                condition=Q(status="pending"),
                name="one_pending_reservation_per_task_and_worker",
            ),
            models.UniqueConstraint(
                fields=["task"],
                condition=Q(status__in=["accepted", "wrapping", "completed"]),
                name="one_accepted_reservation_per_task",
            ),
        ]

    def __str__(self) -> str:
        return f"Reservation {self.pk}: task {self.task_id} → {self.worker}"


class Event(models.Model):
    """Append-only log, with TaskRouter's event names (`reservation.accepted`)."""

    type = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(db_index=True)
    task = models.ForeignKey(
        Task, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    worker = models.ForeignKey(
        Worker, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    reservation = models.ForeignKey(
        Reservation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    queue = models.ForeignKey(
        TaskQueue, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.type} at {self.created_at:%Y-%m-%d %H:%M:%S}"
