import json
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings

from bots.flows import services as flows
from bots.flows.definition import InvalidFlow
from bots.flows.http import HttpResult, http_request
from bots.flows.importing import import_flow, parse_mapping
from routing.throwaway import use_throwaway_database

LOCMEM = "bots.messaging.backends.locmem.LocmemBackend"
ALWAYS_PRINTED = {"message", "wait", "handoff", "end", "warning"}


class StubbedHttp:
    """Answers a flow's HTTP requests from `"METHOD URL": {...}` stubs."""

    def __init__(self, stubs: dict[str, Any], allow_network: bool) -> None:
        self.stubs = {key.strip(): value for key, value in stubs.items()}
        self.allow_network = allow_network

    def __call__(self, **request: Any) -> HttpResult:
        stub = self.stubs.get(f"{request['method']} {request['url']}")
        if stub is None:
            if self.allow_network:
                return http_request(**request)
            return HttpResult(
                ok=False,
                status_code=None,
                body="",
                content_type="",
                parsed=None,
                error=f"no stub for {request['method']} {request['url']}",
            )
        status = int(stub.get("status", 200))
        ok = 200 <= status < 300
        if "json" in stub:
            body, content_type = json.dumps(stub["json"]), "application/json"
        else:
            body, content_type = str(stub.get("body", "")), "text/plain"
        return HttpResult(
            ok=ok,
            status_code=status,
            body=body if ok else "",
            content_type=content_type,
            parsed=stub.get("json") if ok else None,
            error="" if ok else f"HTTP {status}",
        )


class Command(BaseCommand):
    help = (
        "Run a Studio flow offline against scripted customer messages and print the "
        "transcript as JSON lines. Uses a throwaway database and sends nothing."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="the flow definition (.json)")
        parser.add_argument(
            "--say",
            action="append",
            default=[],
            help="the customer's next message; @timeout times the waiting widget out",
        )
        parser.add_argument("--from", dest="contact", default="whatsapp:+573001112233")
        parser.add_argument("--to", dest="channel", default="whatsapp:+14155238886")
        parser.add_argument(
            "--profile-name", default="", help="the contact's ProfileName"
        )
        parser.add_argument("--http-stub", help='JSON file: {"GET https://...": {...}}')
        parser.add_argument(
            "--subflow", action="append", default=[], metavar="FW...=child.json"
        )
        parser.add_argument("--map", action="append", default=[], metavar="ID=NAME")
        parser.add_argument("--steps", action="store_true", help="print every step")
        parser.add_argument("--allow-network", action="store_true")
        parser.add_argument(
            "--strict", action="store_true", help="an unregistered function is an error"
        )

    def handle(self, *args, **options) -> None:
        definition = self._load(Path(options["file"]))
        stubs = self._load(Path(options["http_stub"])) if options["http_stub"] else {}
        try:
            mapping = parse_mapping(options["map"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        use_throwaway_database()
        with (
            override_settings(SWITCHBOARD_MESSAGING_BACKEND=LOCMEM),
            transaction.atomic(),
        ):
            self._run(definition, stubs, mapping, options)
            # Nothing happened for real: on-commit jobs and events are dropped.
            transaction.set_rollback(True)

    def _load(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: {exc}") from exc

    def _run(self, definition, stubs, mapping, options) -> None:
        from bots.demo import load_demo_routing
        from bots.models import Sender, kind_of_address

        load_demo_routing()
        lenient = not options["strict"]
        try:
            for item in options["subflow"]:
                ref, _, path = item.partition("=")
                child = import_flow(
                    definition=self._load(Path(path)),
                    name=Path(path).stem,
                    lenient_functions=lenient,
                )
                mapping.setdefault(ref, child.flow.name)
            revision = import_flow(
                definition=definition,
                name=Path(options["file"]).stem,
                mapping=mapping,
                lenient_functions=lenient,
            )
        except InvalidFlow as exc:
            for problem in exc.problems:
                self.stdout.write(problem)
            raise CommandError(
                f"{len(exc.problems)} problem(s) in the flow", returncode=2
            ) from exc
        Sender.objects.create(
            address=options["channel"],
            kind=kind_of_address(options["channel"]),
            flow=revision.flow,
        )
        printer = self._printer(options["steps"])
        http = StubbedHttp(stubs, options["allow_network"])
        with flows.listening(printer, http=http):
            for number, text in enumerate(options["say"], start=1):
                self._say(number, text, options)

    def _printer(self, steps: bool):
        def emit(line: dict[str, Any]) -> None:
            if line["type"] in ALWAYS_PRINTED or (steps and line["type"] == "step"):
                shown = {
                    k: v
                    for k, v in line.items()
                    if k not in ("flow", "changes", "widget_type")
                }
                self.stdout.write(json.dumps(shown, ensure_ascii=False))

        return emit

    def _say(self, number: int, text: str, options: dict[str, Any]) -> None:
        from bots.models import Execution, ExecutionStatus
        from bots.services import inbound

        if text == "@timeout":
            waiting = Execution.objects.filter(status=ExecutionStatus.WAITING).first()
            if waiting is None:
                self.stdout.write(
                    json.dumps({"type": "warning", "message": "nothing is waiting"})
                )
                return
            flows.fire_timeout(execution_id=waiting.pk, force=True)
            return
        sid = f"SM{uuid.uuid4().hex}"
        fields = {
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": "AC" + "0" * 32,
            "From": options["contact"],
            "To": options["channel"],
            "Body": text,
            "NumMedia": "0",
            "ApiVersion": "2010-04-01",
        }
        if options["profile_name"]:
            fields["ProfileName"] = options["profile_name"]
        message, _ = inbound.store_inbound(fields=fields)
        inbound.process_inbound(message_id=message.pk)
