"""Admin for supervisors managing routing: queues with live figures, workflows and
expressions checked on save, workers whose changes go through routing.services
(so that each is an event), tasks to cancel or move, and the read-only records."""

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Min, Q, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.html import format_html

from routing import clock, selectors, services
from routing.forms import (
    MoveToQueueForm,
    TaskQueueForm,
    WorkerChannelForm,
    WorkerForm,
    WorkflowForm,
    workflows_routing_to,
)
from routing.models import (
    BUSY_RESERVATION,
    HELD_TASK,
    LIVE_TASK,
    Activity,
    Event,
    Reservation,
    Task,
    TaskChannel,
    TaskQueue,
    Worker,
    WorkerChannel,
    Workflow,
    Workspace,
)


def pretty_json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


def duration(seconds: float) -> str:
    """`42 s`, `3 min 5 s`, `2 h 10 min`: a wait as a supervisor reads it."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


class ReadOnlyMixin:
    """A record: shown, never added, changed or deleted through admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class GuardedDeleteMixin:
    """Deleted one at a time, and only when `in_use` says nothing depends on it."""

    def in_use(self, obj: Any) -> bool:
        raise NotImplementedError

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and self.in_use(obj):
            return False
        return super().has_delete_permission(request, obj)  # type: ignore[misc]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        actions.pop("delete_selected", None)  # it would skip `in_use`
        return actions


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["name", "available"]
    list_filter = ["available"]
    search_fields = ["name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # TaskRouter fixes an activity's availability when it is created.
        return ["available"] if obj is not None else []


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "default_activity", "timeout_activity"]
    fields = ["default_activity", "timeout_activity"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not Workspace.objects.exists()  # there is only one

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# -- workers -----------------------------------------------------------------------


class WorkerChannelFormSet(BaseInlineFormSet):
    def save(self, commit: bool = True) -> list[Any]:
        """Each capacity change through services.set_worker_capacity: an event."""
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        for form in self.forms:
            if not form.has_changed() or not form.cleaned_data:
                continue
            row = services.set_worker_capacity(
                worker_id=self.instance.pk,
                channel=form.cleaned_data["channel"].unique_name,
                capacity=form.cleaned_data["capacity"],
                available=form.cleaned_data["available"],
            )
            if form.instance.pk is None:
                self.new_objects.append(row)
            else:
                self.changed_objects.append((row, form.changed_data))
        return [*self.new_objects, *(row for row, _ in self.changed_objects)]


class WorkerChannelInline(admin.TabularInline):
    model = WorkerChannel
    form = WorkerChannelForm
    formset = WorkerChannelFormSet
    extra = 0
    can_delete = False  # capacity 0 turns a channel off


@admin.register(Worker)
class WorkerAdmin(GuardedDeleteMixin, admin.ModelAdmin):
    form = WorkerForm
    list_display = ["name", "activity", "activity_changed_at", "user", "sid"]
    list_filter = ["activity"]
    search_fields = ["name", "sid"]
    list_select_related = ["activity", "user"]
    readonly_fields = ["activity_changed_at", "last_task_ended_at"]
    inlines = [WorkerChannelInline]

    def save_model(
        self, request: HttpRequest, obj: Worker, form: Any, change: bool
    ) -> None:
        """Activity and attributes change through routing.services: each change is
        an event, and waiting tasks are offered to whoever became able to take them."""
        data = form.cleaned_data
        if not change:
            worker = services.create_worker(
                name=obj.name,
                attributes=obj.attributes,
                activity=obj.activity.name,
                user=obj.user,
            )
            Worker.objects.filter(pk=worker.pk).update(sid=obj.sid)
            obj.pk, obj.activity_changed_at = worker.pk, worker.activity_changed_at
            obj._state.adding, obj._state.db = False, worker._state.db
            return
        plain = [f for f in ("name", "user", "sid") if f in form.changed_data]
        if plain:
            obj.save(update_fields=plain)
        if "attributes" in form.changed_data:
            services.set_worker_attributes(
                worker_id=obj.pk, attributes=data["attributes"]
            )
        if "activity" in form.changed_data:
            services.set_worker_activity(worker_id=obj.pk, activity=obj.activity.name)

    def in_use(self, worker: Worker) -> bool:
        # Deleting a worker deletes their reservations, and with them the state of
        # the tasks they hold: set them Offline instead.
        return worker.reservations.filter(status__in=BUSY_RESERVATION).exists()


@admin.register(TaskChannel)
class TaskChannelAdmin(admin.ModelAdmin):
    list_display = ["unique_name", "friendly_name", "sid"]
    search_fields = ["unique_name", "friendly_name", "sid"]


# -- queues ------------------------------------------------------------------------


def count_members(queues: list[Any]) -> None:
    """Set `eligible` and `available` on each queue (selectors.count_queue_members);
    an expression stored before it was checked shows as such."""
    counts = selectors.count_queue_members(queues)
    for queue in queues:
        found = counts[queue.pk]
        if found is None:
            queue.eligible = queue.available = "invalid expression"
        else:
            queue.eligible, queue.available = found


@admin.register(TaskQueue)
class TaskQueueAdmin(GuardedDeleteMixin, admin.ModelAdmin):
    form = TaskQueueForm
    list_display = [
        "name",
        "target_workers",
        "task_order",
        "waiting_tasks",
        "longest_wait",
        "available_workers",
        "eligible_workers",
    ]
    search_fields = ["name", "sid", "target_workers"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskQueue]:
        live = Q(tasks__status__in=LIVE_TASK)
        return (
            super()
            .get_queryset(request)
            .annotate(
                waiting=Count("tasks", filter=live),
                oldest_waiting=Min("tasks__created_at", filter=live),
            )
        )

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # Evaluated here, once; the template iterates the same cached rows.
        queues = list(changelist.result_list)
        count_members(queues)
        now = clock.now()
        for queue in queues:
            queue.now = now
        return changelist

    @admin.display(description="Waiting tasks", ordering="waiting")
    def waiting_tasks(self, queue: Any) -> int:
        return queue.waiting

    @admin.display(description="Longest wait", ordering="oldest_waiting")
    def longest_wait(self, queue: Any) -> str:
        if queue.oldest_waiting is None:
            return "-"
        now = getattr(queue, "now", None) or clock.now()
        return duration((now - queue.oldest_waiting).total_seconds())

    @admin.display(description="Available workers")
    def available_workers(self, queue: Any) -> Any:
        return getattr(queue, "available", "-")

    @admin.display(description="Eligible workers")
    def eligible_workers(self, queue: Any) -> Any:
        return getattr(queue, "eligible", "-")

    def save_model(
        self, request: HttpRequest, obj: TaskQueue, form: Any, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        services.dispatch()  # new members may take what waits

    def in_use(self, queue: TaskQueue) -> bool:
        # A workflow naming it would route nowhere; its waiting tasks would lose it.
        return bool(
            workflows_routing_to(queue.name)
            or queue.tasks.filter(status__in=LIVE_TASK).exists()
        )


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    form = WorkflowForm
    list_display = ["name", "sid", "task_reservation_timeout"]
    search_fields = ["name", "sid"]

    def save_model(
        self, request: HttpRequest, obj: Workflow, form: Any, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        services.dispatch()  # waiting tasks are routed by the new configuration


# -- tasks -------------------------------------------------------------------------


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    BUCKETS = {
        "lt1m": ("under a minute", 0, 60),
        "1to5m": ("1 to 5 minutes", 60, 300),
        "5to30m": ("5 to 30 minutes", 300, 1800),
        "30mto2h": ("30 minutes to 2 hours", 1800, 7200),
        "gt2h": ("over 2 hours", 7200, None),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _, _) in self.BUCKETS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        bucket = self.BUCKETS.get(self.value() or "")
        if bucket is None:
            return queryset
        _, low, high = bucket
        now = clock.now()
        queryset = queryset.filter(created_at__lte=now - timedelta(seconds=low))
        if high is not None:
            queryset = queryset.filter(created_at__gt=now - timedelta(seconds=high))
        return queryset


@admin.register(Task)
class TaskAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "queue",
        "routing_priority",
        "age",
        "channel",
        "workflow",
        "reason",
    ]
    list_filter = ["status", "queue", "routing_priority", AgeFilter, "channel"]
    list_select_related = ["queue", "channel", "workflow"]
    search_fields = ["id__exact", "reason", "filter_name"]
    date_hierarchy = "created_at"
    exclude = ["attributes"]
    readonly_fields = ["pretty_attributes"]
    action_form = MoveToQueueForm
    actions = ["cancel_tasks", "move_to_queue"]

    @admin.display(description="Attributes")
    def pretty_attributes(self, task: Task) -> str:
        return pretty_json(task.attributes)

    @admin.display(description="Age", ordering="-created_at")
    def age(self, task: Task) -> str:
        return duration((clock.now() - task.created_at).total_seconds())

    def has_route_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("routing.change_task")

    @admin.action(description="Cancel selected tasks", permissions=["route"])
    def cancel_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        canceled, refused = 0, []
        for task_id in queryset.values_list("pk", flat=True):
            try:
                services.cancel_task(task_id=task_id)
            except services.RoutingError as exc:
                refused.append(str(exc))
                continue
            canceled += 1
        if canceled:
            messages.success(request, f"Canceled {canceled} task(s).")
        for problem in refused:
            messages.error(request, f"Not canceled: {problem}.")

    @admin.action(description="Move to queue…", permissions=["route"])
    def move_to_queue(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        """Held tasks are transferred (services.transfer_task); a waiting task goes
        where its workflow sends it, so it is not moved."""
        chosen = request.POST.get("queue", "")
        queue = (
            TaskQueue.objects.filter(pk=int(chosen)).first()
            if chosen.isdigit()
            else None
        )
        if queue is None:
            messages.error(request, "Choose the queue to move the tasks to.")
            return
        for task in queryset.order_by("pk"):
            if task.status not in HELD_TASK:
                messages.error(
                    request,
                    f"Task {task.pk} is {task.status}: only held (assigned or "
                    "wrapping) tasks can be moved. A waiting task follows its "
                    "workflow; change its attributes or the workflow instead.",
                )
                continue
            try:
                new = services.transfer_task(
                    task_id=task.pk,
                    queue=queue.name,
                    note=f"moved by {request.user} in admin",
                )
            except services.RoutingError as exc:
                messages.error(request, f"Task {task.pk} not moved: {exc}.")
                continue
            messages.success(
                request,
                f"Task {task.pk} transferred to {queue.name} as task {new.pk}; it "
                "stays with its agent until someone there accepts.",
            )


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "task",
        "worker",
        "channel",
        "status",
        "created_at",
        "expires_at",
    ]
    list_filter = ["status", "channel"]
    list_select_related = ["task", "worker", "channel"]
    search_fields = ["task__id__exact", "worker__name"]
    date_hierarchy = "created_at"


@admin.register(Event)
class EventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "type", "task", "worker", "queue", "reservation"]
    list_filter = ["type"]
    list_select_related = ["task", "worker", "queue", "reservation__worker"]
    search_fields = ["task__id__exact", "worker__name", "type"]
    date_hierarchy = "created_at"
    exclude = ["data"]
    readonly_fields = ["pretty_data"]

    @admin.display(description="Data")
    def pretty_data(self, event: Event) -> str:
        return pretty_json(event.data)
