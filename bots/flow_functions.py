"""The demo's functions: the seed's `cancel-appointment`, over a small JSON store.

A project adds its own in a `flow_functions.py` module of any installed app.
"""

from typing import Any

from bots.flows.functions import FunctionContext, flow_function


class AppointmentNotFound(LookupError):
    pass


@flow_function("cancel-appointment")
def cancel_appointment(
    context: FunctionContext, event: dict[str, Any]
) -> dict[str, str]:
    """Cancel the appointment of `event["documento"]`; raise when there is none."""
    documento = str(event.get("documento", "")).strip()
    store = context.assets.json("/data.json")
    for appointment in store["appointments"]:
        if appointment["documento"] == documento:
            return {"date": appointment["date"], "dentist": appointment["dentist"]}
    raise AppointmentNotFound(f"no appointment for document {documento!r}")
