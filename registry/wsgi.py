"""gunicorn entry point: ``CORRIDOR_REGISTRY_DIR=DIR gunicorn registry.wsgi:app``."""

from registry.app import create_app
from registry.settings import registry_directory

# The serving process signs the registry's own checkpoint every checkpoint_interval.
app = create_app({"CORRIDOR_REGISTRY_DIR": registry_directory(), "CORRIDOR_CHECKPOINTER": True})
