"""Studio-flavoured Liquid: python-liquid 2.x with Twilio Studio's leniency and limits.

Context values (customer text, HTTP bodies) are only ever data: python-liquid never
renders a value. The source is never rewritten either: python-liquid 2.3 already
resolves hyphenated names (`widgets.get-customer.name`) and spaces around dots
(`flow.variables. count`), inside `{{ }}` and `{% %}` alike.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from io import StringIO
from typing import Any, TextIO

from liquid import BoundTemplate, Environment, RenderContext, is_undefined
from liquid.builtin.output import Output, OutputNode
from liquid.builtin.tags.echo_tag import EchoNode, EchoTag
from liquid.exceptions import (
    LiquidError,
    LiquidValueError,
    ResourceLimitError,
    StopRender,
)
from liquid.filter import string_filter
from liquid.stringify import to_liquid_string
from liquid.token import Token

MAX_LOOP_ITERATIONS = 15
MAX_OUTPUT_CHARS = 65_536
MAX_SOURCE_CHARS = 65_536
MAX_RENDER_SECONDS = 1.0
# `assign`/`capture` keep values out of the output stream, so bound them too. The
# unit is sys.getsizeof bytes, and assigning a context value counts it in full:
# generous, so a flow may still `assign` a large HTTP body.
_MAX_LOCALS_BYTES = 64 * MAX_OUTPUT_CHARS

_TOO_LONG = f"template longer than {MAX_SOURCE_CHARS} characters"

logger = logging.getLogger(__name__)


class TemplateError(ValueError):
    """Liquid that does not parse; str() says where and why."""


class RenderLimitExceeded(RuntimeError):
    """A render that hit a limit (loop iterations, output size, source size, time);
    str() names the limit."""


def render_json(value: Any) -> str:
    """Compact JSON of `value`, non-ASCII kept; the `to_json` filter's output.

    Never raises for Liquid values: missing (undefined) is `null`, ranges are
    arrays, anything else JSON lacks (dates) becomes its string.
    """
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), default=_json_default
    )


def _json_default(value: Any) -> Any:
    if is_undefined(value):
        return None
    if isinstance(value, Mapping):  # `forloop`, drops
        return dict(value)
    return list(value) if isinstance(value, range) else str(value)


def _to_text(value: object) -> str:
    # Studio shows objects as JSON, never Python's repr (python-liquid prints dicts
    # as `{'a': 1}` and concatenates list items). Lists go JSON too: a list of
    # `parsed` objects is the common case, and `join` still gives Liquid's text.
    if isinstance(value, dict | list | tuple):
        return render_json(value)
    return to_liquid_string(value, autoescape=False)


class _OutputNode(OutputNode):
    __slots__ = ()

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        return buffer.write(_to_text(self.expression.evaluate(context)))


class _EchoNode(EchoNode, _OutputNode):
    """`{% echo %}` prints like `{{ }}` (MRO picks `_OutputNode.render_to_output`)."""


class _Output(Output):
    node_class = _OutputNode


class _Echo(EchoTag):
    node_class = _EchoNode


class _Buffer(StringIO):
    """Output that refuses to grow past MAX_OUTPUT_CHARS characters (python-liquid's
    `output_stream_limit` counts UTF-8 bytes: Spanish or emoji text would hit it early).
    """

    def __init__(self) -> None:
        super().__init__()
        self.used = 0

    def write(self, text: str) -> int:
        self.used += len(text)
        if self.used > MAX_OUTPUT_CHARS:
            raise RenderLimitExceeded(f"output over {MAX_OUTPUT_CHARS} characters")
        return super().write(text)


@string_filter
def _bounded_replace(value: str, old: object, new: object = "") -> str:
    # The one built-in string filter whose result grows with the product of its
    # inputs; refuse before building it, since a single call cannot be interrupted.
    old_s, new_s = str(old), str(new)
    if len(value) + value.count(old_s) * (len(new_s) - len(old_s)) > MAX_OUTPUT_CHARS:
        raise RenderLimitExceeded(f"replace result over {MAX_OUTPUT_CHARS} characters")
    return value.replace(old_s, new_s)


def _huge_range(value: object) -> bool:
    # Liquid ranges step by 1; len() itself overflows on absurd literals.
    return isinstance(value, range) and value.stop - value.start > MAX_OUTPUT_CHARS


class _Context(RenderContext):
    """Render context that meters loop iterations, filter calls and the clock."""

    deadline = float("inf")
    iterations = 0

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitExceeded(f"render took over {MAX_RENDER_SECONDS} seconds")

    @contextmanager
    def loop(self, namespace: Mapping[str, object], forloop: Any) -> Iterator[Any]:
        # Count iterations as they happen (so an early `break` costs nothing), per
        # loop as Studio does ("15 iterations per loop"); nested loops are bounded
        # by the clock and the output limit.
        forloop.it = self._metered(forloop.it)
        with super().loop(namespace, forloop) as context:
            yield context

    def _metered(self, items: Iterator[Any]) -> Iterator[Any]:
        for count, item in enumerate(items, start=1):
            self.iterations += 1
            if count > MAX_LOOP_ITERATIONS:
                raise RenderLimitExceeded(
                    f"more than {MAX_LOOP_ITERATIONS} loop iterations"
                )
            self.check_deadline()
            yield item

    def stopindex(self, key: str, index: int | None = None) -> int:
        # python-liquid calls this with a loop's end index *before* it skips to
        # `offset:` or lists the items for `reversed`: the only point at which a
        # `(1..100000000) reversed` can be refused before it costs seconds.
        if index is not None and index > MAX_OUTPUT_CHARS:
            raise RenderLimitExceeded(f"loop over more than {MAX_OUTPUT_CHARS} items")
        return super().stopindex(key, index)

    def filter(self, name: str, token: Token | None) -> Callable[..., object]:
        func = super().filter(name, token)

        def guarded(left: object, *args: object, **kwargs: object) -> object:
            self.check_deadline()
            if any(_huge_range(arg) for arg in (left, *args)):
                # `(1..100000000) | join` would materialise the range in one call.
                raise RenderLimitExceeded(f"{name} on a range over {MAX_OUTPUT_CHARS}")
            try:
                result = func(left, *args, **kwargs)
            except (LiquidError, TypeError, ValueError, ArithmeticError) as err:
                # Lenient: a failing filter (`divided_by: 0`, a missing argument)
                # yields nothing, which a later `default` can still replace.
                reason = err.message if isinstance(err, LiquidError) else err
                logger.warning("liquid filter %r failed: %s", name, reason)
                return self.env.undefined(name, token=token)
            self.check_deadline()
            if isinstance(result, str | list) and len(result) > MAX_OUTPUT_CHARS:
                raise RenderLimitExceeded(
                    f"{name} result over {MAX_OUTPUT_CHARS} characters or items"
                )
            return result

        return guarded

    def get_buffer(self, buf: TextIO | None = None) -> StringIO:
        return _Buffer()  # for `capture`: each captured value is bounded alike


class _StudioEnvironment(Environment):
    local_namespace_limit = _MAX_LOCALS_BYTES

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        # Flows have no template files: `include`/`render` become unknown tags,
        # reported at import rather than failing on every render.
        del self.tags["include"], self.tags["render"]
        self.add_tag(_Output)
        self.add_tag(_Echo)
        self.add_filter("to_json", render_json)
        self.add_filter("replace", _bounded_replace)


_ENV = _StudioEnvironment()


def _where(source: str, index: int) -> str:
    if index < 0:
        return ""
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return f" (line {line}, column {column})"


def _describe(err: Exception, source: str) -> str:
    """One line, unlike python-liquid's str(), which draws a multi-line caret."""
    if not isinstance(err, LiquidError):
        return f"{type(err).__name__}: {err}"
    index = err.token.start_index if err.token else -1
    return f"{err.message}{_where(source, index)}"


