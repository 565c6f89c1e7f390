"""make-http-request's client against a real local server, and its SSRF guard.

Only 127.0.0.1 is ever contacted. Every other destination must be refused before
a socket is opened, which `no_connect` makes a test failure.
"""

import datetime
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from bots.flows import http as http_module
from bots.flows.http import HttpResult, http_request

BIG = 100_000


class Handler(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, format, *args) -> None:  # keep test output quiet
        pass

    def reply(self, status: int, body: bytes, content_type: str, **headers) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.hits.append(self.path)
        path = urlsplit(self.path).path
        if path == "/json":
            body = json.dumps({"name": "Ana", "sites": [{"id": 1}]}).encode()
            self.reply(200, body, "application/json; charset=utf-8")
        elif path == "/problem":
            self.reply(200, b'{"title": "x"}', "application/problem+json")
        elif path == "/bad-json":
            self.reply(200, b"{not json", "application/json")
        elif path == "/text":
            self.reply(200, "héllo".encode(), "text/plain; charset=utf-8")
        elif path == "/json-as-text":
            self.reply(200, b'{"a": 1}', "text/plain")
        elif path == "/error":
            self.reply(500, b'{"error": "boom"}', "application/json")
        elif path == "/slow":
            time.sleep(2)
            self.reply(200, b"late", "text/plain")
        elif path == "/trickle":
            self.trickle()
        elif path == "/huge":
            self.reply(200, b"x" * BIG, "text/plain")
        elif path.startswith("/go/"):
            self.redirect(path.removeprefix("/go/"))
        elif path == "/echo":
            self.echo()
        else:
            self.reply(404, b"", "text/plain")

    def do_POST(self) -> None:
        self.hits.append(self.path)
        self.echo()

    def echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = {
            "method": self.command,
            "query": urlsplit(self.path).query,
            "content_type": self.headers.get("Content-Type"),
            "body": self.rfile.read(length).decode(),
        }
        self.reply(200, json.dumps(received).encode(), "application/json")

    def redirect(self, where: str) -> None:
        targets = {
            "json": "/json",
            "metadata": "http://169.254.169.254/latest/meta-data/",
            "file": "file:///etc/passwd",
            "loop": "/go/loop",
        }
        self.send_response(302)
        self.send_header("Location", targets[where])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def trickle(self) -> None:
        """Headers at once, then a byte every 0.1 s: each read is quick, the whole
        is not."""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        try:
            for _ in range(50):
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:  # the client gave up, as it should
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # do not wait for /slow and /trickle at teardown

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up (timeout, size cap) is expected here


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def hits() -> Iterator[list[str]]:
    """The paths the local server was asked for during the test."""
    Handler.hits.clear()
    yield Handler.hits
    Handler.hits.clear()


@pytest.fixture
def allow_loopback(settings) -> None:
    settings.SWITCHBOARD_HTTP_ALLOWLIST = ["127.0.0.1/32"]


@pytest.fixture
def no_connect(monkeypatch) -> list[object]:
    """Fail any attempt to open a TCP connection."""
    attempts: list[object] = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise AssertionError(f"tried to connect to {address}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def get(url: str, **kwargs) -> HttpResult:
    return http_request(method="GET", url=url, **kwargs)


# The guard without an allow-list.


def test_loopback_is_refused_without_the_allowlist(server, hits, caplog):
    with caplog.at_level(logging.WARNING, logger="bots.flows.http"):
        result = get(f"{server}/json")
    assert result == HttpResult(
        ok=False,
        status_code=None,
        body="",
        content_type="",
        parsed=None,
        error="refused: 127.0.0.1 is a loopback address",
    )
    assert hits == []
    assert "127.0.0.1" in caplog.text and "loopback" in caplog.text


def test_a_name_resolving_to_loopback_is_refused(server, hits):
    port = server.rsplit(":", 1)[1]
    result = get(f"http://localhost:{port}/json")
    assert not result.ok
    assert result.error == "refused: 127.0.0.1 is a loopback address"
    assert hits == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.1.2.3/", "10.1.2.3 is a private address"),
        ("http://172.16.0.1/", "172.16.0.1 is a private address"),
        ("https://192.168.1.1/admin", "192.168.1.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local"),
        ("http://100.64.0.1/", "100.64.0.1 is a carrier-grade NAT address"),
        ("http://0.0.0.0:8000/", "0.0.0.0 is an unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/", "240.0.0.1 is a"),
        ("http://127.1.2.3/", "127.1.2.3 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1 (127.0.0.1) is a loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "::ffff:a9fe:a9fe (169.254.169.254) is a link"),
        ("http://[64:ff9b::a00:1]/", "64:ff9b::a00:1 (10.0.0.1) is a private"),
        ("http://[2002:7f00:1::]/", "2002:7f00:1:: (127.0.0.1) is a loopback"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://[fc00::1]/", "fc00::1 is a private address"),
        ("http://[::]/", ":: is an unspecified address"),
        ("http://[ff02::1]/", "ff02::1 is a multicast address"),
    ],
)
def test_internal_literals_are_refused_before_any_connection(no_connect, url, reason):
    started = time.monotonic()
    result = get(url)
    assert time.monotonic() - started < 0.5
    assert not result.ok and result.status_code is None
    assert result.error.startswith(f"refused: {reason}")
    assert no_connect == []


def test_an_allowlisted_network_does_not_open_others(settings, no_connect):
    settings.SWITCHBOARD_HTTP_ALLOWLIST = ["10.0.0.0/8", "crm.internal"]
    result = get("http://192.168.0.10/")
    assert result.error == "refused: 192.168.0.10 is a private address"
    assert no_connect == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/"]
)
def test_other_schemes_are_refused(settings, no_connect, url):
    settings.SWITCHBOARD_HTTP_ALLOWLIST = ["127.0.0.1/32"]
    result = get(url)
    assert not result.ok
    assert result.error.startswith("refused: scheme")
    assert no_connect == []


