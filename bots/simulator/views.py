"""The customer simulator: a customer's phone in the browser, for development and demos.

Everything the phone sends goes through the real webhook path, signed as Twilio signs
it, over HTTP into this same application; what Switchboard sends to the customer
appears live over a WebSocket. Enabled with DEBUG or SWITCHBOARD_SIMULATOR=1 only.
"""

import logging
import re
import uuid
from collections.abc import Callable
from functools import wraps

import httpx
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from bots.events import thread_group
from bots.models import ChannelKind, Direction, Message, Sender
from bots.simulator import selectors
from bots.webhooks import signature_for

logger = logging.getLogger(__name__)


def simulator_enabled(view: Callable) -> Callable:
    def check() -> None:
        if not settings.SWITCHBOARD_SIMULATOR:
            raise Http404(
                "The simulator is off: set DEBUG=1 or SWITCHBOARD_SIMULATOR=1."
            )

    if iscoroutinefunction(view):

        @wraps(view)
        async def async_wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            check()
            return await view(request, *args, **kwargs)

        return async_wrapper

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        check()
        return view(request, *args, **kwargs)

    return wrapper


def _thread_context(sender: Sender | None, customer: str, name: str) -> dict:
    messages = (
        selectors.list_thread_messages(sender=sender, customer=customer)
        if sender is not None and customer
        else []
    )
    return {
        "sender": sender,
        "customer": customer,
        "name": name,
        "messages": messages,
        "thread": thread_group(sender.address, customer) if sender and customer else "",
    }


@simulator_enabled
@require_GET
def phone(request: HttpRequest) -> HttpResponse:
    senders = selectors.list_senders()
    sender = None
    if (sender_id := request.GET.get("sender", "")).isdigit():
        sender = selectors.get_sender(sender_id=int(sender_id))
    customer = request.GET.get("customer", "").strip()
    error = ""
    if sender is not None and not customer:
        customer = selectors.DEFAULT_CUSTOMER[sender.kind]
    if sender is not None and not selectors.customer_matches_sender(
        sender=sender, customer=customer
    ):
        error = (
            f"{customer} is not a {sender.get_kind_display()} address "
            f"(try {selectors.DEFAULT_CUSTOMER[sender.kind]})."
        )
        sender = None
    context = _thread_context(sender, customer, request.GET.get("name", "Customer"))
    context.update(
        senders=senders, error=error, default_customers=selectors.DEFAULT_CUSTOMER
    )
    return render(request, "bots/simulator.html", context)


def inbound_fields(
    *,
    sender: Sender,
    customer: str,
    name: str,
    body: str,
    button: tuple[str, str] | None,
) -> dict[str, str]:
    """The form fields Twilio would post for a customer's message to `sender`."""
    sid = f"SM{uuid.uuid4().hex}"
    fields = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32,
        "From": customer,
        "To": sender.address,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    if sender.messaging_service_sid:
        fields["MessagingServiceSid"] = sender.messaging_service_sid
    if sender.kind == ChannelKind.WHATSAPP:
        fields["ProfileName"] = name
        fields["WaId"] = re.sub(r"\D", "", customer)
        fields["MessageType"] = "button" if button else "text"
        if button:
            fields["ButtonPayload"], fields["ButtonText"] = button
    return fields


async def _post_signed(request: HttpRequest, path: str, fields: dict[str, str]) -> int:
    """POST `fields` to our own webhook at `path`, signed with the auth token.

    The request goes through the whole ASGI application in-process, so it meets the
    same middleware, signature check and view as one from Twilio.
    """
    from config.asgi import application

    base = f"{request.scheme}://{request.get_host()}"
    signed_url = f"{settings.PUBLIC_BASE_URL or base}{path}"
    headers = {"X-Twilio-Signature": signature_for(signed_url, fields)}
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport, base_url=base, timeout=15
    ) as client:
        response = await client.post(path, data=fields, headers=headers)
    if response.status_code != 200:
        logger.warning(
            "simulator: %s answered %s: %s", path, response.status_code, response.text
        )
    return response.status_code


@simulator_enabled
@require_POST
async def send(request: HttpRequest) -> HttpResponse:
    sender_id = request.POST.get("sender", "")
    sender = await Sender.objects.filter(
        pk=int(sender_id) if sender_id.isdigit() else 0
    ).afirst()
    customer = request.POST.get("customer", "").strip()
    name = request.POST.get("name", "").strip() or "Customer"
    if sender is None or not selectors.customer_matches_sender(
        sender=sender, customer=customer
    ):
        return HttpResponse(
            "Pick a sender and a customer address of its channel.", status=400
        )
    body = request.POST.get("body", "").strip()
    payload = request.POST.get("button_payload", "")
    button = (payload, request.POST.get("button_text", "")) if payload else None
    if not body and button is None:
        return HttpResponse(status=204)
    if button is not None:
        body = button[1]
    fields = inbound_fields(
        sender=sender, customer=customer, name=name, body=body, button=button
    )
    status_code = await _post_signed(request, reverse("twilio-messaging"), fields)
    context = await sync_to_async(_thread_context)(sender, customer, name)
    context["webhook_status"] = status_code
    return await sync_to_async(render)(
        request, "bots/simulator.html#transcript", context
    )


@simulator_enabled
@require_POST
async def receipt(request: HttpRequest, message_id: int) -> HttpResponse:
    """The phone shows a message: report it delivered (and read) as Twilio would."""
    message = await Message.objects.filter(
        pk=message_id, direction=Direction.OUTBOUND, provider_sid__isnull=False
    ).afirst()
    if message is None:
        return HttpResponse(status=204)
    path = reverse("twilio-status")
    steps = ["delivered"]
    if message.to_address.startswith(("whatsapp:", "messenger:")):
        steps.append("read")
    sid = message.provider_sid or ""
    for step in steps:
        fields = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": step,
            "SmsStatus": step,
            "AccountSid": settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32,
            "From": message.from_address,
            "To": message.to_address,
            "ApiVersion": "2010-04-01",
        }
        await _post_signed(request, path, fields)
    return HttpResponse(status=204)
