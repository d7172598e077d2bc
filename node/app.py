"""The node's Flask app factory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from corridor.anchor import AnchorError, read_anchor
from corridor.keystore import load_session_secret, public_keys
from corridor.log_api import AuditLog, CheckpointTrust, init_audit
from corridor.openapi_tokens import document_tokens
from corridor.pages import ui
from corridor.tlog import REGISTRY_NAME, node_origin
from corridor.web import service_app
from node import api as api_views
from node.db import db
from node.exchange.auth import refuse_without_token
from node.exchange.trust_store import ANCHOR_FILE
from node.log.exchange_log import LOG
from node.settings import NodeSettings, load_settings, secret_key_override
from node.web import links_pages, pages  # noqa: F401  (links_pages adds its routes to pages.bp)
from node.web.users import ACCOUNTS


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

    app, api = service_app(
        "node", title=f"Corridor node {settings.member_id}", settings=settings, config=config,
        database=db, blueprints=api_views.BLUEPRINTS, max_body=1024 * 1024,
        metrics_facts=api_views.metrics_facts,
        proxies=settings.proxies,
        JSON_SORT_KEYS=False,
        SECRET_KEY=secret_key_override() or load_session_secret(settings.keys_dir),
        **pages.flask_settings(settings.url))
    app.before_request(refuse_without_token)
    # The exchange log for auditors: read-only API under /log (DESIGN.md §10).
    init_audit(app, api, AuditLog(label=settings.member_id, log=LOG, database=db,
                                  accounts=ACCOUNTS, trust=lambda: checkpoint_trust(settings),
                                  zone=settings.time_zone))
    # The pages: CSRF is checked by that blueprint alone, the token API has none.
    pages.csrf.init_app(app)
    app.register_blueprint(ui)
    app.register_blueprint(pages.bp)  # with the ledger's page (links_pages) on it
    document_tokens(app, api, description="An access token from the registry (RFC 9068) "
                                          "whose audience is this node.")
    return app


def checkpoint_trust(settings: NodeSettings) -> CheckpointTrust:
    """The node's checkpoints are signed by its own keys and cosigned by the pinned registry."""
    try:
        _, anchor = read_anchor(settings.directory / ANCHOR_FILE)
        registry_keys = anchor.verify_keys()
    except AnchorError:
        registry_keys = []  # not connected to a registry yet: nothing to check against
    return CheckpointTrust(origin=node_origin(settings.member_id), signer=settings.member_id,
                           signer_keys=public_keys(settings.keys_dir).verify_keys(),
                           cosigner=REGISTRY_NAME, cosigner_keys=registry_keys)
