"""The registry's HTTP API: membership, trust list, keys (catalog, agreements, witness and
OAuth2 alongside)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from flask import request as flask_request
from flask.views import MethodView
from flask_smorest import Blueprint
from prometheus_client.core import Metric
from sqlalchemy import select

from corridor.errors import TooManyRequests
from corridor.health import Check, database_check, health_blueprint
from corridor.keystore import KeystoreError, load_signing_key
from corridor.metrics import log_families, trust_list_families
from crypto.keys import KeySet
from registry import context
from registry.db import MIGRATIONS_DIR, db
from registry.exchange.agreements_api import agreements_blueprint
from registry.exchange.auth import current_client, require_token
from registry.exchange.catalog_api import catalog_blueprint
from registry.log.exchange_log import LOG
from registry.log.witness_api import witness_blueprint
from registry.membership.members import (
    add_key,
    record_join_request,
    retire_key,
    verify_join_request,
)
from registry.membership.trust import current_trust_list, publish_trust_list
from registry.models import TrustListVersion
from registry.schemas import (
    JoinRequestSchema,
    JWKSSchema,
    KeyChangeSchema,
    MemberStatusSchema,
    NewKeySchema,
    TrustListSchema,
)
from registry.web.users import ACCOUNTS

#: Join requests one client address may file per :data:`JOIN_WINDOW`.
JOIN_LIMIT = 10
JOIN_WINDOW = timedelta(hours=1)

members = Blueprint("members", __name__, url_prefix="/members",
                    description="Membership requests (the operator decides on the CLI).")
trust = Blueprint("trust", __name__, description="The signed trust list and registry keys.")


@members.route("")
class Members(MethodView):
    """Ask to join."""

    @members.arguments(JoinRequestSchema)
    @members.response(202, MemberStatusSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """File a self-signed membership request; the operator admits or refuses it.

        Anyone may send one, and an accepted one is a row and a log entry: each
        client address gets :data:`JOIN_LIMIT` per :data:`JOIN_WINDOW` (429 beyond).
        """
        settings = context.settings()
        session, now = db.session(), context.now()
        over = ACCOUNTS.guard.throttle(session, "join", flask_request.remote_addr or "",
                                       limit=JOIN_LIMIT, window=JOIN_WINDOW, now=now)
        session.commit()
        if over is not None:
            wait = over.retry_after(now)
            raise TooManyRequests(f"at most {JOIN_LIMIT} join requests an hour from one "
                                  f"address; try again in {-(-wait // 60)} minutes",
                                  headers={"Retry-After": str(wait)})
        request = verify_join_request(body["request"], now=now,
                                      development=settings.development)
        member = record_join_request(session, request, context.now())
        session.commit()
        return {"member_id": member.member_id, "status": member.status}


@trust.route("/trust-list")
class TrustListView(MethodView):
    """The trust list."""

    @trust.response(200, TrustListSchema)
    def get(self) -> Any:
        """The newest signed trust list (re-signed automatically before it expires)."""
        settings = context.settings()
        row = current_trust_list(db.session(), key=context.signing_key(),
                                 registry_url=settings.issuer, ttl=settings.trust_list_ttl,
                                 now=context.now())
        return row


@trust.route("/.well-known/jwks.json")
class RegistryKeys(MethodView):
    """The registry's public keys."""

    @trust.response(200, JWKSSchema)
    def get(self) -> dict[str, Any]:
        """The registry's JWKS (pin it through the anchor, not from here)."""
        return KeySet([context.signing_key().public_key]).to_jwks()


def _publish(session: Any, reason: str) -> int:
    settings = context.settings()
    row = publish_trust_list(session, key=context.signing_key(), registry_url=settings.issuer,
                             ttl=settings.trust_list_ttl, now=context.now(), reason=reason)
    return row.version


@members.route("/me/keys")
class MemberKeys(MethodView):
    """Key rotation, step 1: add the successor key."""

    @require_token("keys:write")
    @members.arguments(NewKeySchema)
    @members.response(201, KeyChangeSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add a key (the token proves the current key; ``proof`` proves the new one)."""
        session = db.session()
        member_id = current_client()
        row = add_key(session, member_id, body["jwk"], body["proof"], context.now())
        version = _publish(session, f"{member_id} added key {row.kid}")
        session.commit()
        return {"member_id": member_id, "kid": row.kid, "state": "active",
                "trust_list_version": version}


@members.route("/me/keys/<string:kid>")
class MemberKey(MethodView):
    """Key rotation, step 2: retire the old key after the overlap."""

    @require_token("keys:write")
    @members.response(200, KeyChangeSchema)
    def delete(self, kid: str) -> dict[str, Any]:
        """Retire a key; a member always keeps at least one."""
        session = db.session()
        member_id = current_client()
        retire_key(session, member_id, kid, context.now())
        version = _publish(session, f"{member_id} retired key {kid}")
        session.commit()
        return {"member_id": member_id, "kid": kid, "state": "retired",
                "trust_list_version": version}


def _health() -> dict[str, Check]:
    settings = context.settings()
    try:
        kid = load_signing_key(settings.keys_dir).kid
        key = (Check(True, "readable and active", {"kid": kid}) if kid == context.signing_key().kid
               else Check(True, f"readable; a newer key ({kid}) is active on disk: restart "
                                "the service to sign with it", {"kid": context.signing_key().kid}))
    except KeystoreError as e:
        key = Check(False, f"{e.title}: on the host, keys/ "
                           "must be mode 0700, its files 0600, owned by the service user")
    return {"database": database_check(db.session(), MIGRATIONS_DIR), "signing_key": key}


def metrics_facts() -> Iterator[Metric]:
    """The registry's figures read at scrape time: its exchange log, the last trust list signed."""
    session = db.session()
    try:
        size, by_type = LOG.size(session), LOG.counts_by_type(session)
        latest = session.scalar(select(TrustListVersion)
                                .order_by(TrustListVersion.version.desc()).limit(1))
    finally:
        session.rollback()
    yield from log_families(size, by_type)
    yield from trust_list_families(latest, context.now())


health = health_blueprint(_health)

BLUEPRINTS = [health, members, trust, catalog_blueprint, agreements_blueprint, witness_blueprint]
