"""Settings for every environment; production differs only by environment variables.

Unset variables mean the embedded defaults `make run` uses: SQLite under var/ and the
embedded Redis-protocol server on 127.0.0.1:6390.
"""

import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.settings.env import env_bool, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("SWITCHBOARD_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# The address Twilio uses to reach us, e.g. https://support.example.com. Webhook
# signatures are computed by Twilio over this URL, not over the one the proxy
# forwards to us.
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", schemes=("http", "https"))
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL] if PUBLIC_BASE_URL else []
if PUBLIC_BASE_URL:
    _public_host = PUBLIC_BASE_URL.split("://", 1)[1].split("/", 1)[0].split(":")[0]
    if _public_host not in ALLOWED_HOSTS and "*" not in ALLOWED_HOSTS:
        ALLOWED_HOSTS.append(_public_host)
if env_bool("TRUST_PROXY_HEADERS", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "routing",
    "bots",
    "agents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database(url: str) -> dict[str, Any]:
    # Persistent connections leak under ASGI (each request may run on a new
    # thread): off by default; the load bench lost requests with them on.
    # PostgreSQL gets a connection pool per process instead (DB_POOL).
    config: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))
    )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Several processes (web, worker, beat) share the file: WAL lets readers
        # run beside one writer, IMMEDIATE takes the write lock up front so two
        # writers queue instead of failing with "database is locked".
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    elif env_bool("DB_POOL", True):
        if config["CONN_MAX_AGE"]:
            raise ImproperlyConfigured(
                "DB_POOL and DB_CONN_MAX_AGE exclude each other: a pooled "
                "connection goes back to the pool after each request or job. "
                "Set DB_CONN_MAX_AGE=0, or DB_POOL=0 to keep connections instead."
            )
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env_int("DB_POOL_MAX_SIZE", 8),
            "timeout": 10,  # seconds to wait for a free connection
        }
    else:
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {
    "default": _database(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'switchboard.sqlite3'}"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One Redis serves the channel layer and the Celery broker. Unset: the embedded
# Redis-protocol server that `make run` starts.
REDIS_URL = env_url(
    "REDIS_URL", "redis://127.0.0.1:6390/0", schemes=("redis", "rediss", "unix")
)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s timeout by default, exactly channels_redis's
        # blocking-pop wait: an idle socket would fail every 5 s. Read for longer.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
        },
    }
}

# Shared by every process: the login brake counts failures across web processes.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "switchboard",
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the database connection pool after every job in
# prefork workers, so each job would open a new connection. Each worker process
# keeps its pool; config/celery.py returns connections to it after each job.
CELERY_DB_REUSE_MAX = 10**9
# A webhook must answer at once even when the broker is down: fail fast when
# publishing, the database row is the record and beat's sweep picks it up.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
    "socket_connect_timeout": 1,
    "socket_timeout": 3,
    "visibility_timeout": 3600,
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
SWITCHBOARD_SWEEP_SECONDS = env_int("SWITCHBOARD_SWEEP_SECONDS", 5)
CELERY_BEAT_SCHEDULE = {
    "sweep-messages": {
        "task": "bots.jobs.sweep_messages",
        "schedule": float(SWITCHBOARD_SWEEP_SECONDS),
        "options": {"expires": SWITCHBOARD_SWEEP_SECONDS * 2},
    },
    "sweep-absent-agents": {
        "task": "agents.jobs.sweep_absent_agents",
        "schedule": 15.0,
        "options": {"expires": 15},
    },
    "sweep-routing": {
        "task": "routing.jobs.sweep_routing",
        "schedule": 1.0,
        "options": {"expires": 2},
    },
}

# Twilio. Without an auth token no webhook can be verified, so every one is
# refused; in development a fixed token lets the simulator sign its requests.
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str(
    "TWILIO_AUTH_TOKEN", "development-auth-token" if DEBUG else ""
)

