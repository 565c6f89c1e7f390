"""The agents' console: one page, its fragments, and one POST per action.

Views are thin: check who is asking, call one service, render the fragments the
page shows. The same fragments travel over the console's WebSocket.
"""

from functools import wraps
from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from agents import selectors, services
from agents.rendering import console_context, conversation_context
from bots.models import Conversation


def agent_required(view):
    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        worker = selectors.get_worker(user=request.user)
        if worker is None:
            raise PermissionDenied("This console is for agents: ask for a worker.")
        request.worker = worker  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def _fragments(
    request: HttpRequest,
    *names: str,
    conversation_id: int | None = None,
    error: str = "",
) -> HttpResponse:
    context = console_context(user=request.user, worker=request.worker)  # type: ignore[attr-defined]
    if conversation_id is not None:
        context.update(
            conversation_context(user=request.user, conversation_id=conversation_id)
        )
    context.update(oob=True, error=error, fragments=names)
    return render(request, "agents/fragments.html", context)


@require_GET
@agent_required
def console(request: HttpRequest) -> HttpResponse:
    context = console_context(user=request.user, worker=request.worker)  # type: ignore[attr-defined]
    opened = request.GET.get("conversation", "")
    if opened.isdigit():
        context.update(
            conversation_context(user=request.user, conversation_id=int(opened))
        )
    return render(request, "agents/console.html", context)


@require_GET
@agent_required
def conversation(request: HttpRequest, conversation_id: int) -> HttpResponse:
    found = get_object_or_404(Conversation, pk=conversation_id)
    if not selectors.can_see_conversation(user=request.user, conversation=found):
        raise PermissionDenied("You do not hold this conversation.")
    services.mark_read(user=request.user, conversation_id=conversation_id)
    context = conversation_context(user=request.user, conversation_id=conversation_id)
    return render(request, "agents/console.html#conversation", context)


def _act(
    request: HttpRequest,
    action,
    *,
    names: tuple[str, ...],
    conversation_id=None,
    **kwargs: Any,
) -> HttpResponse:
    error = ""
    if conversation_id is not None:
        kwargs["conversation_id"] = conversation_id
    try:
        result = action(user=request.user, **kwargs)
    except services.ConsoleError as exc:
        error, result = str(exc), None
    if conversation_id is None and isinstance(result, Conversation):
        conversation_id = result.pk
    return _fragments(request, *names, conversation_id=conversation_id, error=error)


@require_POST
@agent_required
def accept(request: HttpRequest, reservation_id: int) -> HttpResponse:
    return _act(
        request,
        services.accept_offer,
        names=("offers", "conversations", "conversation"),
        reservation_id=reservation_id,
    )


@require_POST
@agent_required
def reject(request: HttpRequest, reservation_id: int) -> HttpResponse:
    return _act(
        request, services.reject_offer, names=("offers",), reservation_id=reservation_id
    )


@require_POST
@agent_required
def send(request: HttpRequest, conversation_id: int) -> HttpResponse:
    lines = request.POST.get("variables", "").splitlines()
    variables = {str(number): value for number, value in enumerate(lines, start=1)}
    return _act(
        request,
        services.send_reply,
        names=("conversation",),
        conversation_id=conversation_id,
        body=request.POST.get("body", ""),
        template=request.POST.get("template", ""),
        variables=variables,
    )


@require_POST
@agent_required
def transfer(request: HttpRequest, conversation_id: int) -> HttpResponse:
    target = request.POST.get("target", "")
    kind, _, name = target.partition(":")
    return _act(
        request,
        services.transfer,
        names=("conversation",),
        conversation_id=conversation_id,
        queue=name if kind == "queue" else "",
        worker=name if kind == "worker" else "",
        note=request.POST.get("note", ""),
    )


@require_POST
@agent_required
def complete(request: HttpRequest, conversation_id: int) -> HttpResponse:
    return _act(
        request,
        services.complete,
        names=("conversations", "conversation"),
        conversation_id=conversation_id,
        disposition=request.POST.get("disposition", ""),
        notes=request.POST.get("notes", ""),
    )


@require_POST
@agent_required
def status(request: HttpRequest) -> HttpResponse:
    return _act(
        request,
        services.set_status,
        names=("status",),
        activity=request.POST.get("activity", ""),
    )


@require_GET
@agent_required
def canned(request: HttpRequest) -> HttpResponse:
    found = selectors.search_canned(query=request.GET.get("q", "").strip())
    return render(request, "agents/console.html#canned-list", {"canned": found})


def flash_error(request: HttpRequest, text: str) -> None:
    flash.error(request, text)
