"""Live updates for browsers: the one place that publishes to the channel layer.

The database is the record; a group message is only a nudge that something changed,
carrying ids for the consumer to render from. Publishing happens after the
surrounding transaction commits, so a browser never hears of a row it cannot read,
and it is best effort: a channel layer that is down is logged, never raised into
the business transaction that already happened.
"""

import logging
import re
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
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


def _send(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:
            logger.warning(
                "could not publish %s to %s", message["type"], group, exc_info=True
            )
