"""Outbound HTTP for Studio's make-http-request and run-function widgets.

`http_request` never raises for network trouble: every outcome is an `HttpResult`.
Flows are written by users, so their URLs are untrusted. The SSRF guard lives in
the network backend under httpx: each socket is opened to an address that was
resolved and checked in the same call, so there is no gap between the check and
the connection for DNS rebinding to use, and redirect hops take the same path.
"""

import functools
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpcore
import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5
FORM = "application/x-www-form-urlencoded"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class HttpResult:
    """What a widget learns from one request.

    `ok` only for a 2xx answer within the time limit. On failure Studio leaves the
    widget's outputs empty, so `body`, `content_type` are "" and `parsed` is None;
    `status_code` stays when the server did answer, and `error` says why.
    """

    ok: bool
    status_code: int | None
    body: str
    content_type: str
    parsed: Any | None
    error: str


class RequestRefused(Exception):
    """The guard will not let this request leave: `reason` says why."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host, self.reason = host, reason


def _refusal(ip: IPAddress) -> str | None:
    """Why `ip` is not a public destination, or None when it is."""
    judged: IPAddress = ip
    if isinstance(ip, ipaddress.IPv6Address):
        # These IPv6 forms reach an IPv4 host (Python 3.11 does not see through
        # ::ffff:127.0.0.1, for one): judge that host instead.
        nat64 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None
        judged = ip.ipv4_mapped or ip.sixtofour or nat64 or ip
    site_local = isinstance(judged, ipaddress.IPv6Address) and judged.is_site_local
    checks = (
        (judged.is_unspecified, "an unspecified"),
        (judged.is_loopback, "a loopback"),
        (judged.is_link_local, "a link-local"),
        (judged.is_multicast, "a multicast"),
        (judged in _CGNAT, "a carrier-grade NAT"),
        (judged.is_private, "a private"),
        (judged.is_reserved, "a reserved"),
        (site_local, "a site-local"),
        (not judged.is_global, "a non-public"),
    )
    name = str(ip) if judged is ip else f"{ip} ({judged})"
    return next((f"{name} is {kind} address" for bad, kind in checks if bad), None)


@dataclass(frozen=True)
class Allowlist:
    """`SWITCHBOARD_HTTP_ALLOWLIST`: hostnames and CIDR networks let through."""

    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def from_settings(cls) -> "Allowlist":
        hosts, networks = set(), []
        for entry in getattr(settings, "SWITCHBOARD_HTTP_ALLOWLIST", []):
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def permits(self, host: str, ip: IPAddress) -> bool:
        """An allowed hostname admits every address it resolves to."""
        if host.lower().rstrip(".") in self.hosts:
            return True
        return any(ip in net for net in self.networks)


def _left(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    """Seconds the next wait may take: its own timeout, cut to the overall deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("overall time limit reached")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every wait ends by the request's overall deadline, so
    a server trickling bytes cannot stretch the exchange past `timeout`."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait = _left(self._deadline, timeout, httpcore.ReadTimeout)
        return self._inner.read(max_bytes, wait)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = _left(self._deadline, timeout, httpcore.ConnectTimeout)
        tls = self._inner.start_tls(ssl_context, server_hostname, wait)
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to checked addresses, within the deadline.

    httpcore hands us the URL's host (TLS SNI and the Host header keep using it);
    we resolve it once, refuse if ANY address is refused, then connect to those
    very addresses, never resolving again.
    """

    def __init__(self, allow: Allowlist, deadline: float) -> None:
        self._allow, self._deadline = allow, deadline
        self._plain = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception = httpcore.ConnectError(f"no address for {host}")
        for ip in self._checked_addresses(host, port):
            wait = _left(self._deadline, timeout, httpcore.ConnectTimeout)
            try:
                stream = self._plain.connect_tcp(
                    str(ip), port, wait, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # e.g. ::1 refused while 127.0.0.1 listens: try the next
                continue
            return _DeadlineStream(stream, self._deadline)
        raise error

    def _checked_addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(i[4][0]) for i in infos))
        for ip in addresses:
            reason = None if self._allow.permits(host, ip) else _refusal(ip)
            if reason:
                raise RequestRefused(host, reason)
        return addresses


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle is the slow part of a client: do it once per process.
    return httpx.create_ssl_context()


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport (so its exception mapping), over the guarded backend."""

    def __init__(self, backend: _GuardedBackend) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False)
        # HTTPTransport takes no network backend, so give it a pool that uses ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(), network_backend=backend
        )


