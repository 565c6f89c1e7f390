"""The console's demo data: canned responses and wrap-up codes."""

from agents.models import CannedResponse, Disposition

CANNED = [
    ("Saludo", "saludo", "¡Hola! Soy tu asesor, ¿en qué te puedo ayudar?"),
    ("Un momento", "momento", "Dame un momento mientras reviso tu información."),
    ("Cita cancelada", "cancelada", "Listo, tu cita quedó cancelada. ¿Algo más?"),
    ("Despedida", "despedida", "Gracias por escribirnos. ¡Que tengas un buen día!"),
]
DISPOSITIONS = [
    ("resolved", "Resolved"),
    ("cancelled-appointment", "Appointment cancelled"),
    ("rescheduled", "Appointment rescheduled"),
    ("callback", "Needs a call back"),
]


def load_demo_console() -> list[str]:
    for title, shortcut, body in CANNED:
        CannedResponse.objects.update_or_create(
            shortcut=shortcut, defaults={"title": title, "body": body}
        )
    for code, label in DISPOSITIONS:
        Disposition.objects.update_or_create(code=code, defaults={"label": label})
    return [
        f"kept {len(CANNED)} canned responses and {len(DISPOSITIONS)} wrap-up codes"
    ]
