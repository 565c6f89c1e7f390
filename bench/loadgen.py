"""Closed-loop saturation: C connections, each sending its next request as soon as
the last is answered, for a fixed time. The result is the server's capacity.

A minimal HTTP/1.1 client on asyncio streams, because the load generator shares
the machine's two cores with the server: measured here against the bare view on
gunicorn, httpx tops out near 630 requests/s where this client reaches 2,100, so
with httpx the baseline would measure the client. Keep-alive where the server
allows it, a new connection where it says `Connection: close`.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.stats import summarize

# One request: method, path, body, headers. Called once per request.
Request = Callable[[], tuple[str, str, bytes, dict[str, str]]]


@dataclass
class Outcome:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    def as_json(self) -> dict:
        ok = sum(n for code, n in self.statuses.items() if 200 <= code < 300)
        return {
            "requests": len(self.latencies),
            "ok": ok,
            "errors": self.errors + len(self.latencies) - ok,
            "rps": round(ok / self.seconds, 1) if self.seconds else 0.0,
            "latency_ms": summarize(self.latencies),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bool]:
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    await reader.readexactly(length)
    return status, close


def _encode(host: str, method: str, path: str, body: bytes, headers: dict) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def saturate(
    bases: list[str], request: Request, *, connections: int, seconds: float
) -> Outcome:
    """Send `request()`s over `connections` connections for `seconds`, the
    connections spread evenly over the servers at `bases`."""
    outcome = Outcome(seconds)
    deadline = time.monotonic() + seconds

    async def connection(base: str) -> None:
        parts = urlsplit(base)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader = writer = None
        while time.monotonic() < deadline:
            method, path, body, headers = request()
            raw = _encode(f"{host}:{port}", method, path, body, headers)
            started = time.monotonic()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                assert reader is not None
                status, close = await _exchange(reader, writer, raw)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                outcome.errors += 1
                writer = _close(writer)
                await asyncio.sleep(0.01)
                continue
            outcome.latencies.append(time.monotonic() - started)
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
            if close:
                writer = _close(writer)
        _close(writer)

    started = time.monotonic()
    await asyncio.gather(
        *(connection(bases[number % len(bases)]) for number in range(connections))
    )
    outcome.seconds = time.monotonic() - started
    return outcome


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()
    return None
