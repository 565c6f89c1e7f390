"""The suite really runs on the throwaway PostgreSQL cluster, migrated."""

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db


def test_the_tests_run_on_postgresql_not_sqlite(postgres_cluster):
    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), current_database(), inet_server_port()")
        version, database, port = cursor.fetchone()

    assert connection.vendor == "postgresql"
    assert version.startswith("PostgreSQL ")
    assert database == settings.DATABASES["default"]["NAME"] == "test_switchboard"
    assert port == postgres_cluster.port


def test_the_open_conversation_rule_is_a_partial_unique_index():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
            ["one_open_conversation_per_contact_and_sender"],
        )
        (definition,) = cursor.fetchone()

    assert definition.startswith("CREATE UNIQUE INDEX")
    assert "(contact_id, sender_id)" in definition
    assert "WHERE (NOT ((phase)::text = 'closed'::text))" in definition
