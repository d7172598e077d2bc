"""The registry's HTTP API: membership, trust list, keys (catalog and OAuth2 alongside)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from crypto.keys import KeySet
from registry import context
from registry.catalog_api import catalog_blueprint
from registry.extensions import db
from registry.members import record_join_request, verify_join_request
from registry.schemas import JoinRequestSchema, JWKSSchema, MemberStatusSchema, TrustListSchema
from registry.trust import current_trust_list

members = Blueprint("members", __name__, url_prefix="/members",
                    description="Membership requests (the operator decides on the CLI).")
trust = Blueprint("trust", __name__, description="The signed trust list and registry keys.")


@members.route("")
class Members(MethodView):
    """Ask to join."""

    @members.arguments(JoinRequestSchema)
    @members.response(202, MemberStatusSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """File a self-signed membership request; the operator admits or refuses it."""
        settings = context.settings()
        request = verify_join_request(body["request"], now=context.now(),
                                      development=settings.development)
        session = db.session()
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


BLUEPRINTS = [members, trust, catalog_blueprint]
