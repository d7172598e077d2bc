"""The node's read API (metadata only; rows leave only in signed packages)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from prometheus_client.core import Metric

from corridor.anchor import AnchorError
from corridor.clock import now
from corridor.health import Check, database_check, health_blueprint, trust_list_check
from corridor.keystore import public_keys
from corridor.metrics import log_families, trust_list_families
from corridor.openapi_tokens import needs_token
from node.data.datasets import current_datasets, get_dataset, metadata_view
from node.data.schemas import DatasetListSchema, DatasetSchema, JWKSSchema, WhoAmISchema
from node.db import MIGRATIONS_DIR, db
from node.exchange.agreements_api import blp as agreement_packages
from node.exchange.auth import authorize
from node.exchange.census_api import blp as agreement_census
from node.exchange.counts_api import blp as agreement_counts
from node.exchange.trust_store import current_trust_store
from node.links.api import blp as links
from node.links.overlap_api import blp as agreement_overlap
from node.log.exchange_log import LOG
from node.settings import current_settings

blp = Blueprint("datasets", __name__, url_prefix="/datasets",
                description="Dataset metadata (no observation rows).")


@blp.route("")
class Datasets(MethodView):
    """The node's datasets."""

    @blp.response(200, DatasetListSchema)
    def get(self) -> dict[str, Any]:
        """List the current version of every dataset."""
        return {"datasets": [metadata_view(d) for d in current_datasets(db.session())]}


@blp.route("/<string:name>")
class DatasetItem(MethodView):
    """One dataset."""

    @blp.response(200, DatasetSchema)
    def get(self, name: str) -> dict[str, Any]:
        """Metadata of one dataset (current version)."""
        return metadata_view(get_dataset(db.session(), name))


partners = Blueprint("partners", __name__, description="Calls from other members (token needed).")


@partners.route("/whoami")
class WhoAmI(MethodView):
    """Check that a partner's token is accepted here."""

    @partners.response(200, WhoAmISchema)
    @needs_token("node:read")
    def get(self) -> dict[str, Any]:
        """Verify the caller's access token against this node's trust list and echo who it is."""
        claims = authorize("node:read")
        trust_list = current_trust_store().current()
        return {"member_id": claims.subject, "node": current_settings().member_id,
                "scope": sorted(claims.scope),
                "trust_list_version": trust_list.version if trust_list else None}


@partners.route("/.well-known/jwks.json")
class NodeKeys(MethodView):
    """The node's public keys (verify its packages with them)."""

    @partners.response(200, JWKSSchema)
    def get(self) -> dict[str, Any]:
        """The node's JWKS."""
        return public_keys(current_settings().keys_dir).to_jwks()


def _health() -> dict[str, Check]:
    try:
        trust_list = current_trust_store().current()
    except AnchorError:
        trust_list = None
    return {"database": database_check(db.session(), MIGRATIONS_DIR),
            "trust_list": trust_list_check(
                trust_list.version if trust_list else None,
                trust_list.expires_at if trust_list else None,
                trust_list.issued_at if trust_list else None, now())}


def metrics_facts() -> Iterator[Metric]:
    """The node's figures read at scrape time: its exchange log, the trust list it holds."""
    session = db.session()
    try:
        size, by_type = LOG.size(session), LOG.counts_by_type(session)
    finally:
        session.rollback()
    yield from log_families(size, by_type)
    try:
        trust_list = current_trust_store().current()
    except AnchorError:
        trust_list = None
    yield from trust_list_families(trust_list, now())


health = health_blueprint(_health)

BLUEPRINTS = [health, blp, partners, agreement_packages, agreement_counts, agreement_census,
              agreement_overlap, links]
