"""``POST /links``: another member's node delivers a match-ledger message to this one.

The caller needs a ``links:write`` token for this node (from the registry,
verified against this node's trust list); the message must be signed by the
same member and addressed to this node (:func:`node.links.ledger.receive`).
A message refused after the token verified is logged as ``link.refused``.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from corridor.clock import now
from corridor.errors import CorridorError
from corridor.openapi_tokens import needs_token
from corridor.web import limit_body
from crypto.tokens import LINKS_SCOPE
from node.db import db
from node.exchange.auth import authorize
from node.exchange.trust_store import current_trust_store
from node.links.ledger import receive
from node.links.messages import MAX_MESSAGE_BYTES
from node.log.exchange_log import LOG
from node.settings import current_settings

__all__ = ["blp"]

blp = Blueprint("links", __name__, url_prefix="/links",
                description="The cross-border match ledger: messages from partner nodes.")
limit_body(blp, 2 * MAX_MESSAGE_BYTES)


class LinkDeliverySchema(Schema):
    """One signed ledger message."""

    class Meta:
        unknown = RAISE

    message = fields.String(required=True, validate=validate.Length(1, MAX_MESSAGE_BYTES))


@blp.route("")
class Links(MethodView):
    """Deliver a message of the match ledger."""

    @blp.arguments(LinkDeliverySchema, location="json")
    @blp.response(200)
    @blp.alt_response(409, "CONFLICT")
    @needs_token(LINKS_SCOPE)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Verify, apply and log the message; answer the link's state here."""
        settings = current_settings()
        session = db.session()
        current = now()
        claims = authorize(LINKS_SCOPE)
        try:
            received = receive(session, me=settings.member_id,
                               trust_list=current_trust_store().valid(current),
                               sender=claims.subject, jws=data["message"], now=current)
        except CorridorError as e:
            session.rollback()
            LOG.append(session, "link.refused", current, member=claims.subject,
                       status=e.status, reason=str(e.detail or e.title)[:200],
                       token_jti=claims.jti)
            session.commit()
            raise
        session.commit()
        return {"link": received.link.link_id, "state": received.link.state,
                "applied": received.applied}
