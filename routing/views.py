"""Routing statistics as JSON, under `/api/routing/` (read only).

Every view answers staff users signed in to the admin, and API clients sending
`Authorization: Bearer <token>` with one of `SWITCHBOARD_API_TOKENS`; anyone else
gets 403. Errors are JSON: `{"status": 400, "message": "...", "parameter":
"start"}` (`parameter` only on 400). Times are ISO 8601; one without an offset is
read in the server's time zone; responses give them in UTC. The figures are those
of `routing.selectors`.
"""

import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from routing import clock, selectors
from routing.models import TaskQueue, Worker

DEFAULT_WINDOW = timedelta(hours=24)

View = Callable[..., JsonResponse]


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def _error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"status": status, "message": message, **extra}, status=status)


def _has_token(request: HttpRequest) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return (
        scheme.lower() == "bearer"
        and bool(token)
        and any(
            hmac.compare_digest(token.encode(), allowed.encode())
            for allowed in settings.SWITCHBOARD_API_TOKENS
        )
    )


def staff_or_token_required(view: View) -> View:
    """Let staff sessions and bearer-token clients through; 403 JSON otherwise."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        user = request.user
        if (user.is_active and user.is_staff) or _has_token(request):
            return view(request, *args, **kwargs)
        return _error(403, "Sign in as staff or send a bearer token.")

    return guarded


def _moment(request: HttpRequest, name: str) -> datetime | None:
    text = request.GET.get(name)
    if text is None:
        return None
    # An unencoded "+01:00" reaches us as " 01:00": read it as the offset it was.
    head, space, tail = text.strip().rpartition(" ")
    for candidate in (text.strip(), f"{head}+{tail}" if space else ""):
        try:
            moment = parse_datetime(candidate)
        except ValueError:
            moment = None
        if moment is not None:
            aware = moment if timezone.is_aware(moment) else timezone.make_aware(moment)
            return aware.astimezone(UTC)
    raise BadParameter(name, f"{name} must be an ISO 8601 date and time: {text!r}")


def _window(request: HttpRequest) -> tuple[datetime, datetime]:
    """`start` and `end`; by default the 24 hours up to now, or to `end`."""
    start, end = _moment(request, "start"), _moment(request, "end")
    end = end or clock.now()
    start = start or end - DEFAULT_WINDOW
    if end <= start:
        raise BadParameter("end", "end must be after start")
    return start, end


def _queue(request: HttpRequest) -> int | None:
    text = request.GET.get("queue")
    if text is None:
        return None
    if not text.isdigit() or not TaskQueue.objects.filter(pk=int(text)).exists():
        raise BadParameter("queue", f"queue must be the id of a queue: {text!r}")
    return int(text)


def _split(request: HttpRequest) -> tuple[int, ...]:
    text = request.GET.get("split")
    if text is None:
        return selectors.DEFAULT_SPLIT_THRESHOLDS
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise BadParameter(
            "split", f"split must be whole seconds separated by commas: {text!r}"
        )
    return tuple(int(part) for part in parts)


@require_GET
@staff_or_token_required
def queue_list(request: HttpRequest) -> JsonResponse:
    """`{"queues": [<queue>, ...], "overall": <queue>}`, each as
    `selectors.get_queue_realtime` returns it (queues by name; `overall` is the
    whole workspace, with null `queue_id` and `queue_name`)."""
    return JsonResponse(
        {
            "queues": selectors.list_queue_realtime(),
            "overall": selectors.get_queue_realtime(),
        }
    )


@require_GET
@staff_or_token_required
def queue_detail(request: HttpRequest, queue_id: int) -> JsonResponse:
    """One queue, as `selectors.get_queue_realtime` returns it; 404 if unknown."""
    try:
        return JsonResponse(selectors.get_queue_realtime(queue_id=queue_id))
    except TaskQueue.DoesNotExist:
        return _error(404, f"No queue {queue_id}.")


@require_GET
@staff_or_token_required
def statistics(request: HttpRequest) -> JsonResponse:
    """`?start=&end=&queue=<id>&split=30,60`: `selectors.get_cumulative` as JSON.

    `{"start", "end", "queue_id", "tasks_created", "tasks_canceled",
    "tasks_completed", "reservations_created", "reservations_accepted",
    "reservations_rejected", "reservations_timed_out", "reservations_canceled",
    "reservations_rescinded", "avg_task_acceptance_time",
    "wait_duration_until_accepted": {"avg", "min", "max", "total"},
    "wait_duration_until_canceled": {...}, "split_by_wait_time": {"accepted":
    {"30": {"below", "above"}, ...}, "canceled": {...}}}`. The window defaults to
    the last 24 hours; 400 names a malformed or unknown parameter.
    """
    try:
        start, end = _window(request)
        queue_id, thresholds = _queue(request), _split(request)
    except BadParameter as exc:
        return _error(400, str(exc), parameter=exc.parameter)
    return JsonResponse(
        selectors.get_cumulative(
            start=start, end=end, queue_id=queue_id, split_thresholds=thresholds
        )
    )


@require_GET
@staff_or_token_required
def worker_activity(request: HttpRequest, worker_id: int) -> JsonResponse:
    """`?start=&end=`: `{"worker_id", "start", "end", "activities": {"<name>":
    seconds}}`, from `selectors.get_worker_activity_durations` (default window:
    the last 24 hours); 404 for an unknown worker, 400 naming a bad parameter."""
    try:
        start, end = _window(request)
    except BadParameter as exc:
        return _error(400, str(exc), parameter=exc.parameter)
    try:
        durations = selectors.get_worker_activity_durations(
            worker_id=worker_id, start=start, end=end
        )
    except Worker.DoesNotExist:
        return _error(404, f"No worker {worker_id}.")
    return JsonResponse(
        {"worker_id": worker_id, "start": start, "end": end, "activities": durations}
    )
