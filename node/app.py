"""The node's Flask app factory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from corridor.clock import install_clock
from corridor.keystore import load_session_secret
from corridor.web import ProblemApi
from node import api as api_views
from node.extensions import db
from node.settings import NodeSettings, load_settings, secret_key_override


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a node app.

    ``config`` may hold ``CORRIDOR_NODE_DIR`` (a node directory, read with
    :func:`node.settings.load_settings`), or ``CORRIDOR_SETTINGS`` (a ready
    :class:`NodeSettings`, used by tests), plus any Flask setting.
    """
    config = dict(config or {})
    settings = config.pop("CORRIDOR_SETTINGS", None)
    if settings is None:
        directory = config.pop("CORRIDOR_NODE_DIR", None)
        if directory is None:
            raise ValueError("create_app needs CORRIDOR_NODE_DIR or CORRIDOR_SETTINGS")
        settings = load_settings(Path(directory))
    assert isinstance(settings, NodeSettings)

    app = Flask("node")
    app.config.update(
        API_TITLE=f"Corridor node {settings.member_id}",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=1 * 1024 * 1024,
        SECRET_KEY=secret_key_override() or load_session_secret(settings.keys_dir),
    )
    install_clock(app, config.pop("CORRIDOR_CLOCK", None))
    app.config.update(config)
    app.extensions["corridor_settings"] = settings
    db.init_app(app, settings.database_url)
    api = ProblemApi(app)
    for blueprint in api_views.BLUEPRINTS:
        api.register_blueprint(blueprint)
    return app
