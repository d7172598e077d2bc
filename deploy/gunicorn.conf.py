"""gunicorn settings for a Corridor node or registry.

    CORRIDOR_NODE_DIR=/srv/corridor/node gunicorn -c deploy/gunicorn.conf.py node.wsgi:app

Bind to loopback and put a TLS reverse proxy in front (deploy/nginx.conf.example).
Values can be overridden with GUNICORN_CMD_ARGS.

``/metrics`` adds up every worker's counters through prometheus_client's
multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` names a directory the workers
write their counters to: the one the environment names, emptied when gunicorn
starts so that counters restart with the service as a single process's would,
else a fresh temporary one, removed when gunicorn exits.
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Set here, in the arbiter, before any worker imports prometheus_client: the
# client picks where its values live when it is first imported.
_OWN_METRICS_DIRECTORY = not os.environ.get(METRICS_VARIABLE)
if _OWN_METRICS_DIRECTORY:
    os.environ[METRICS_VARIABLE] = tempfile.mkdtemp(prefix="corridor-metrics-")
else:
    Path(os.environ[METRICS_VARIABLE]).mkdir(mode=0o700, parents=True, exist_ok=True)

bind = "127.0.0.1:8400"
workers = 2              # DESIGN.md §12 measures with 2 workers on 2 cores
threads = 4              # exports stream for a long time; threads keep workers free
worker_class = "gthread"
timeout = 120            # seconds a worker may be silent (streamed exports write continuously)
graceful_timeout = 30
max_requests = 50000     # recycle workers now and then to bound any slow leak (at 2000
max_requests_jitter = 5000  # they restarted every few seconds under load)
limit_request_line = 8190    # longer request lines: 414 (problem+json, corridor/gunicorn_errors.py)
limit_request_fields = 50    # more header fields, or one over 8190 bytes: 431
forwarded_allow_ips = "127.0.0.1"
accesslog = "-"
errorlog = "-"


def on_starting(server: Any) -> None:
    """Forget the counters of an earlier run whose directory was named by the environment."""
    for stale in Path(os.environ[METRICS_VARIABLE]).glob("*.db"):
        stale.unlink()


def post_worker_init(worker: Any) -> None:
    """gunicorn's own refusals (414, 431, 400) as problem+json, like the services' errors."""
    from corridor.gunicorn_errors import install

    install()


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended: prometheus_client drops its live gauges (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the temporary counters directory this configuration made."""
    if _OWN_METRICS_DIRECTORY:
        shutil.rmtree(os.environ[METRICS_VARIABLE], ignore_errors=True)