def test_other_methods_are_refused(no_connect):
    result = http_request(method="DELETE", url="http://example.com/")
    assert result.error == "unsupported method DELETE"
    assert no_connect == []


def test_an_unparseable_url_fails_without_raising(no_connect):
    result = get("http://exa mple.com:notaport/")
    assert not result.ok and result.error
    assert no_connect == []


# Allowed destinations: the local server.


def test_allowlisted_by_network(server, hits, allow_loopback):
    result = get(f"{server}/json")
    assert result.ok and result.error == ""
    assert result.status_code == 200
    assert result.content_type == "application/json; charset=utf-8"
    assert result.parsed == {"name": "Ana", "sites": [{"id": 1}]}
    assert json.loads(result.body) == result.parsed
    assert hits == ["/json"]


def test_allowlisted_by_hostname(server, hits, settings):
    settings.SWITCHBOARD_HTTP_ALLOWLIST = ["LOCALHOST"]
    port = server.rsplit(":", 1)[1]
    result = get(f"http://localhost:{port}/json")
    assert result.ok and result.parsed["name"] == "Ana"
    # The name is allowed, not the address behind it.
    assert get(f"{server}/json").error.startswith("refused: 127.0.0.1")


def test_plus_json_is_parsed(server, allow_loopback):
    assert get(f"{server}/problem").parsed == {"title": "x"}


@pytest.mark.parametrize("path", ["/text", "/json-as-text", "/bad-json"])
def test_other_answers_are_not_parsed(server, allow_loopback, path):
    result = get(f"{server}{path}")
    assert result.ok and result.parsed is None and result.body


def test_text_is_decoded_with_its_charset(server, allow_loopback):
    result = get(f"{server}/text")
    assert result.body == "héllo"
    assert result.content_type == "text/plain; charset=utf-8"


def test_get_parameters_join_the_query(server, allow_loopback):
    result = get(f"{server}/echo?keep=1", parameters=[("q", "a b"), ("q", "é&")])
    assert result.parsed["method"] == "GET"
    assert parse_qsl(result.parsed["query"]) == [
        ("keep", "1"),
        ("q", "a b"),
        ("q", "é&"),
    ]


def test_post_json_body_arrives_as_sent(server, allow_loopback):
    body = '{"name": "Ana María", "n": 1}'
    result = http_request(
        method="post",
        url=f"{server}/echo",
        content_type="application/json",
        body=body,
        headers={"X-Flow": "FW123"},
    )
    assert result.ok
    assert result.parsed["method"] == "POST"
    assert result.parsed["content_type"] == "application/json"
    assert result.parsed["body"] == body


