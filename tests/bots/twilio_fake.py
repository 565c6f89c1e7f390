"""Twilio's REST API as a script of answers: the one server we cannot reach.

The real TwilioBackend and the real twilio Client run; only the HTTP exchange is
replaced, with answers shaped like Twilio's.
"""

import json
import logging
import uuid

import requests
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bots.messaging.backends.twilio import TwilioBackend

# Each entry: an HTTP status with an error code, "ok", or "timeout".
script: list[object] = []
requests_seen: list[dict] = []


class ScriptedHttpClient(HttpClient):
    def __init__(self) -> None:
        super().__init__(logger=logging.getLogger(__name__), is_async=False)

    def request(self, method, uri, params=None, data=None, headers=None, **kwargs):
        requests_seen.append({"method": method, "uri": uri, "data": dict(data or {})})
        answer = script.pop(0) if script else "ok"
        if answer == "timeout":
            raise requests.exceptions.ConnectTimeout("connect timed out")
        if answer == "ok":
            body = {"sid": f"SM{uuid.uuid4().hex}", "status": "queued"}
            return Response(201, json.dumps(body))
        status, code = answer
        body = {"code": code, "message": f"error {code}", "status": status}
        return Response(status, json.dumps(body))


class ScriptedTwilioBackend(TwilioBackend):
    def __init__(self) -> None:
        super().__init__(
            client=Client("AC" + "0" * 32, "token", http_client=ScriptedHttpClient())
        )
