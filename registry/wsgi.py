"""gunicorn entry point for the registry.

    CORRIDOR_REGISTRY_DIR=DIR gunicorn -c deploy/gunicorn.conf.py registry.wsgi:app

Log lines go to stderr as ``CORRIDOR_LOG_FORMAT`` (``text`` or ``json``) says
(:mod:`corridor.logs`).
"""

from corridor.logs import configure_logging
from registry.app import create_app
from registry.settings import registry_directory

configure_logging()
# The holder of the registry's lease signs its checkpoint every checkpoint_interval.
app = create_app({"CORRIDOR_REGISTRY_DIR": registry_directory(), "CORRIDOR_CHECKPOINTER": True})
