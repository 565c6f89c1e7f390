import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
# "task" is a routing noun here: Celery jobs live in each app's jobs.py.
app.autodiscover_tasks(related_name="jobs")
