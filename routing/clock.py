"""The time routing runs on: the wall clock, or routesim's virtual one."""

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from datetime import datetime

from django.utils import timezone

_override: contextvars.ContextVar[Callable[[], datetime] | None] = (
    contextvars.ContextVar("routing_clock", default=None)
)


def now() -> datetime:
    override = _override.get()
    return override() if override is not None else timezone.now()


@contextlib.contextmanager
def using(clock: Callable[[], datetime]) -> Iterator[None]:
    """Run routing on `clock` (a virtual clock) inside the block."""
    token = _override.set(clock)
    try:
        yield
    finally:
        _override.reset(token)
