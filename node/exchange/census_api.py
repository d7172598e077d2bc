"""``POST /agreements/<id>/census``: the coordinated census over this node's survey dataset.

Served like summary counts (a token of scope ``agreement:counts`` naming this
agreement, the agreement active in this node's own database), over only the
counts the agreement's plan releases (taxa, area, time, embargoes). What
leaves is the released census (:func:`policies.census.released_census`): per
species the country and flyway totals, the previous year and the change, and
how many counts lay outside the window; never a site or a single count. It
is signed by the node key and logged as ``census.served`` (refusals after the
token verified as ``census.refused``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from corridor.clock import now
from corridor.openapi_tokens import needs_token
from corridor.web import limit_body
from crypto.canonical import canonical_json
from crypto.tokens import COUNTS_SCOPE
from node.db import db
from node.exchange.agreement_calls import authorized, in_force, refusals_logged
from node.exchange.agreements import plan_for
from node.exchange.auth import confirm_active
from node.exchange.census import dataset_census, sign_census
from node.exchange.counts_api import QueryInvalid
from node.log.exchange_log import LOG
from node.models import PROFILE_CAMTRAP
from node.settings import current_settings, current_signing_key
from policies.census import CensusError, CensusWindow, released_census
from policies.counts import MAX_TAXA

__all__ = ["CensusQuerySchema", "blp"]

blp = Blueprint("agreement_census", __name__, url_prefix="/agreements",
                description="The coordinated census (flyway) over a partner's survey counts.")
limit_body(blp, 8 * 1024)


class CensusQuerySchema(Schema):
    """A census query: species, the census year and the window."""

    class Meta:
        unknown = RAISE

    taxa = fields.List(fields.String(validate=validate.Length(1, 255)), required=True,
                       validate=validate.Length(1, MAX_TAXA))
    year = fields.Integer(required=True, strict=True, validate=validate.Range(1900, 2200))
    window = fields.String(required=True, validate=validate.Length(1, 20))


@blp.route("/<string:agreement_id>/census")
class AgreementCensus(MethodView):
    """The agreement's signed census."""

    @blp.arguments(CensusQuerySchema, location="json")
    @blp.response(200)
    @needs_token(COUNTS_SCOPE)
    def post(self, data: dict[str, Any], agreement_id: str) -> dict[str, Any]:
        """Count, log and sign; answer ``{"result": ..., "jws": ...}``."""
        settings, session, current = current_settings(), db.session(), now()
        claims = authorized(session, COUNTS_SCOPE, agreement_id=agreement_id,
                            kind="census.refused", now=current)
        with refusals_logged(session, claims, agreement_id=agreement_id, kind="census.refused",
                             now=current):
            try:
                window = CensusWindow.parse(data["window"])
            except CensusError as e:
                raise QueryInvalid(str(e)) from e
            row = in_force(session, claims, agreement_id, current)
            confirm_active(claims)
            dataset, plan, _ = plan_for(session, row, keys_dir=settings.keys_dir, now=current)
            if dataset.profile == PROFILE_CAMTRAP:
                raise QueryInvalid(f"{dataset.name} is a camera-trap dataset; the census "
                                   "reads survey counts")
            released = released_census(dataset_census(session, dataset, taxa=data["taxa"],
                                                      year=data["year"], window=window,
                                                      plan=plan))
            signed = sign_census(released, current_signing_key(), provider=settings.member_id,
                                 recipient=row.requester, agreement=row.id, dataset=dataset,
                                 issued_at=current)
            LOG.append(session, "census.served", current, member=claims.subject,
                       agreement=row.id, token_jti=claims.jti, plan_digest=plan.digest(),
                       content_sha256="sha256:" + hashlib.sha256(
                           canonical_json(signed["result"])).hexdigest())
        session.commit()
        return signed
