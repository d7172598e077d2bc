"""gunicorn entry point: ``CORRIDOR_NODE_DIR=DIR gunicorn node.wsgi:app``."""

from node.app import create_app
from node.exchange.refresher import start_refresher
from node.settings import load_settings, node_directory

settings = load_settings(node_directory())
app = create_app({"CORRIDOR_SETTINGS": settings})
start_refresher(settings)  # one per worker; each keeps the on-disk copy fresh
