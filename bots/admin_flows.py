"""Admin for flows (upload, revisions, diagram) and executions (the step log)."""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from bots.flows.definition import InvalidFlow, validate
from bots.flows.importing import import_flow, local_refs, parse_mapping
from bots.models import Execution, ExecutionStep, Flow, FlowRevision


class FlowUploadForm(forms.ModelForm):
    definition_file = forms.FileField(
        required=False,
        help_text="A Studio flow definition exported from Twilio (JSON). "
        "Uploading publishes it as the next revision; running executions stay on "
        "theirs.",
    )
    mapping_text = forms.CharField(
        label="Twilio id mapping",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="One per line: WW...=Support, TC...=chat, FW...=other-flow.",
    )

    class Meta:
        model = Flow
        fields = ["name", "description", "published"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        published = self.fields.get("published")
        if isinstance(published, forms.ModelChoiceField):
            published.queryset = FlowRevision.objects.filter(flow=self.instance.pk or 0)
        if self.instance.pk is None:
            self.fields["definition_file"].required = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("definition_file")
        if not upload:
            return data
        try:
            data["definition"] = json.loads(upload.read().decode("utf-8"))
            data["mapping"] = parse_mapping(
                [
                    line
                    for line in data.get("mapping_text", "").splitlines()
                    if line.strip()
                ]
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise forms.ValidationError(f"The file is not valid JSON: {exc}") from exc
        try:
            validate(data["definition"], local_refs(data["mapping"]))
        except InvalidFlow as exc:
            raise forms.ValidationError(exc.problems) from exc
        return data


class RevisionInline(admin.TabularInline):
    model = FlowRevision
    fields = readonly_fields = ("number", "created_at", "widgets", "mapping")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Widgets")
    def widgets(self, revision: FlowRevision) -> int:
        return len(revision.definition.get("states", []))


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    form = FlowUploadForm
    list_display = ["name", "published_revision", "senders_bound", "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["diagram"]
    inlines = [RevisionInline]
    fieldsets = [
        (None, {"fields": ["name", "description", "published"]}),
        ("Upload a new revision", {"fields": ["definition_file", "mapping_text"]}),
        ("Diagram of the published revision", {"fields": ["diagram"]}),
    ]

    @admin.display(description="Published")
    def published_revision(self, flow: Flow) -> str:
        return f"r{flow.published.number}" if flow.published else "-"

    @admin.display(description="Senders")
    def senders_bound(self, flow: Flow) -> str:
        return ", ".join(sender.address for sender in flow.senders.all()) or "-"

    @admin.display(description="Diagram")
    def diagram(self, flow: Flow) -> str:
        if flow.published is None:
            return "-"
        from bots.flows.diagram import render_svg

        # render_svg escapes every text it takes from the definition.
        svg = render_svg(flow.published.definition).replace(
            "<svg ", '<svg style="width:100%;height:auto;max-height:85vh" ', 1
        )
        return mark_safe(f"<div>{svg}</div>")  # noqa: S308

    def save_model(
        self, request: HttpRequest, obj: Flow, form: Any, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        definition = form.cleaned_data.get("definition")
        if definition is not None:
            revision = import_flow(
                definition=definition,
                name=obj.name,
                mapping=form.cleaned_data["mapping"],
            )
            obj.published = revision
            messages.success(request, f"Published revision {revision.number}.")


class StepInline(admin.TabularInline):
    model = ExecutionStep
    fields = readonly_fields = (
        "created_at",
        "flow_name",
        "widget",
        "event",
        "next",
        "what_changed",
        "detail",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="What changed")
    def what_changed(self, step: ExecutionStep) -> str:
        if not step.changes:
            return "-"
        return format_html_join(
            "",
            "<div><code>{}</code> = <code>{}</code></div>",
            (
                (key, json.dumps(value, ensure_ascii=False)[:300])
                for key, value in step.changes.items()
            ),
        )


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "revision",
        "contact_address",
        "status",
        "waiting_widget",
        "started_at",
        "updated_at",
    ]
    list_filter = ["status", "revision__flow"]
    search_fields = ["contact_address", "channel_address"]
    list_select_related = ["revision__flow"]
    fields = readonly_fields = (
        "revision",
        "conversation",
        "contact_address",
        "channel_address",
        "status",
        "waiting_widget",
        "wait_deadline",
        "end_reason",
        "started_at",
        "updated_at",
        "ended_at",
        "flow_variables",
    )
    inlines = [StepInline]
    actions = ["stop_executions"]

    @admin.display(description="Flow variables")
    def flow_variables(self, execution: Execution) -> str:
        frames = execution.state.get("frames") or [{}]
        variables = frames[0].get("context", {}).get("flow", {}).get("variables", {})
        return format_html(
            "<pre>{}</pre>", json.dumps(variables, indent=2, ensure_ascii=False)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Stop the selected executions")
    def stop_executions(self, request: HttpRequest, queryset: Any) -> None:
        from bots.flows.services import stop_executions

        stopped = stop_executions(ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"Stopped {stopped} execution(s).")
