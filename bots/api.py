"""`POST /api/flows/<name>/executions`: start a flow as Studio's REST trigger does.

Authenticated with `Authorization: Bearer <token>` (one of SWITCHBOARD_API_TOKENS) or
HTTP Basic with the Twilio account SID and auth token, as Twilio's own clients send.
Takes `To` (the contact), `From` (our sender) and `Parameters` (a JSON object, read
by the flow as `flow.data`), form-encoded or as a JSON body.
"""

import base64
import hmac
import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bots.flows import services as flows


def _authorized(request: HttpRequest) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return any(
            hmac.compare_digest(credentials.strip(), token)
            for token in settings.SWITCHBOARD_API_TOKENS
        )
    if scheme.lower() == "basic" and settings.TWILIO_AUTH_TOKEN:
        try:
            user, _, password = base64.b64decode(credentials).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(
            user, settings.TWILIO_ACCOUNT_SID
        ) and hmac.compare_digest(password, settings.TWILIO_AUTH_TOKEN)
    return False


def _fields(request: HttpRequest) -> dict[str, Any]:
    if request.content_type == "application/json":
        data = json.loads(request.body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("the JSON body must be an object")
    else:
        data = request.POST.dict()
    parameters = data.get("Parameters") or {}
    if isinstance(parameters, str):
        parameters = json.loads(parameters)
    if not isinstance(parameters, dict):
        raise ValueError("Parameters must be a JSON object")
    data["Parameters"] = parameters
    return data


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": status, "message": message}, status=status)


@csrf_exempt
@require_POST
def start_execution(request: HttpRequest, name: str) -> JsonResponse:
    if not _authorized(request):
        return _error(401, "Authenticate with a bearer token or Twilio credentials.")
    try:
        data = _fields(request)
    except ValueError as exc:
        return _error(400, f"Bad request: {exc}")
    to, from_ = str(data.get("To", "")).strip(), str(data.get("From", "")).strip()
    if not to or not from_:
        return _error(400, "To and From are required.")
    try:
        execution = flows.start_rest_execution(
            flow_name=name, to=to, from_=from_, parameters=data["Parameters"]
        )
    except LookupError as exc:
        return _error(404, str(exc))
    except flows.ExecutionConflict as exc:
        return _error(409, str(exc))
    return JsonResponse(
        {
            "sid": execution.sid,
            "flow": name,
            "status": execution.status,
            "contact_channel_address": execution.contact_address,
            "channel_address": execution.channel_address,
            "end_reason": execution.end_reason,
        },
        status=201,
    )
