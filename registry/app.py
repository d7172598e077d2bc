"""The registry's Flask app factory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from corridor.keystore import load_signing_key
from corridor.lease import Lease
from corridor.openapi_tokens import document_tokens
from corridor.web import service_app
from registry import api as api_views
from registry.db import db
from registry.exchange.oauth import init_oauth
from registry.exchange.oauth_spec import document_oauth
from registry.log.witness import start_checkpointer
from registry.settings import RegistrySettings, load_settings
from registry.web import pages


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a registry app.

    ``config`` may hold ``CORRIDOR_REGISTRY_DIR`` (read with
    :func:`registry.settings.load_settings`) or ``CORRIDOR_SETTINGS`` (a ready
    :class:`RegistrySettings`), optionally ``CORRIDOR_CLOCK`` (a callable
    returning an aware datetime, for tests) and ``CORRIDOR_CHECKPOINTER`` (true
    when serving: sign the log's checkpoint every ``checkpoint_interval``
    seconds in a background thread, see :func:`registry.log.witness.start_checkpointer`),
    plus any Flask setting.
    """
    config = dict(config or {})
    settings = config.pop("CORRIDOR_SETTINGS", None)
    if settings is None:
        directory = config.pop("CORRIDOR_REGISTRY_DIR", None)
        if directory is None:
            raise ValueError("create_app needs CORRIDOR_REGISTRY_DIR or CORRIDOR_SETTINGS")
        settings = load_settings(Path(directory))
    assert isinstance(settings, RegistrySettings)
    checkpointer = bool(config.pop("CORRIDOR_CHECKPOINTER", False))

    app, api = service_app("registry", title=settings.name, settings=settings, config=config,
                           database=db, blueprints=api_views.BLUEPRINTS, max_body=256 * 1024,
                           metrics_facts=api_views.metrics_facts,
                           proxies=settings.proxies)
    app.extensions["corridor_signing_key"] = load_signing_key(settings.keys_dir)
    init_oauth(app)
    document_oauth(app, api.spec)
    pages.init_app(app, api)  # the auditor's log API (/log/...) and pages
    document_tokens(app, api, description="An access token this registry issued "
                                          "(POST /oauth/token), audience 'registry'.")
    if checkpointer:
        app.extensions["corridor_checkpointer"] = start_checkpointer(
            settings.database_url, app.extensions["corridor_signing_key"],
            settings.checkpoint_interval,
            Lease("registry-checkpointer", settings.directory, settings.database_url))
    return app