def test_post_form_encodes_parameters(server, allow_loopback):
    parameters = [("name", "Ana María"), ("note", "1 & 2"), ("name", "x")]
    result = http_request(method="POST", url=f"{server}/echo", parameters=parameters)
    assert result.parsed["content_type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(result.parsed["body"]) == parameters


def test_post_form_sends_the_body_when_there_are_no_parameters(server, allow_loopback):
    result = http_request(method="POST", url=f"{server}/echo", body="a=1&b=2")
    assert result.parsed["body"] == "a=1&b=2"


def test_server_error_fails_with_its_status(server, allow_loopback):
    result = get(f"{server}/error")
    assert result == HttpResult(False, 500, "", "", None, "HTTP 500")


def test_not_found_fails(server, allow_loopback):
    assert get(f"{server}/nothing-here").status_code == 404


def test_slow_answer_times_out(server, allow_loopback):
    started = time.monotonic()
    result = get(f"{server}/slow", timeout=0.5)
    assert time.monotonic() - started < 1.2
    assert result == HttpResult(False, None, "", "", None, "timed out after 0.5 s")


def test_the_time_limit_covers_the_whole_exchange(server, allow_loopback):
    """Each byte of /trickle comes within the limit; the body does not."""
    started = time.monotonic()
    result = get(f"{server}/trickle", timeout=0.5)
    assert time.monotonic() - started < 1.0
    assert not result.ok and result.error == "timed out after 0.5 s"


def test_oversized_answer_is_cut_off(server, allow_loopback):
    result = get(f"{server}/huge")
    assert result == HttpResult(False, 200, "", "", None, "response over 65536 bytes")


def test_size_cap_is_inclusive(server, allow_loopback):
    assert get(f"{server}/json-as-text", max_bytes=8).ok
    assert get(f"{server}/json-as-text", max_bytes=7).error == "response over 7 bytes"


def test_closed_port_fails_without_raising(allow_loopback):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = get(f"http://127.0.0.1:{port}/")
    assert not result.ok and result.status_code is None
    assert result.error.startswith("connection failed")


# Redirects.


def test_redirects_are_followed(server, hits, allow_loopback):
    result = get(f"{server}/go/json")
    assert result.ok and result.parsed["name"] == "Ana"
    assert hits == ["/go/json", "/json"]


def test_redirect_to_metadata_is_refused_even_with_loopback_allowed(
    server, hits, allow_loopback, caplog
):
    real_connect = socket.create_connection
    targets: list[tuple[str, int]] = []

    def connect(address, *args, **kwargs):
        targets.append(address)
        return real_connect(address, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "create_connection", connect)
        result = get(f"{server}/go/metadata")
    assert result.error == "refused: 169.254.169.254 is a link-local address"
    assert result.status_code is None and result.body == ""
    assert hits == ["/go/metadata"]
    assert [host for host, _port in targets] == ["127.0.0.1"]  # never the metadata IP
    assert "169.254.169.254" in caplog.text


def test_redirect_to_a_file_url_is_refused(server, hits, allow_loopback):
    result = get(f"{server}/go/file")
    assert result.error == "refused: scheme 'file' is not http or https"
    assert hits == ["/go/file"]


def test_redirects_stop_after_five(server, hits, allow_loopback):
    result = get(f"{server}/go/loop")
    assert result.error == "more than 5 redirects"
    assert len(hits) == 6


# HTTPS: the socket goes to the checked address, TLS still speaks to the name.


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for "localhost" only (not for 127.0.0.1), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path, monkeypatch) -> Iterator[tuple[int, list[str]]]:
    """A TLS server on 127.0.0.1 that our client trusts; yields (port, SNI names)."""
    cert_file, key_file = self_signed(tmp_path)
    names: list[str] = []
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert_file, key_file)
    server_side.sni_callback = lambda _sock, name, _ctx: names.append(name)
    client_side = ssl.create_default_context(cafile=cert_file)
    monkeypatch.setattr(http_module, "_ssl_context", lambda: client_side)
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.socket = server_side.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], names
    httpd.shutdown()
    httpd.server_close()


def test_https_verifies_the_name_it_was_given(tls_server, hits, settings):
    port, names = tls_server
    settings.SWITCHBOARD_HTTP_ALLOWLIST = ["localhost"]
    result = get(f"https://localhost:{port}/echo")
    assert result.ok and result.parsed["method"] == "GET"
    assert names == ["localhost"]
    assert hits == ["/echo"]


def test_https_to_an_address_the_certificate_does_not_name_fails(
    tls_server, hits, allow_loopback
):
    port, _names = tls_server
    result = get(f"https://127.0.0.1:{port}/echo")
    assert not result.ok and "CERTIFICATE_VERIFY_FAILED" in result.error
    assert hits == []
