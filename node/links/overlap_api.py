"""``POST /agreements/<id>/overlap``: the provider's side of the private overlap count.

Served for a token of scope ``agreement:overlap`` naming this agreement,
while the agreement is active in this node's own database and its tier
names the identifier column (``private_overlap``). Body: ``{"step": 1,
"message": JWS}`` answers ``{"message": JWS}`` (step 2); ``{"step": 3,
"message": JWS}`` answers the signed result (:mod:`node.links.overlap`). A
refusal after the token verified is logged as ``overlap.refused``.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from corridor.clock import now
from corridor.errors import Forbidden
from corridor.keystore import public_keys
from corridor.openapi_tokens import needs_token
from corridor.web import limit_body
from crypto.tokens import OVERLAP_SCOPE
from node.db import db
from node.exchange.agreement_calls import authorized, in_force, refusals_logged
from node.exchange.agreements import plan_for
from node.exchange.auth import confirm_active
from node.exchange.counts import tier_of
from node.exchange.trust_store import current_trust_store
from node.links.overlap import (
    MAX_MESSAGE_BYTES,
    OverlapRefused,
    identifiers,
    provider_answer,
    provider_conclude,
)
from node.settings import current_settings, current_signing_key

__all__ = ["blp"]

blp = Blueprint("agreement_overlap", __name__, url_prefix="/agreements",
                description="The private overlap count of shared identifiers (PSI-CA).")
limit_body(blp, min(MAX_MESSAGE_BYTES + 1024, 1024 * 1024))


class OverlapStepSchema(Schema):
    """One step of the protocol: its number and the signed message."""

    class Meta:
        unknown = RAISE

    step = fields.Integer(required=True, strict=True, validate=validate.OneOf((1, 3)))
    message = fields.String(required=True, validate=validate.Length(1, MAX_MESSAGE_BYTES))


@blp.route("/<string:agreement_id>/overlap")
class AgreementOverlap(MethodView):
    """A step of the private overlap count under this agreement."""

    @blp.arguments(OverlapStepSchema, location="json")
    @blp.response(200)
    @blp.alt_response(409, "CONFLICT")
    @needs_token(OVERLAP_SCOPE)
    def post(self, data: dict[str, Any], agreement_id: str) -> dict[str, Any]:
        """Answer step 1 or conclude with step 3."""
        settings, session, current = current_settings(), db.session(), now()
        claims = authorized(session, OVERLAP_SCOPE, agreement_id=agreement_id,
                            kind="overlap.refused", now=current)
        with refusals_logged(session, claims, agreement_id=agreement_id,
                             kind="overlap.refused", now=current):
            row = in_force(session, claims, agreement_id, current)
            confirm_active(claims)
            dataset, plan, _ = plan_for(session, row, keys_dir=settings.keys_dir, now=current)
            field = tier_of(session, dataset.name, plan).private_overlap
            if field is None:
                raise Forbidden(f"the {plan.tier} tier of agreement {row.id} does not offer "
                                "the private overlap count")
            member = current_trust_store().valid(current).member(claims.subject)
            if member is None:
                raise OverlapRefused(f"{claims.subject} is not an active member")
            if data["step"] == 1:
                answer = {"message": provider_answer(
                    me=settings.member_id, key=current_signing_key(), requester_keys=member.keys,
                    requester=claims.subject, agreement=row.id, message=data["message"],
                    mine=identifiers(session, dataset, plan, field), now=current)}
            else:
                answer = provider_conclude(
                    session, me=settings.member_id, key=current_signing_key(),
                    my_keys=public_keys(settings.keys_dir), requester_keys=member.keys,
                    requester=claims.subject, agreement=row.id, message=data["message"],
                    now=current)
        session.commit()
        return answer
