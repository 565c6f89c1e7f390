"""`/console/supervisor/`: queues and agents, live; any conversation, read-only."""

import json
from datetime import timedelta
from functools import wraps
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from agents import selectors
from bots.models import Conversation
from bots.services import handoff
from routing import clock
from routing import services as routing
from routing.events import SUPERVISORS_GROUP
from routing.models import Activity, Reservation, ReservationStatus, Worker
from routing.realtime import current_sequence
from routing.selectors import get_cumulative, list_queue_realtime

SLA_SECONDS = 60


def supervisor_required(view):
    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not selectors.is_supervisor(user=request.user):
            raise PermissionDenied("For supervisors.")
        return view(request, *args, **kwargs)

    return wrapper


def _sla(stats: dict[str, Any]) -> str:
    """Share of accepted tasks answered within SLA_SECONDS over the last day."""
    split = stats["split_by_wait_time"]["accepted"][str(SLA_SECONDS)]
    total = split["below"] + split["above"]
    return f"{100 * split['below'] // total}%" if total else "–"


def dashboard_context() -> dict[str, Any]:
    now = clock.now()
    since = now - timedelta(hours=24)
    queues = list_queue_realtime()
    for queue in queues:
        queue["sla"] = _sla(
            get_cumulative(
                start=since,
                end=now,
                queue_id=queue["queue_id"],
                split_thresholds=(SLA_SECONDS,),
            )
        )
    stats = get_cumulative(start=since, end=now, split_thresholds=(SLA_SECONDS,))
    agents = list(
        Worker.objects.select_related("activity", "user")
        .annotate(
            load=Count(
                "reservations",
                filter=Q(
                    reservations__status__in=(
                        ReservationStatus.ACCEPTED,
                        ReservationStatus.WRAPPING,
                    )
                ),
            ),
            offered=Count(
                "reservations", filter=Q(reservations__status=ReservationStatus.PENDING)
            ),
        )
        .order_by("name")
    )
    held: dict[int, list[str]] = {}
    for worker_id, name in Reservation.objects.filter(
        status__in=(ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING),
        task__conversations__isnull=False,
    ).values_list("worker_id", "task__conversations__contact__profile_name"):
        held.setdefault(worker_id, []).append(name or "customer")
    for agent in agents:
        agent.holding = held.get(agent.pk, [])  # type: ignore[attr-defined]
    conversations = list(
        Conversation.objects.exclude(phase="closed")
        .exclude(phase="bot")
        .select_related("contact", "sender", "task__queue")
        .order_by("-last_message_at")[:100]
    )
    return {
        "queues": queues,
        "overall_sla": _sla(stats),
        "sla": SLA_SECONDS,
        "agents": agents,
        "activities": list(Activity.objects.order_by("name")),
        "queue_names": [queue["queue_name"] for queue in queues],
        "conversations": conversations,
    }


@require_GET
@supervisor_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "agents/supervisor.html", dashboard_context())


@require_GET
@supervisor_required
def conversation(request: HttpRequest, conversation_id: int) -> HttpResponse:
    found = get_object_or_404(
        Conversation.objects.select_related("contact", "sender"), pk=conversation_id
    )
    context = {
        "conversation": found,
        "transcript": selectors.get_transcript(conversation=found),
        "live": True,
    }
    return render(request, "agents/supervisor_conversation.html", context)


@require_POST
@supervisor_required
def worker_status(request: HttpRequest, worker_id: int) -> HttpResponse:
    try:
        routing.set_worker_activity(
            worker_id=worker_id, activity=request.POST.get("activity", "")
        )
    except routing.WorkerError as exc:
        return HttpResponse(str(exc), status=400)
    return _board(request)


@require_POST
@supervisor_required
def cancel(request: HttpRequest, task_id: int) -> HttpResponse:
    try:
        routing.cancel_task(task_id=task_id)
    except routing.RoutingError as exc:
        return HttpResponse(str(exc), status=400)
    # The conversation follows its task at once, not at beat's next sweep.
    handoff.reconcile_handoffs()
    return _board(request)


@require_POST
@supervisor_required
def move(request: HttpRequest, task_id: int) -> HttpResponse:
    try:
        routing.move_task(task_id=task_id, queue=request.POST.get("queue", ""))
    except routing.RoutingError as exc:
        return HttpResponse(str(exc), status=400)
    return _board(request)


def _board(request: HttpRequest) -> HttpResponse:
    context = {**dashboard_context(), "oob": True}
    return render(request, "agents/supervisor.html#board", context)


def _render_board() -> str:
    return render_to_string("agents/supervisor.html#board", dashboard_context())


class SupervisorConsumer(AsyncWebsocketConsumer):
    """Supervisors' live board: any routing or message event re-renders it."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        allowed = user is not None and await database_sync_to_async(
            selectors.is_supervisor
        )(user=user)
        if not allowed:
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(SUPERVISORS_GROUP, self.channel_name)
        await self.accept()
        await self._send(
            await database_sync_to_async(current_sequence)(SUPERVISORS_GROUP), True
        )

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(SUPERVISORS_GROUP, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        seq = await database_sync_to_async(current_sequence)(SUPERVISORS_GROUP)
        await self._send(seq, True)

    async def _send(self, seq: int, snapshot: bool = False) -> None:
        html = await database_sync_to_async(_render_board)()
        await self.send(
            text_data=json.dumps(
                {
                    "type": "fragments",
                    "seq": seq,
                    "snapshot": snapshot,
                    "fragments": [{"id": "board", "html": html}],
                }
            )
        )

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message["type"].startswith("websocket."):
            await super().dispatch(message)
            return
        await self._send(int(message.get("seq") or 0))
