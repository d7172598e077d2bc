"""gunicorn entry point: ``CORRIDOR_REGISTRY_DIR=DIR gunicorn registry.wsgi:app``."""

from registry.app import create_app
from registry.settings import registry_directory

app = create_app({"CORRIDOR_REGISTRY_DIR": registry_directory()})
