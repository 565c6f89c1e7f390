"""Demo data for `make run`: senders, people and the seed's reminder template.

Idempotent: running it again updates what it created and adds nothing twice.
Later parts of the system (flows, queues, workers) add theirs here.
"""

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured

from bots.flows.importing import import_flow
from bots.models import ChannelKind, Flow, Sender, Template
from routing import services as routing
from routing.models import TaskChannel, TaskQueue, Worker, Workflow

DEMO_PASSWORD = "demo"
DEMO_FLOW = Path(__file__).parent / "demo_flows" / "appointments.json"
# The Twilio ids the seed's flow names, kept on the local objects they stand for.
SUPPORT_WORKFLOW_SID = "WW00000000000000000000000000000001"
CHAT_CHANNEL_SID = "TC00000000000000000000000000000001"

SENDERS = [
    ("whatsapp:+14155238886", ChannelKind.WHATSAPP, "KeyrusCare WhatsApp"),
    ("messenger:108131232204637", ChannelKind.MESSENGER, "Prueba Livechat"),
    ("+15005550006", ChannelKind.SMS, "KeyrusCare SMS"),
]

PEOPLE = [
    # username, first name, last name, is supervisor
    ("ana", "Ana", "García", False),
    ("ben", "Ben", "Okafor", False),
    ("sam", "Sam", "Rivera", True),
]

REMINDER_BODY = (
    "¡Hola! 🙋‍♂️ {{1}}, somos KeyrusCare. 📞\n\n"
    "*Te recordamos que tu cita de {{2}} sé aproxima.*\n\n"
    "*Detalles:*\n\nDía: {{3}}\n\nHora: {{4}}\n\nMes: {{5}}\n\n"
    "Dentista(a): {{6}} 🦷\n\nLugar: {{7}} 📍\n\n"
    "Por favor confirmar la asistencia o si necesitas reprogramarla, contáctanos "
    "con 24 horas de antelación."
)
REMINDER_BUTTONS = [
    {"id": "confirm", "title": "Confirmar asistencia"},
    {"id": "reschedule", "title": "Reprogramar"},
]


SUPPORT_WORKFLOW = {
    "task_routing": {
        "filters": [
            {
                "filter_friendly_name": "Spanish",
                "expression": "language == null OR language == 'es'",
                "targets": [
                    {"queue": "Spanish", "timeout": 60},
                    {"queue": "Everyone", "priority": 10},
                ],
            },
            {
                "filter_friendly_name": "English",
                "expression": "language == 'en'",
                "targets": [
                    {"queue": "English", "timeout": 60},
                    {"queue": "Everyone", "priority": 10},
                ],
            },
        ],
        "default_filter": {"queue": "Everyone"},
    }
}
QUEUES = [
    ("Spanish", "languages HAS 'es'"),
    ("English", "languages HAS 'en'"),
    ("Everyone", "1==1"),
]
WORKERS = [("ana", ["es", "en"]), ("ben", ["en"])]


def load_demo_routing() -> list[str]:
    """Queues, the Support workflow with an escalation step, activities, and the
    agents' workers (chat capacity 2): where the flow's "talk to an agent" lands."""
    routing.ensure_workspace()
    TaskChannel.objects.update_or_create(
        unique_name="chat", defaults={"friendly_name": "Chat", "sid": CHAT_CHANNEL_SID}
    )
    for name, expression in QUEUES:
        TaskQueue.objects.update_or_create(
            name=name, defaults={"target_workers": expression}
        )
    _, created = Workflow.objects.update_or_create(
        name="Support",
        defaults={
            "sid": SUPPORT_WORKFLOW_SID,
            "configuration": SUPPORT_WORKFLOW,
            "task_reservation_timeout": 60,
        },
    )
    done = [
        f"{'created' if created else 'kept'} workflow Support, its queues and channel"
    ]
    users = get_user_model()
    for username, languages in WORKERS:
        worker = Worker.objects.filter(name=username).first()
        if worker is None:
            worker = routing.create_worker(
                name=username,
                attributes={"languages": languages},
                capacity={"chat": 2},
                user=users.objects.filter(username=username).first(),
            )
            done.append(f"created worker {username}")
    return done


def load_demo_flow() -> list[str]:
    """The seed's appointments flow, bound to every demo sender."""
    definition = json.loads(DEMO_FLOW.read_text(encoding="utf-8"))
    flow = Flow.objects.filter(name="appointments").first()
    if (
        flow is None
        or flow.published is None
        or flow.published.definition != definition
    ):
        revision = import_flow(definition=definition, name="appointments")
        flow = revision.flow
        done = f"imported flow appointments revision {revision.number}"
    else:
        done = "kept flow appointments"
    Sender.objects.filter(address__in=[a for a, _, _ in SENDERS]).update(flow=flow)
    return [done]


def load_demo() -> list[str]:
    """Create or refresh the demo data; returns what was done, a line each."""
    if not settings.DEBUG:
        raise ImproperlyConfigured(
            "loaddemo creates users with the password 'demo': it only runs with DEBUG=1"
        )
    done = []
    for address, kind, name in SENDERS:
        _, created = Sender.objects.update_or_create(
            address=address, defaults={"kind": kind, "friendly_name": name}
        )
        done.append(f"{'created' if created else 'kept'} sender {address}")
    supervisors, _ = Group.objects.get_or_create(name="Supervisors")
    supervisors.permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["bots", "routing", "agents"]
        )
    )
    agents, _ = Group.objects.get_or_create(name="Agents")
    users = get_user_model()
    for username, first, last, is_supervisor in PEOPLE:
        user, created = users.objects.get_or_create(username=username)
        user.first_name, user.last_name = first, last
        user.email = f"{username}@example.com"
        user.is_staff = is_supervisor
        user.set_password(DEMO_PASSWORD)
        user.save()
        user.groups.add(supervisors if is_supervisor else agents)
        role = "supervisor" if is_supervisor else "agent"
        done.append(f"{'created' if created else 'kept'} {role} {username}")
    _, created = Template.objects.update_or_create(
        name="dentalink_reminder",
        language="es",
        defaults={"body": REMINDER_BODY, "buttons": REMINDER_BUTTONS},
    )
    done.append(f"{'created' if created else 'kept'} template dentalink_reminder")
    return done + load_demo_routing() + load_demo_flow()
