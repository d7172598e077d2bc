"""The provider's side of a fetch: ``GET /agreements/<id>/package`` (DESIGN.md §7).

A package is streamed only when the token is valid for this node (pinned
registry key, ``aud`` = this node, unexpired, scope ``agreement:fetch``),
names this agreement, and the agreement is active **in this node's own
database**. The plan comes from this node's policy and the agreement's terms;
the only parameter the caller controls is ``since`` (a cursor).
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from corridor.clock import now
from corridor.keystore import load_signing_key
from corridor.web import Conflict
from node.agreements import authorize_fetch, plan_for
from node.auth import authorize
from node.export import ExportError, exporter_for
from node.extensions import db
from node.schemas import PackageQuerySchema
from node.settings import current_settings
from node.streaming import pipe
from policies.errors import PolicyError

FETCH_SCOPE = "agreement:fetch"

blp = Blueprint("agreement_packages", __name__, url_prefix="/agreements",
                description="Signed packages for partners with an active agreement.")


class PackageUnavailable(Conflict):
    """The agreement is in force but no package can be made (policy changed, aggregate tier)."""

    title = "Package unavailable"


@blp.route("/<string:agreement_id>/package")
class AgreementPackage(MethodView):
    """The agreement's signed, policy-filtered package."""

    @blp.arguments(PackageQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, content_type="application/zip")
    def get(self, query: dict[str, Any], agreement_id: str) -> Response:
        """Stream the package (a zip with datapackage.json and its detached JWS)."""
        claims = authorize(FETCH_SCOPE)
        settings = current_settings()
        session = db.session()
        current = now()
        row = authorize_fetch(session, me=settings.member_id, claims=claims,
                              agreement_id=agreement_id, now=current)
        try:
            dataset, plan, _ = plan_for(session, row, keys_dir=settings.keys_dir, now=current)
            exporter = exporter_for(db.engine, dataset, plan, provider=settings.member_id,
                                    key=load_signing_key(settings.keys_dir), now=current,
                                    recipient=row.requester, agreement=row.id,
                                    since=query.get("since"))
        except (PolicyError, ExportError) as e:
            raise PackageUnavailable(f"no package for {row.id}: {e}") from e
        session.close()
        filename = f"{row.id}.zip"
        return Response(pipe(exporter.write), mimetype="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store"})