def _build(
    client: httpx.Client,
    method: str,
    url: str,
    content_type: str,
    body: str,
    parameters: Sequence[tuple[str, str]],
    headers: Mapping[str, str] | None,
) -> httpx.Request:
    """The first request: GET parameters join the URL's own query, POST form-encodes
    them (or sends `body` when there are none); other content types send `body`."""
    target = httpx.URL(url)
    if method == "GET":
        if parameters:  # appended: httpx's `params` would replace the URL's query
            extra = urlencode(parameters)
            query = f"{target.query.decode()}&{extra}" if target.query else extra
            target = target.copy_with(query=query.encode())
        return client.build_request(method, target, headers=headers)
    if content_type == FORM and parameters:
        body = urlencode(parameters)
    sent = {"Content-Type": content_type, **(headers or {})}
    return client.build_request(method, target, content=body, headers=sent)


def _failure(error: str, status_code: int | None = None) -> HttpResult:
    return HttpResult(False, status_code, "", "", None, error)


def _answer(response: httpx.Response, max_bytes: int) -> HttpResult:
    """Read at most `max_bytes` of a final response into a result."""
    if not response.is_success:
        return _failure(f"HTTP {response.status_code}", response.status_code)
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) > max_bytes:
            return _failure(f"response over {max_bytes} bytes", response.status_code)
    # httpx falls back to UTF-8 when the charset is missing or unknown.
    text = data.decode(response.encoding or "utf-8", errors="replace")
    content_type = response.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    parsed = None
    if media == "application/json" or media.endswith("+json"):
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
    return HttpResult(True, response.status_code, text, content_type, parsed, "")


def _exchange(client: httpx.Client, req: httpx.Request, max_bytes: int) -> HttpResult:
    """Send `req`, following up to MAX_REDIRECTS redirects, each one re-checked
    (the scheme here, the address when the backend connects)."""
    for _hop in range(MAX_REDIRECTS + 1):
        if req.url.scheme not in ("http", "https"):
            reason = f"scheme {req.url.scheme!r} is not http or https"
            raise RequestRefused(req.url.host, reason)
        response = client.send(req, stream=True)
        try:
            if response.next_request is None:
                return _answer(response, max_bytes)
            req = response.next_request
        finally:
            response.close()
    return _failure(f"more than {MAX_REDIRECTS} redirects")


def http_request(
    *,
    method: str,
    url: str,
    content_type: str = FORM,
    body: str = "",
    parameters: Sequence[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    max_bytes: int = 65_536,
) -> HttpResult:
    """Make one Studio-style request; never raises for network problems.

    `timeout` bounds the whole exchange (connect, redirects, reading). Refusals by
    the SSRF guard are logged at WARNING and come back as "refused: ..." errors.
    """
    method = method.upper()
    if method not in ("GET", "POST"):
        return _failure(f"unsupported method {method}")
    deadline = time.monotonic() + timeout
    backend = _GuardedBackend(Allowlist.from_settings(), deadline)
    try:
        with httpx.Client(
            transport=_GuardedTransport(backend),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            request = _build(
                client, method, url, content_type, body, parameters, headers
            )
            return _exchange(client, request, max_bytes)
    except RequestRefused as exc:
        host = exc.host or "(no host)"
        logger.warning("Refused HTTP request to %s: %s", host, exc.reason)
        return _failure(f"refused: {exc.reason}")
    except httpx.TimeoutException:
        return _failure(f"timed out after {timeout:g} s")
    except httpx.TransportError as exc:
        return _failure(f"connection failed: {exc or type(exc).__name__}")
    except httpx.HTTPError as exc:
        return _failure(f"request failed: {exc or type(exc).__name__}")
    except (httpx.InvalidURL, ValueError) as exc:
        return _failure(f"invalid request: {exc}")
