"""Test settings: locmem messaging, in-memory channel layer, no broker needed."""

import os
import tempfile

os.environ.setdefault("DEBUG", "1")

from config.settings.base import *  # noqa: E402,F403
from config.settings.base import DATABASES, VAR_DIR  # noqa: E402

SECRET_KEY = "test-secret-key"
TWILIO_ACCOUNT_SID = "AC00000000000000000000000000000000"
TWILIO_AUTH_TOKEN = "test-auth-token"
PUBLIC_BASE_URL = ""
SWITCHBOARD_MESSAGING_BACKEND = "bots.messaging.backends.locmem.LocmemBackend"
SWITCHBOARD_SIMULATOR = True

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CELERY_BROKER_URL = "memory://"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# A file, not memory: some tests close the connection or use several threads.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(
            tempfile.gettempdir(), f"switchboard-test-{os.getpid()}.sqlite3"
        )
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# No internal destination is allowed by default: tests opt in with `settings`.
SWITCHBOARD_HTTP_ALLOWLIST = []
