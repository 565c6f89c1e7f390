"""A fresh in-memory database for offline tools (runflow, routesim): nothing they do
touches the real one."""

import uuid

from django.conf import settings
from django.core.management import call_command
from django.db import connections


def use_throwaway_database() -> None:
    """Point this process's default database at a new, migrated in-memory SQLite."""
    connections.close_all()
    name = f"file:throwaway-{uuid.uuid4().hex}?mode=memory&cache=shared"
    database = settings.DATABASES["default"]
    database.clear()
    database.update(
        ENGINE="django.db.backends.sqlite3",
        NAME=name,
        OPTIONS={"uri": True},
        ATOMIC_REQUESTS=False,
        AUTOCOMMIT=True,
        CONN_MAX_AGE=0,
        CONN_HEALTH_CHECKS=False,
        TIME_ZONE=None,
        TEST={},
        USER="",
        PASSWORD="",
        HOST="",
        PORT="",
    )
    for alias in list(connections.settings):
        if hasattr(connections._connections, alias):  # type: ignore[attr-defined]
            del connections[alias]
    connections.__dict__.pop("settings", None)
    call_command("migrate", verbosity=0, interactive=False)