SWITCHBOARD_MESSAGING_BACKEND = env_str(
    "SWITCHBOARD_MESSAGING_BACKEND",
    "bots.messaging.backends.twilio.TwilioBackend"
    if TWILIO_ACCOUNT_SID and env_str("TWILIO_AUTH_TOKEN")
    else "bots.messaging.backends.simulator.SimulatorBackend",
)
SWITCHBOARD_SIMULATOR = env_bool("SWITCHBOARD_SIMULATOR", default=DEBUG)
SWITCHBOARD_WEBHOOK_MAX_BYTES = env_int("SWITCHBOARD_WEBHOOK_MAX_BYTES", 64 * 1024)
SWITCHBOARD_SEND_MAX_ATTEMPTS = env_int("SWITCHBOARD_SEND_MAX_ATTEMPTS", 6)
SWITCHBOARD_TWILIO_TIMEOUT = env_int("SWITCHBOARD_TWILIO_TIMEOUT", 10)

# Flows. Functions open assets from these folders; they read secrets from
# environment variables named FUNCTION_SECRET_<NAME>, as context.secrets["NAME"].
SWITCHBOARD_FLOW_ASSET_DIRS = env_list(
    "SWITCHBOARD_FLOW_ASSET_DIRS", [str(BASE_DIR / "assets")]
)
SWITCHBOARD_FUNCTION_SECRETS = {
    key.removeprefix("FUNCTION_SECRET_"): value
    for key, value in os.environ.items()
    if key.startswith("FUNCTION_SECRET_")
}
# Bearer tokens for the REST API (/api/...), comma-separated.
SWITCHBOARD_API_TOKENS = env_list("SWITCHBOARD_API_TOKENS", [])
# Time zone for split conditions on times and dates; default: TIME_ZONE.
SWITCHBOARD_FLOW_TIME_ZONE = env_str("SWITCHBOARD_FLOW_TIME_ZONE", "")
if SWITCHBOARD_FLOW_TIME_ZONE:
    try:
        ZoneInfo(SWITCHBOARD_FLOW_TIME_ZONE)
    except (ValueError, ZoneInfoNotFoundError):
        raise ImproperlyConfigured(
            "SWITCHBOARD_FLOW_TIME_ZONE is not a time zone: "
            f"{SWITCHBOARD_FLOW_TIME_ZONE!r}"
        ) from None

_VALIDATORS = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS}.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
SWITCHBOARD_LOGIN_ATTEMPTS = env_int("SWITCHBOARD_LOGIN_ATTEMPTS", 5)
SWITCHBOARD_LOGIN_LOCKOUT_SECONDS = env_int("SWITCHBOARD_LOGIN_LOCKOUT_SECONDS", 300)
# A transfer nobody accepts within this many seconds stays with its agent.
SWITCHBOARD_TRANSFER_TIMEOUT = env_int("SWITCHBOARD_TRANSFER_TIMEOUT", 300)
# An agent whose consoles have all been silent this long is moved Offline.
SWITCHBOARD_CONSOLE_OFFLINE_AFTER = env_int("SWITCHBOARD_CONSOLE_OFFLINE_AFTER", 120)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = PUBLIC_BASE_URL.startswith("https://")
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "INFO"},
        # Beat's sweep runs every few seconds: log what it does, not that it ran.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
        # httpx logs each request's full URL, query secrets included.
        "httpx": {"level": "WARNING"},
    },
}

# Development serves static files straight from the source folders.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Outbound HTTP from flows (make-http-request, run-function). Flow URLs are untrusted,
# so loopback, private, link-local (cloud metadata), CGNAT, multicast and reserved
# addresses are refused; list hostnames and/or CIDR networks here to let some
# through, e.g. "127.0.0.1/32,crm.internal".
SWITCHBOARD_HTTP_ALLOWLIST = env_list("SWITCHBOARD_HTTP_ALLOWLIST", [])
