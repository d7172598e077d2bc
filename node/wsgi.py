"""gunicorn entry point for a node.

    CORRIDOR_NODE_DIR=DIR gunicorn -c deploy/gunicorn.conf.py node.wsgi:app

Log lines go to stderr as ``CORRIDOR_LOG_FORMAT`` (``text`` or ``json``) says
(:mod:`corridor.logs`).
"""

from corridor.logs import configure_logging
from node.app import create_app
from node.exchange.refresher import start_refresher
from node.settings import load_settings, node_directory

configure_logging()
settings = load_settings(node_directory())
app = create_app({"CORRIDOR_SETTINGS": settings})
start_refresher(settings)  # one per worker; only the holder of the node's lease works
