"""Personas for the console: agents ana and ben, supervisor sam, and customers who
talk to the seed's bot until it hands them over to an agent.

The customer's side runs the real server path: a signed Twilio webhook, then the
job that processes it (the test database never commits, so jobs and on-commit
callbacks are run by hand).
"""

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from agents.demo import load_demo_console
from bots.demo import load_demo
from bots.jobs import process_inbound
from bots.models import Conversation, Message
from routing import services as routing
from routing.models import Reservation, ReservationStatus, Worker
from tests.conftest import post_signed, twilio_payload

WEBHOOK = "/webhooks/twilio/messaging"
OUR_WHATSAPP = "whatsapp:+14155238886"
HOSTILE = "<script>alert(1)</script><b>x</b>"
_sids = itertools.count(1)
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The login brake counts in the cache, which outlives a test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def demo(db, settings):
    """The seed's senders, flow, queues, workers, people and console data."""
    settings.DEBUG = True  # load_demo refuses otherwise: it sets known passwords
    load_demo()
    load_demo_console()


def _user(username: str):
    return get_user_model().objects.get(username=username)


@pytest.fixture
def ana(demo):
    return _user("ana")


@pytest.fixture
def ben(demo):
    return _user("ben")


@pytest.fixture
def sam(demo):
    return _user("sam")


def worker_of(user) -> Worker:
    return Worker.objects.select_related("activity").get(user=user)


def make_available(user) -> Worker:
    worker = worker_of(user)
    routing.set_worker_activity(worker_id=worker.pk, activity="Available")
    return worker_of(user)


def logged_in(user, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def ana_client(ana) -> Client:
    return logged_in(ana)


@pytest.fixture
def ben_client(ben) -> Client:
    return logged_in(ben)


@pytest.fixture
def sam_client(sam) -> Client:
    return logged_in(sam)


class Customer:
    """Someone writing to the demo WhatsApp number."""

    def __init__(self, address: str, profile_name: str) -> None:
        self.address = address
        self.profile_name = profile_name
        self._client = Client()

    def say(self, body: str) -> Message:
        """A signed webhook with `body`, stored and then processed."""
        sid = f"SM{next(_sids):032x}"
        payload = twilio_payload(
            "whatsapp_text",
            Body=body,
            MessageSid=sid,
            SmsSid=sid,
            SmsMessageSid=sid,
            From=self.address,
            WaId=self.address.removeprefix("whatsapp:+"),
            ProfileName=self.profile_name,
        )
        response = post_signed(self._client, WEBHOOK, payload)
        assert response.status_code == 200, response.content
        message = Message.objects.get(provider_sid=sid)
        process_inbound(message.pk)
        message.refresh_from_db()
        return message

    @property
    def conversation(self) -> Conversation:
        return (
            Conversation.objects.filter(contact__address=self.address)
            .select_related("task")
            .order_by("-pk")
            .first()
        )

    def ask_for_agent(self) -> Conversation:
        """Greet the bot and pick option 2, "talk to an agent"."""
        self.say("hola")
        self.say("2")
        conversation = self.conversation
        assert conversation.phase == "queued", conversation.phase
        return conversation


@pytest.fixture
def new_customer(demo) -> Callable[..., Customer]:
    """`new_customer(profile_name=...)`: a customer with an address of their own."""

    def make(profile_name: str = "Lucía Gómez") -> Customer:
        return Customer(f"whatsapp:+5730000{next(_numbers):05d}", profile_name)

    return make


@pytest.fixture
def customer(new_customer) -> Customer:
    return new_customer()


def pending_offer(worker: Worker) -> Reservation:
    return Reservation.objects.get(worker=worker, status=ReservationStatus.PENDING)


@pytest.fixture
def offer_to_ana(ana, customer) -> Reservation:
    """Ana is Available and the customer's request for an agent is offered to her."""
    worker = make_available(ana)
    customer.ask_for_agent()
    return pending_offer(worker)


@pytest.fixture
def with_ana(ana, ana_client, customer, offer_to_ana) -> Conversation:
    """Ana accepted the customer's conversation from the console."""
    response = ana_client.post(f"/console/offers/{offer_to_ana.pk}/accept")
    assert response.status_code == 200, response.content
    conversation = customer.conversation
    assert conversation.phase == "agent"
    return conversation
