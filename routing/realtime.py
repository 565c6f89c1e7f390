"""Live updates for browsers: the one place that publishes to the channel layer.

The database is the record; a group message is only a nudge that something changed,
carrying ids for the consumer to render from. Publishing happens after the
surrounding transaction commits, so a browser never hears of a row it cannot read,
and it is best effort: a channel layer that is down is logged, never raised into
the business transaction that already happened.
"""

import asyncio
import logging
import os
import re
import threading
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

_GROUP_UNSAFE = re.compile(r"[^a-zA-Z0-9._-]")


def group_name(*parts: object) -> str:
    """A channel-layer group name from parts such as ("thread", 12)."""
    name = ".".join(_GROUP_UNSAFE.sub("_", str(part)) for part in parts)
    return name[:99]


def publish_on_commit(
    groups: Iterable[str], event_type: str, **payload: object
) -> None:
    """Send `{"type": event_type, **payload}` to each group after commit.

    `event_type` is `entity.past_tense` (`message.received`); consumers receive it in
    the method `entity_past_tense`.
    """
    targets = list(dict.fromkeys(groups))
    message = {"type": event_type, **payload}
    transaction.on_commit(lambda: _send(targets, message), robust=True)


# Every message to a group carries the group's next sequence number, so that a
# console which sees a gap (the channel layer delivers at most once) knows to
# catch up. The counters live beside the channel layer: in Redis, shared by every
# process, or in this process for the in-memory layer of tests.
_local_counters: defaultdict[str, int] = defaultdict(int)
_local_lock = threading.Lock()


@lru_cache(maxsize=1)
def _redis() -> Any:
    backend = str(settings.CHANNEL_LAYERS["default"]["BACKEND"])
    if not backend.startswith("channels_redis"):
        return None
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


def next_sequences(groups: list[str]) -> list[int]:
    """The next sequence number of each group (one round trip to Redis)."""
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        for group in groups:
            pipe.incr(f"switchboard:seq:{group}")
        return [int(number) for number in pipe.execute()]
    with _local_lock:
        for group in groups:
            _local_counters[group] += 1
        return [_local_counters[group] for group in groups]


def current_sequence(group: str) -> int:
    """The last sequence number sent to `group` (0 if none)."""
    client = _redis()
    if client is not None:
        return int(client.get(f"switchboard:seq:{group}") or 0)
    with _local_lock:
        return _local_counters[group]


class _Publisher:
    """An event loop of this process's own, in a thread, to publish from sync code.

    The Redis channel layer keeps its connections per event loop. Outside an ASGI
    server, `async_to_sync` runs each call on a new loop, so every publish from a
    WSGI request or a Celery job would open (and drop) a Redis connection; on this
    loop they are opened once and reused.
    """

    TIMEOUT = 5.0

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        threading.Thread(
            target=self.loop.run_forever, name="channel-layer-publisher", daemon=True
        ).start()

    def run(self, coroutine: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(self.TIMEOUT)


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _group_send_all(layer: Any, messages: list[tuple[str, dict]]) -> list[Any]:
    """Send each (group, message); what each send raised, or None."""
    global _publisher
    if _redis() is None:  # the in-memory layer of tests lives on the caller's loop
        outcomes: list[Any] = []
        for group, message in messages:
            try:
                async_to_sync(layer.group_send)(group, message)
                outcomes.append(None)
            except Exception as exc:
                outcomes.append(exc)
        return outcomes
    with _publisher_lock:
        if _publisher is None or _publisher.pid != os.getpid():  # forked: a new one
            _publisher = _Publisher()

    async def send_all() -> list[Any]:
        return await asyncio.gather(
            *(layer.group_send(group, message) for group, message in messages),
            return_exceptions=True,
        )

    return list(_publisher.run(send_all()))


def _send(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        numbers = next_sequences(groups)
        outcomes = _group_send_all(
            layer,
            [
                (group, {**message, "seq": number})
                for group, number in zip(groups, numbers, strict=True)
            ],
        )
    except Exception as exc:
        outcomes = [exc] * len(groups)
    for group, outcome in zip(groups, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            # Nobody listening is no loss: the database is the record.
            logger.warning(
                "could not publish %s to %s: %s", message["type"], group, outcome
            )
