import subprocess

import pytest
from django.contrib.auth import authenticate
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from bots.models import Sender, Template
from config.settings import env


@pytest.mark.django_db
def test_loaddemo_creates_senders_people_and_the_reminder_and_is_idempotent(
    capsys, settings
):
    settings.DEBUG = True
    call_command("loaddemo")
    call_command("loaddemo")

    assert sorted(Sender.objects.values_list("address", "kind")) == [
        ("+15005550006", "sms"),
        ("messenger:108131232204637", "messenger"),
        ("whatsapp:+14155238886", "whatsapp"),
    ]
    for username in ("ana", "ben", "sam"):
        assert authenticate(username=username, password="demo") is not None
    assert authenticate(username="sam", password="demo").is_staff
    assert not authenticate(username="ana", password="demo").is_staff
    reminder = Template.objects.get(name="dentalink_reminder")
    assert "{{7}}" in reminder.body
    assert [b["title"] for b in reminder.buttons] == [
        "Confirmar asistencia",
        "Reprogramar",
    ]
    assert Template.objects.count() == 1
    assert "kept sender whatsapp:+14155238886" in capsys.readouterr().out


@pytest.mark.django_db
def test_loaddemo_is_refused_when_debug_is_off(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("loaddemo")
    assert not Sender.objects.exists()


def test_environment_readers_name_the_variable_on_bad_values(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    monkeypatch.setenv("SWITCHBOARD_SWEEP_SECONDS", "soon")
    monkeypatch.setenv("PUBLIC_BASE_URL", "support.example.com")

    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        env.env_bool("DEBUG")
    with pytest.raises(ImproperlyConfigured, match="SWITCHBOARD_SWEEP_SECONDS"):
        env.env_int("SWITCHBOARD_SWEEP_SECONDS", 5)
    with pytest.raises(ImproperlyConfigured, match="PUBLIC_BASE_URL"):
        env.env_url("PUBLIC_BASE_URL", schemes=("http", "https"))


def test_environment_readers_parse_good_values(monkeypatch):
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("ALLOWED_HOSTS", "a.example.com, b.example.com")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://support.example.com/")

    assert env.env_bool("DEBUG") is True
    assert env.env_list("ALLOWED_HOSTS", []) == ["a.example.com", "b.example.com"]
    assert env.env_url("PUBLIC_BASE_URL", schemes=("https",)) == (
        "https://support.example.com"
    )


def test_production_settings_refuse_to_start_without_a_secret_key():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import config.settings.base"],
        env={"PATH": "/usr/bin:/bin", "DEBUG": "0"},
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_without_twilio_settings_warns_at_start(settings):
    from bots.checks import check_messaging

    settings.DEBUG = False
    settings.SWITCHBOARD_MESSAGING_BACKEND = (
        "bots.messaging.backends.simulator.SimulatorBackend"
    )
    settings.TWILIO_AUTH_TOKEN = ""
    settings.PUBLIC_BASE_URL = ""

    ids = [warning.id for warning in check_messaging(None)]

    assert ids == ["bots.W001", "bots.W002", "bots.W003"]


def test_development_is_not_warned(settings):
    from bots.checks import check_messaging

    settings.DEBUG = True

    assert check_messaging(None) == []


def settings_from(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import the production settings in a process of its own with `environment`
    and print the default database's configuration as JSON."""
    import sys

    code = (
        "import json, config.settings.base as s; "
        "print(json.dumps(s.DATABASES['default'], default=str))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "DEBUG": "0", "SECRET_KEY": "x" * 50}
        | environment,
        capture_output=True,
        text=True,
    )


POSTGRES = "postgres://switchboard@db:5432/switchboard"


def test_postgresql_gets_a_connection_pool_per_process_by_default():
    import json

    pooled = settings_from({"DATABASE_URL": POSTGRES, "DB_POOL_MAX_SIZE": "12"})
    kept = settings_from(
        {"DATABASE_URL": POSTGRES, "DB_POOL": "0", "DB_CONN_MAX_AGE": "60"}
    )

    database = json.loads(pooled.stdout)
    assert database["OPTIONS"]["pool"]["max_size"] == 12
    assert database["CONN_MAX_AGE"] == 0
    assert "pool" not in json.loads(kept.stdout).get("OPTIONS", {})
    assert json.loads(kept.stdout)["CONN_MAX_AGE"] == 60


def test_a_pool_with_persistent_connections_is_refused_naming_both_variables():
    result = settings_from({"DATABASE_URL": POSTGRES, "DB_CONN_MAX_AGE": "60"})

    assert result.returncode != 0
    assert "DB_POOL and DB_CONN_MAX_AGE" in result.stderr
