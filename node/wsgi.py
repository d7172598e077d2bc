"""gunicorn entry point: ``CORRIDOR_NODE_DIR=DIR gunicorn node.wsgi:app``."""

from node.app import create_app
from node.settings import node_directory

app = create_app({"CORRIDOR_NODE_DIR": node_directory()})
