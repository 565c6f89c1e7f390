"""Twilio's webhooks: inbound messages and delivery status callbacks.

Both are signed by Twilio with the account's auth token over the public URL it
posted to. A request that fails the check is refused with 403 and changes nothing.
A valid one is stored and answered at once: the work happens in Celery.
"""

import functools
import logging
from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from bots.services import inbound, status

logger = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
FORM = "application/x-www-form-urlencoded"
FORMS = (FORM, "multipart/form-data")


def public_url(request: HttpRequest) -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL plus our path, or the URL as received."""
    if settings.PUBLIC_BASE_URL:
        return f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}"
    return request.build_absolute_uri()


def signature_for(url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send for `params` posted to `url`."""
    return RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(url, params)


def _refuse(status_code: int, reason: str, request: HttpRequest) -> HttpResponse:
    logger.warning(
        "twilio webhook %s refused (%d): %s", request.path, status_code, reason
    )
    return HttpResponse(reason + "\n", status=status_code, content_type="text/plain")


def twilio_webhook(view: Callable[[HttpRequest, QueryDict], HttpResponse]):
    """Check size, encoding and Twilio's signature; then `view(request, fields)`."""

    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        limit = settings.SWITCHBOARD_WEBHOOK_MAX_BYTES
        try:
            declared = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            return _refuse(400, "Content-Length is not a number", request)
        if declared > limit:
            return _refuse(413, f"body over {limit} bytes", request)
        if request.content_type not in FORMS:
            return _refuse(
                400, f"body must be {FORM}, not {request.content_type!r}", request
            )
        try:
            if len(request.body) > limit:
                return _refuse(413, f"body over {limit} bytes", request)
            fields = request.POST
        except RequestDataTooBig:
            return _refuse(413, f"body over {limit} bytes", request)
        except Exception as exc:  # a body Django cannot parse at all
            return _refuse(400, f"body cannot be parsed: {exc}", request)
        token = settings.TWILIO_AUTH_TOKEN
        signature = request.headers.get("X-Twilio-Signature", "")
        if not token:
            return _refuse(403, "TWILIO_AUTH_TOKEN is not set: cannot verify", request)
        if not signature:
            return _refuse(403, "X-Twilio-Signature is missing", request)
        if not RequestValidator(token).validate(public_url(request), fields, signature):
            return _refuse(
                403, f"X-Twilio-Signature does not match {public_url(request)}", request
            )
        return view(request, fields)

    return wrapper


@twilio_webhook
def messaging_webhook(request: HttpRequest, fields: QueryDict) -> HttpResponse:
    try:
        inbound.store_inbound(fields=cast(dict[str, str], fields.dict()))
    except inbound.InvalidWebhook as exc:
        return _refuse(400, str(exc), request)
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@twilio_webhook
def status_webhook(request: HttpRequest, fields: QueryDict) -> HttpResponse:
    sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
    new_status = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").lower()
    if not sid or not new_status:
        return _refuse(400, "MessageSid and MessageStatus are required", request)
    status.apply_status_callback(
        sid=sid,
        status=new_status,
        error_code=fields.get("ErrorCode", ""),
        error_message=fields.get("ErrorMessage", ""),
        message_ref=request.GET.get("message", ""),
    )
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")
