import pytest
from django.db import connection

from tests.bots.test_broker_down import broker_down  # noqa: F401


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_stays_200_with_the_broker_down(client, broker_down):  # noqa: F811
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["broker"] == "unreachable"


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_the_database_is_down(client, monkeypatch, tmp_path):
    connection.close()
    # A database file in a folder that does not exist cannot be opened.
    monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "no" / "db"))

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    monkeypatch.undo()
    connection.close()
