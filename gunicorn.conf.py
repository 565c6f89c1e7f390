"""gunicorn's settings for Switchboard's HTTP: webhooks, console, admin, API.

gunicorn reads this file from the directory it starts in. WebSockets (`/ws/`) are
served by daphne; a proxy in front sends each path to its server (docs/deploy.md).
`make bench` measured this shape against daphne alone (docs/scaling.md).
"""

import os

wsgi_app = "config.wsgi:application"
host = os.environ.get("WEB_HOST", "127.0.0.1")
bind = [f"{host}:{os.environ.get('WEB_PORT', '8000')}"]
# Processes: one or two per core. gunicorn also reads WEB_CONCURRENCY itself.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads cover the waits on PostgreSQL and Redis; more of them only queue on
# the process's GIL.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
# Idle keep-alive connections outlive the proxy's (nginx keeps them 60 s): the
# side that closes first races the other's next request on that connection.
keepalive = 75
backlog = 2048
# Twilio gives up after 15 s; a request still running at 30 s is stuck.
timeout = 30
graceful_timeout = 30
# Access is logged by the proxy; errors go to stderr.
