"""Production settings plus one bare view, the baseline the webhook is compared to.

Everything else is config.settings.base, read from the same environment variables.
"""

from config.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
