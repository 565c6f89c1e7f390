"""Import and export Studio flow definitions, mapping Twilio ids to local objects."""

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify

from bots.flows import functions
from bots.flows.definition import InvalidFlow, Refs, validate
from bots.models import Flow, FlowRevision
from routing.models import TaskChannel, Workflow


def parse_mapping(items: list[str]) -> dict[str, str]:
    """`["WW...=Support", "TC...=chat"]` as a dict; raises ValueError on a bad item."""
    mapping = {}
    for item in items:
        ref, sep, name = item.partition("=")
        if not sep or not ref.strip() or not name.strip():
            raise ValueError(f"--map takes TWILIO_ID=LOCAL_NAME, not {item!r}")
        mapping[ref.strip()] = name.strip()
    return mapping


def local_refs(mapping: Mapping[str, str], *, lenient_functions: bool = False) -> Refs:
    """Resolve Twilio ids: an explicit mapping first, then the local object's own
    Twilio SID, then its name. Functions match by their URL's last path segment.

    With `lenient_functions`, an unregistered function still resolves (runflow fails
    its widget at run time instead).
    """

    def workflow(ref: str) -> str | None:
        name = mapping.get(ref)
        query = Workflow.objects.filter(name=name) if name else None
        found = query.first() if query is not None else None
        found = found or Workflow.objects.filter(sid=ref).first()
        found = found or Workflow.objects.filter(name=ref).first()
        return found.name if found else None

    def channel(ref: str) -> str | None:
        name = mapping.get(ref)
        found = TaskChannel.objects.filter(unique_name=name).first() if name else None
        found = found or TaskChannel.objects.filter(sid=ref).first() if ref else found
        found = found or TaskChannel.objects.filter(unique_name=ref).first()
        return found.unique_name if found else None

    def flow(ref: str) -> str | None:
        name = mapping.get(ref, ref)
        return name if Flow.objects.filter(name=name).exists() else None

    def function(properties: Mapping[str, Any]) -> str | None:
        name = functions.function_name(properties, mapping)
        if name in functions.registered() or (lenient_functions and name):
            return name
        return None

    return Refs(workflow=workflow, channel=channel, flow=flow, function=function)


def import_flow(
    *,
    definition: Any,
    name: str,
    mapping: Mapping[str, str] | None = None,
    publish: bool = True,
    lenient_functions: bool = False,
) -> FlowRevision:
    """Validate `definition` and store it as the next revision of flow `name`.

    Raises InvalidFlow listing every problem; nothing is stored then. Running
    executions stay on the revision they started with.
    """
    slug = slugify(name)
    if not slug:
        raise InvalidFlow([f"{name!r} cannot be a flow name"])
    resolved = validate(
        definition, local_refs(mapping or {}, lenient_functions=lenient_functions)
    )
    with transaction.atomic():
        flow, _ = Flow.objects.select_for_update().get_or_create(
            name=slug, defaults={"description": str(definition.get("description", ""))}
        )
        last = flow.revisions.aggregate(last=Max("number"))["last"] or 0
        revision = FlowRevision.objects.create(
            flow=flow, number=last + 1, definition=definition, mapping=resolved
        )
        if publish:
            flow.published = revision
            flow.save(update_fields=["published", "updated_at"])
    return revision


def export_flow(*, name: str, number: int | None = None) -> dict[str, Any]:
    """The definition of flow `name` (its published revision, or revision `number`)."""
    flow = Flow.objects.filter(name=name).first()
    if flow is None:
        raise LookupError(f"no flow named {name!r}")
    if number is not None:
        revision = flow.revisions.filter(number=number).first()
    else:
        revision = flow.published
    if revision is None:
        raise LookupError(f"flow {name!r} has no such revision")
    return revision.definition
