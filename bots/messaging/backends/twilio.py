"""Sends through Twilio's Messages API. The only module that imports the Twilio SDK."""

import json
import logging

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bots.messaging.backends.base import (
    BaseBackend,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
)

logger = logging.getLogger(__name__)


class TwilioBackend(BaseBackend):
    def __init__(self, client: Client | None = None) -> None:
        if client is None:
            if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN):
                raise ImproperlyConfigured(
                    "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to send "
                    "through Twilio"
                )
            client = Client(
                settings.TWILIO_ACCOUNT_SID,
                settings.TWILIO_AUTH_TOKEN,
                http_client=TwilioHttpClient(
                    timeout=settings.SWITCHBOARD_TWILIO_TIMEOUT
                ),
            )
        self.client = client

    def send(self, message: OutboundMessage) -> SendResult:
        params: dict[str, object] = {"to": message.to_address}
        if message.messaging_service_sid:
            params["messaging_service_sid"] = message.messaging_service_sid
        else:
            params["from_"] = message.from_address
        if message.content_sid:
            params["content_sid"] = message.content_sid
            if message.content_variables:
                params["content_variables"] = json.dumps(message.content_variables)
        else:
            params["body"] = message.body
        if message.media_urls:
            params["media_url"] = list(message.media_urls)
        if message.status_callback:
            params["status_callback"] = message.status_callback
        try:
            created = self.client.messages.create(**params)
        except TwilioRestException as exc:
            code = str(exc.code or "")
            if exc.status == 429 or exc.status >= 500:
                raise TransientSendError(exc.msg, code=code or str(exc.status)) from exc
            raise PermanentSendError(exc.msg, code=code or str(exc.status)) from exc
        except (TwilioException, requests.RequestException) as exc:
            # The connection failed or timed out: Twilio may not have it.
            raise TransientSendError(str(exc)) from exc
        return SendResult(sid=created.sid, status=str(created.status or "queued"))
