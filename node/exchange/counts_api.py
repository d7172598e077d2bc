"""The provider's side of a joint count: ``POST /agreements/<id>/counts`` (DESIGN.md §9).

Served only for a token of scope ``agreement:counts`` that names this
agreement, and only while the agreement is active **in this node's own
database**, like a package. The query is validated strictly
(:class:`CountsQuerySchema`: unknown keys, metrics, cells off the grid,
unaligned or open-ended periods are 422 problem+json saying why), then
against the owner's disclosure rules and the agreement's terms (422 again).

The ``counts.served`` entry is appended before the result is signed, so the
signed result carries its log index; a refusal after the token verified is
logged as ``counts.refused``. The entry holds the query's digest and the
digest of the result without its log reference (``content_sha256``), never
a count.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from corridor.clock import now
from corridor.errors import CorridorError
from corridor.openapi_tokens import needs_token
from corridor.tlog import node_origin
from corridor.web import limit_body
from crypto.canonical import canonical_json
from crypto.tokens import COUNTS_SCOPE
from node.db import db
from node.exchange.agreement_calls import authorized, in_force, refusals_logged
from node.exchange.agreements import authorize_fetch, plan_for
from node.exchange.auth import confirm_active
from node.exchange.counts import (
    content_digest,
    count,
    crossers_of,
    result_document,
    sign_result,
    tier_of,
)
from node.log.exchange_log import LOG
from node.settings import current_settings, current_signing_key
from policies.counts import BIRD_METRICS, CAMTRAP_METRICS, MAX_TAXA, Protocol, Query
from policies.errors import PolicyError
from policies.grid import CELL_SIZES, PERIOD_UNITS, GridError

__all__ = ["CountsQuerySchema", "QueryInvalid", "blp", "query_from"]

#: Largest counts query body, in bytes.
MAX_QUERY_BYTES = 16 * 1024

blp = Blueprint("agreement_counts", __name__, url_prefix="/agreements",
                description="Signed summary counts for partners with an active agreement.")
limit_body(blp, MAX_QUERY_BYTES)


class QueryInvalid(CorridorError):
    """A counts query that the owner's rules or the agreement do not allow (422)."""

    status = 422
    title = "Counts query refused"


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class PeriodSchema(_Strict):
    """An aligned, closed period range: ``unit`` and the first and last period, both included."""

    unit = fields.String(required=True, validate=validate.OneOf(PERIOD_UNITS))
    from_ = fields.String(required=True, data_key="from", validate=validate.Length(max=8))
    to = fields.String(required=True, validate=validate.Length(max=8))


class ProtocolSchema(_Strict):
    """The counting protocol's parameters (every one defaulted)."""

    independence_minutes = fields.Integer(load_default=30, strict=True,
                                          validate=validate.Range(1, 1440))
    independence_from = fields.String(load_default="last",
                                      validate=validate.OneOf(("last", "first")))
    observation_level = fields.String(load_default="event",
                                      validate=validate.OneOf(("event", "media")))


class CountsQuerySchema(_Strict):
    """A counts query document (``POST /agreements/<id>/counts``)."""

    metrics = fields.List(fields.String(validate=validate.OneOf(CAMTRAP_METRICS + BIRD_METRICS)),
                          required=True, validate=validate.Length(1, 9))
    taxa = fields.List(fields.String(validate=validate.Length(1, 255)), required=True,
                       validate=validate.Length(1, MAX_TAXA))
    cell_size = fields.String(required=True, validate=validate.OneOf(CELL_SIZES))
    period = fields.Nested(PeriodSchema, required=True)
    protocol = fields.Nested(ProtocolSchema, load_default=dict)
    crossers = fields.Boolean(load_default=False, truthy={True}, falsy={False},
                              metadata={"description": "Add the crossers section: per taxon "
                                        "and period, the confirmed cross-border links whose "
                                        "animal was seen (policies.crossers)."})

    @validates_schema
    def _on_the_grid(self, data: dict[str, Any], **_: Any) -> None:
        try:
            query_from(data)
        except GridError as e:
            raise ValidationError(str(e), "period") from e


def query_from(data: dict[str, Any]) -> Query:
    """The :class:`~policies.counts.Query` of a loaded query document.

    :raises GridError: metrics of two kinds, or periods off the grid.
    """
    metrics = list(data["metrics"])
    if any(m in BIRD_METRICS for m in metrics) and any(m in CAMTRAP_METRICS for m in metrics):
        raise GridError("ask for camera-trap metrics or bird-count metrics, not both")
    protocol = dict(data.get("protocol") or {})
    period = data["period"]
    return Query.build(metrics=metrics, taxa=data["taxa"], cell_size=data["cell_size"],
                       unit=period["unit"], first=period["from_"], last=period["to"],
                       protocol=Protocol(**protocol))


@blp.route("/<string:agreement_id>/counts")
class AgreementCounts(MethodView):
    """The agreement's signed summary counts."""

    @blp.arguments(CountsQuerySchema, location="json")
    @blp.response(200)
    @needs_token(COUNTS_SCOPE)
    def post(self, data: dict[str, Any], agreement_id: str) -> dict[str, Any]:
        """Count, suppress, log and sign; answer ``{"result": ..., "jws": ...}``."""
        settings = current_settings()
        session = db.session()
        current = now()
        claims = authorized(session, COUNTS_SCOPE, agreement_id=agreement_id,
                            kind="counts.refused", now=current)
        query = query_from(data)
        with refusals_logged(session, claims, agreement_id=agreement_id, kind="counts.refused",
                             now=current):
            row = in_force(session, claims, agreement_id, current)
            confirm_active(claims)
            try:
                dataset, plan, _ = plan_for(session, row, keys_dir=settings.keys_dir,
                                            now=current)
                answer = count(db.engine, dataset, plan, tier_of(session, dataset.name, plan),
                               query)
                crossers = (crossers_of(session, answer, [row.requester])
                            if data["crossers"] else None)
            except (PolicyError, GridError) as e:
                raise QueryInvalid(str(e)) from e
            document = result_document(answer, provider=settings.member_id,
                                       recipient=row.requester, agreement=row.id,
                                       issued_at=current, log=None, crossers=crossers)
            content = content_digest(document)
            index = LOG.append(session, "counts.served", current, member=claims.subject,
                               agreement=row.id, token_jti=claims.jti,
                               plan_digest=plan.digest(),
                               query_sha256="sha256:" + hashlib.sha256(
                                   canonical_json(answer.released.query)).hexdigest(),
                               content_sha256=content, rows=len(answer.released.counts))
            # Taken after the log's write lock: a revocation logged before this is seen.
            authorize_fetch(session, me=settings.member_id, claims=claims,
                            agreement_id=agreement_id, now=current)
        document["log"] = {"index": index, "origin": node_origin(settings.member_id),
                           "content_sha256": content}
        signed = sign_result(document, current_signing_key())
        session.commit()
        return signed
