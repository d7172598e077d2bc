"""HTTP API for agreements at the registry: file, list, read, continue (parties only)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from registry import context
from registry.db import db
from registry.exchange.agreements import append_events, file_request, of_member, party_view, view
from registry.exchange.auth import current_client, require_token
from registry.schemas import (
    AgreementEventsSchema,
    AgreementListSchema,
    AgreementQuerySchema,
    AgreementSchema,
    NewAgreementSchema,
)

agreements_blueprint = Blueprint(
    "agreements", __name__, url_prefix="/agreements",
    description="Data-use agreements: requests, decisions, acceptances, revocations. "
                "A member sees only the agreements it is a party to.")


@agreements_blueprint.route("")
class Agreements(MethodView):
    """The caller's agreements; file a new request."""

    @require_token("agreements:read")
    @agreements_blueprint.arguments(AgreementQuerySchema, location="query")
    @agreements_blueprint.response(200, AgreementListSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Agreements the caller is a party to (filter by ``role`` and ``state``)."""
        return {"agreements": of_member(db.session(), current_client(),
                                        role=query.get("role"), states=query.get("state", []))}

    @require_token("agreements:write")
    @agreements_blueprint.arguments(NewAgreementSchema)
    @agreements_blueprint.response(201, AgreementSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """File a request; refused at once if the provider's published terms never allow it."""
        session = db.session()
        row = file_request(session, body["event"], caller=current_client(), now=context.now())
        result = view(row, [body["event"]])
        session.commit()
        return result


@agreements_blueprint.route("/<string:agreement_id>")
class AgreementItem(MethodView):
    """One agreement."""

    @require_token("agreements:read")
    @agreements_blueprint.response(200, AgreementSchema)
    def get(self, agreement_id: str) -> dict[str, Any]:
        """The agreement and its signed history (404 unless the caller is a party)."""
        return party_view(db.session(), agreement_id, current_client())


@agreements_blueprint.route("/<string:agreement_id>/events")
class AgreementEvents(MethodView):
    """Continue an agreement."""

    @require_token("agreements:write")
    @agreements_blueprint.arguments(AgreementEventsSchema)
    @agreements_blueprint.response(200, AgreementSchema)
    def post(self, body: dict[str, Any], agreement_id: str) -> dict[str, Any]:
        """Append the caller's signed events (idempotent for events already held)."""
        session = db.session()
        caller = current_client()
        append_events(session, agreement_id, body["events"], caller=caller, now=context.now())
        result = party_view(session, agreement_id, caller)
        session.commit()
        return result
