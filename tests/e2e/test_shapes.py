"""Which servers answer: daphne alone under `make run`; in production nginx in
front, gunicorn for HTTP and daphne for the sockets behind it."""

import urllib.error
import urllib.request


def test_http_is_answered_by_the_shape_s_own_server(stack):
    with urllib.request.urlopen(f"{stack.url}/healthz", timeout=5) as response:
        server = response.headers.get("Server", "")

    expected = "nginx" if stack.shape == "production" else "daphne"
    assert server.lower().startswith(expected), server
    if stack.shape == "production":
        assert "Booting worker" in stack.log("web-http")  # gunicorn took it


def test_webhooks_are_answered_by_their_own_server_in_production(stack):
    request = urllib.request.Request(
        f"{stack.url}/webhooks/twilio/status",
        data=b"MessageSid=SMx&MessageStatus=sent",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        urllib.request.urlopen(request, timeout=5)
        status = 200
    except urllib.error.HTTPError as refused:
        status = refused.code

    assert status == 403  # unsigned: refused
    refusal = "X-Twilio-Signature is missing"
    if stack.shape == "production":  # by the webhooks' own gunicorn
        assert refusal in stack.log("web-hooks")
        assert refusal not in stack.log("web-http")
    else:  # by the one daphne of `make run`
        assert refusal in stack.log("web")
