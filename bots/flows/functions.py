"""Functions and Assets: Python callables a flow's run-function widget calls by name.

A project registers them with `@flow_function("cancel-appointment")` in a module named
`flow_functions.py` of any installed app. Each is called as `fn(context, event)`:
`event` holds the widget's parameters, `context` the secrets, the messaging API and
the assets. Returning is success (a dict or list becomes `parsed`); raising is `fail`.
"""

import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db import close_old_connections
from django.utils.module_loading import autodiscover_modules

logger = logging.getLogger(__name__)

FlowFunction = Callable[["FunctionContext", dict[str, Any]], Any]
_registry: dict[str, FlowFunction] = {}
_discovered = False
# Functions run beside the engine so that one which hangs cannot hold it past
# the limit; a hung one keeps its thread, so the pool is bounded.
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="flow-function")


def flow_function(name: str) -> Callable[[FlowFunction], FlowFunction]:
    """Register `fn` under `name`, the last path segment of its Twilio URL."""

    def register(fn: FlowFunction) -> FlowFunction:
        _registry[name] = fn
        return fn

    return register


def registered() -> dict[str, FlowFunction]:
    global _discovered
    if not _discovered:
        autodiscover_modules("flow_functions")
        _discovered = True
    return _registry


def function_name(properties: Mapping[str, Any], mapping: Mapping[str, str]) -> str:
    """The function a run-function widget names: mapped, else its URL's last part."""
    for ref in (properties.get("function_sid"), properties.get("url")):
        if ref and str(ref) in mapping:
            return mapping[str(ref)]
    url = str(properties.get("url") or "")
    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]


class Assets:
    """Files a function opens by path, like `Runtime.getAssets()[path].open()`."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders

    def path(self, name: str) -> Path:
        relative = name.lstrip("/")
        for folder in self.folders:
            candidate = (folder / relative).resolve()
            if folder.resolve() in candidate.parents and candidate.is_file():
                return candidate
        raise FileNotFoundError(f"no asset {name!r}")

    def open(self, name: str) -> str:
        return self.path(name).read_text(encoding="utf-8")

    def json(self, name: str) -> Any:
        return json.loads(self.open(name))


@dataclass
class FunctionContext:
    secrets: Mapping[str, str]
    assets: Assets
    flow: Mapping[str, Any] = field(default_factory=dict)

    @property
    def messaging(self):  # noqa: ANN201 - the bots.messaging module
        from bots import messaging

        return messaging


@dataclass(frozen=True)
class FunctionResult:
    ok: bool
    body: str = ""
    parsed: Any = None
    error: str = ""


def default_context(flow: Mapping[str, Any] | None = None) -> FunctionContext:
    folders = [Path(folder) for folder in settings.SWITCHBOARD_FLOW_ASSET_DIRS]
    return FunctionContext(
        secrets=dict(settings.SWITCHBOARD_FUNCTION_SECRETS),
        assets=Assets(folders),
        flow=dict(flow or {}),
    )


def call_function(
    name: str,
    event: dict[str, Any],
    *,
    context: FunctionContext | None = None,
    timeout: float = 10.0,
) -> FunctionResult:
    """Run the function registered as `name`; never raises.

    Unknown name, an exception or a run over `timeout` seconds is a failure.
    """
    fn = registered().get(name)
    if fn is None:
        return FunctionResult(ok=False, error=f"function {name!r} is not registered")
    ctx = context or default_context()
    future = _pool.submit(_run, fn, ctx, event)
    try:
        value = future.result(timeout=timeout)
    except FutureTimeout:
        logger.warning("function %s ran over %s s", name, timeout)
        return FunctionResult(ok=False, error=f"ran over {timeout:g} s")
    except Exception as exc:
        logger.info("function %s failed: %s", name, exc)
        return FunctionResult(ok=False, error=f"{type(exc).__name__}: {exc}")
    if isinstance(value, dict | list):
        return FunctionResult(
            ok=True, body=json.dumps(value, ensure_ascii=False), parsed=value
        )
    return FunctionResult(ok=True, body="" if value is None else str(value))


def _run(fn: FlowFunction, context: FunctionContext, event: dict[str, Any]) -> Any:
    try:
        return fn(context, event)
    finally:
        close_old_connections()
