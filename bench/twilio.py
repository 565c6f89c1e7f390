"""What Twilio sends: inbound-message and status-callback webhooks, signed as Twilio
signs them (HMAC over the public URL and the sorted form fields)."""

import secrets
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

SENDER = "whatsapp:+14155238886"  # the demo's WhatsApp sender, bound to its flow
ACCOUNT = "AC" + "0" * 32
MESSAGING_PATH = "/webhooks/twilio/messaging"
STATUS_PATH = "/webhooks/twilio/status"
FORM = "application/x-www-form-urlencoded"


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


def customer_address(index: int, run: str) -> str:
    """A WhatsApp address of one customer of one run: runs never share contacts."""
    return f"whatsapp:+1{run}{index:06d}"


def inbound_fields(*, sid: str, customer: str, body: str, name: str) -> dict[str, str]:
    number = customer.split("+", 1)[1]
    return {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": name,
        "MessageType": "text",
        "SmsSid": sid,
        "WaId": number,
        "SmsStatus": "received",
        "Body": body,
        "To": SENDER,
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": ACCOUNT,
        "From": customer,
        "ApiVersion": "2010-04-01",
    }


def status_fields(*, sid: str, status: str, to: str, sender: str) -> dict[str, str]:
    return {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "ChannelToAddress": to.split(":", 1)[-1],
        "To": to,
        "ChannelPrefix": "whatsapp",
        "MessageSid": sid,
        "AccountSid": ACCOUNT,
        "StructuredMessage": "false",
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


class Signer:
    """Signs requests for the stack's auth token over its PUBLIC_BASE_URL."""

    def __init__(self, token: str, public_base: str) -> None:
        self.validator = RequestValidator(token)
        self.public_base = public_base

    def sign(self, path_and_query: str, fields: dict[str, str]) -> dict[str, str]:
        """The headers of a POST of `fields` to `path_and_query`."""
        url = f"{self.public_base}{path_and_query}"
        return {
            "Content-Type": FORM,
            "X-Twilio-Signature": self.validator.compute_signature(url, fields),
        }

    def encode(self, path_and_query: str, fields: dict[str, str]) -> tuple[bytes, dict]:
        return urlencode(fields).encode(), self.sign(path_and_query, fields)
