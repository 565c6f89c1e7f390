"""Which servers answer: daphne alone under `make run`; in production nginx in
front, gunicorn for HTTP and daphne for the sockets behind it."""

import urllib.request


def test_http_is_answered_by_the_shape_s_own_server(stack):
    with urllib.request.urlopen(f"{stack.url}/healthz", timeout=5) as response:
        server = response.headers.get("Server", "")

    expected = "nginx" if stack.shape == "production" else "daphne"
    assert server.lower().startswith(expected), server
    if stack.shape == "production":
        assert "Booting worker" in stack.log("web-http")  # gunicorn took it
