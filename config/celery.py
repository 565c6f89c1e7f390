import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
# "task" is a routing noun here: Celery jobs live in each app's jobs.py.
app.autodiscover_tasks(related_name="jobs")


@signals.task_prerun.connect
@signals.task_postrun.connect
def _release_connections(**kwargs: object) -> None:
    """Each job starts and ends as a request does: connections past their age
    or broken go (back to the pool, with DB_POOL)."""
    from django.db import close_old_connections

    close_old_connections()
