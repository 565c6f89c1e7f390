"""Admin forms for routing: every expression, workflow and attribute set is checked
when it is saved, naming what is wrong, so that no task ever meets a broken one."""

import json
from typing import Any

from django import forms
from django.contrib.admin.helpers import ActionForm

from routing import expressions
from routing.importing import queue_refs
from routing.models import TaskQueue, Worker, WorkerChannel, Workflow
from routing.workflows import ConfigurationError, parse_configuration

MAX_RESERVATION_TIMEOUT = 86400


class PrettyJSONField(forms.JSONField):
    """A JSON field shown indented, so that a workflow reads as it is nested."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


def _json_area(rows: int) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, "cols": 90, "class": "vLargeTextField"})


def workflows_routing_to(queue_name: str) -> list[str]:
    """The names of workflows whose configuration names queue `queue_name`."""
    return [
        workflow.name
        for workflow in Workflow.objects.only("name", "configuration")
        if any(t["queue"] == queue_name for _, t in queue_refs(workflow.configuration))
    ]


class WorkerForm(forms.ModelForm):
    attributes = PrettyJSONField(
        required=False,
        widget=_json_area(8),
        help_text='A JSON object, e.g. {"languages": ["es", "en"], "level": 3}.',
    )

    class Meta:
        model = Worker
        fields = ["name", "attributes", "activity", "user", "sid"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = Worker.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(
                f"A worker named {name!r} exists already (names ignore case)."
            )
        return name

    def clean_attributes(self) -> dict[str, Any]:
        attributes = self.cleaned_data.get("attributes")
        if attributes is None:
            return {}
        if not isinstance(attributes, dict):
            raise forms.ValidationError(
                "Attributes must be a JSON object ({...}), not "
                f"{type(attributes).__name__}."
            )
        return attributes


class WorkerChannelForm(forms.ModelForm):
    capacity = forms.IntegerField(min_value=0, max_value=50, initial=1)

    class Meta:
        model = WorkerChannel
        fields = ["channel", "capacity", "available"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            # A row is one channel's capacity: a new channel is a new row.
            self.fields["channel"].disabled = True


class TaskQueueForm(forms.ModelForm):
    max_reserved_workers = forms.IntegerField(
        min_value=1,
        max_value=50,
        initial=1,
        help_text="How many workers are offered a task at once; the first to "
        "accept wins.",
    )

    class Meta:
        model = TaskQueue
        fields = ["name", "target_workers", "task_order", "max_reserved_workers", "sid"]
        widgets = {"target_workers": forms.Textarea(attrs={"rows": 2, "cols": 90})}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        old = self.initial.get("name")
        renamed = self.instance.pk is not None and old and old != name
        # Workflows name their queues: renaming would leave them routing nowhere.
        if renamed and (users := workflows_routing_to(str(old))):
            raise forms.ValidationError(
                f"Workflow(s) {', '.join(users)} route to {old!r} by name: "
                "change them first."
            )
        return name

    def clean_target_workers(self) -> str:
        source = self.cleaned_data["target_workers"].strip()
        if error := expressions.check(source):
            raise forms.ValidationError(f"Invalid expression: {error}")
        return source


class WorkflowForm(forms.ModelForm):
    configuration = PrettyJSONField(
        widget=_json_area(24),
        help_text="TaskRouter's workflow configuration, naming queues by name.",
    )
    task_reservation_timeout = forms.IntegerField(
        min_value=1,
        max_value=MAX_RESERVATION_TIMEOUT,
        initial=120,
        help_text="Seconds a worker has to accept an offer.",
    )

    class Meta:
        model = Workflow
        fields = ["name", "sid", "configuration", "task_reservation_timeout"]

    def clean_configuration(self) -> Any:
        configuration = self.cleaned_data.get("configuration")
        queues = TaskQueue.objects.values_list("name", flat=True)
        try:
            parse_configuration(configuration, queues)
        except ConfigurationError as exc:
            raise forms.ValidationError(exc.problems) from exc
        return configuration


class MoveToQueueForm(ActionForm):
    """The changelist's action bar, with the queue "Move to queue" sends tasks to."""

    queue = forms.ModelChoiceField(
        queryset=TaskQueue.objects.all(),
        required=False,
        empty_label="(queue for “Move to queue…”)",
        label="",
    )