@lru_cache(maxsize=2048)  # flows render the same few templates over and over
def _parse(source: str) -> BoundTemplate | str:
    """The parsed template, or a one-line message saying why `source` is invalid
    (a message, not an exception, so cached re-raises carry no stale traceback)."""
    try:
        template = _ENV.from_string(source)
    except LiquidError as err:
        return _describe(err, source)
    # python-liquid only notices an unknown filter when it runs; a flow using a
    # filter we lack is an import problem, not a silently wrong message.
    analysis = template.analyze(include_partials=False)
    for name, spans in analysis.filters.items():
        if name not in _ENV.filters:
            return f"unknown filter '{name}'{_where(source, spans[0].index)}"
    return template


def check_syntax(source: str) -> str | None:
    """None when `source` parses, else a one-line message (with line/column where
    python-liquid gives a position). Never raises."""
    if len(source) > MAX_SOURCE_CHARS:
        return _TOO_LONG
    parsed = _parse(source)
    return parsed if isinstance(parsed, str) else None


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render Studio-style Liquid leniently.

    Missing variables and properties render empty. A failing filter (`divided_by: 0`)
    yields empty; any other runtime error (`{% if "3" > 2 %}`) ends that top-level
    tag's output. Both are logged, never raised. Raises RenderLimitExceeded when a
    limit is hit (source size, loop iterations, output size, time) and TemplateError
    when `source` does not parse (check_syntax says so at import).
    """
    if len(source) > MAX_SOURCE_CHARS:
        raise RenderLimitExceeded(_TOO_LONG)
    if "{{" not in source and "{%" not in source:
        return source  # most bodies are plain text: skip the parse cache
    parsed = _parse(source)
    if isinstance(parsed, str):
        raise TemplateError(parsed)
    ctx = _Context(parsed, globals=parsed.make_globals(context))
    ctx.deadline = time.monotonic() + MAX_RENDER_SECONDS
    buffer = _Buffer()
    for node in parsed.nodes:
        try:
            node.render(ctx, buffer)
        except RenderLimitExceeded:
            raise
        except (ResourceLimitError, LiquidValueError) as err:
            # LiquidValueError: python-liquid's own caps on range and integer sizes.
            raise RenderLimitExceeded(str(err.message)) from err
        except StopRender:
            break
        except Exception as err:
            # python-liquid's lax mode, minus its hole (it swallows resource limits
            # too). Python errors as well: some escape python-liquid (`.size` of a
            # range too long for len() raises OverflowError).
            logger.warning("liquid error skipped: %s", _describe(err, source))
    ctx.check_deadline()
    return buffer.getvalue()
