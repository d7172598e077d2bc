"""gunicorn settings for a Corridor node or registry.

    CORRIDOR_NODE_DIR=/srv/corridor/node gunicorn -c deploy/gunicorn.conf.py node.wsgi:app

Bind to loopback and put a TLS reverse proxy in front (deploy/nginx.conf.example).
Values can be overridden with GUNICORN_CMD_ARGS.
"""

bind = "127.0.0.1:8400"
workers = 2              # DESIGN.md §12 measures with 2 workers on 2 cores
threads = 4              # exports stream for a long time; threads keep workers free
worker_class = "gthread"
timeout = 120            # seconds a worker may be silent (streamed exports write continuously)
graceful_timeout = 30
max_requests = 2000      # recycle workers to bound any slow leak
max_requests_jitter = 200
limit_request_line = 8190
limit_request_fields = 50
forwarded_allow_ips = "127.0.0.1"
accesslog = "-"
errorlog = "-"
