"""The provider's side of a fetch: ``GET /agreements/<id>/package`` (DESIGN.md §7).

A package is streamed only when the token is valid for this node (pinned
registry key, ``aud`` = this node, unexpired, scope ``agreement:fetch``),
names this agreement, and the agreement is active **in this node's own
database**. The plan comes from this node's policy and the agreement's terms;
the only parameter the caller controls is ``since``, a cursor this node
sealed: a forged, altered, foreign or stale one is refused with 422.

Every byte that leaves is on the record before it leaves (DESIGN.md §10).
Everything that can fail on the request is checked first (token, agreement,
plan, cursor, the cameras); a refusal after the token verified is logged as
``fetch.refused``. Then ``package.started`` (agreement, recipient, token,
plan digest, cursor in) is committed on its own, before the first byte. The
package is logged as ``package.served`` once every resource is written and
before its descriptor is signed, so that the signed descriptor can carry the
entry's index (``corridor.log_index``) for the recipient to log against. If
the stream fails or the client goes away at any point after the start, a
``package.unfinished`` entry names the started (and, if any, served) entry
with the bytes and rows handed over so far; ``corridor audit reconcile``
reports every started package that was not served.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy import Engine

from corridor.clock import Clock, now
from corridor.db import make_session_factory
from corridor.errors import Conflict, CorridorError
from corridor.keystore import KeystoreError
from corridor.openapi_tokens import needs_token
from corridor.tlog import node_origin
from crypto.tokens import FETCH_SCOPE, AccessClaims
from node.data.policy_store import PolicyFileError, cursor_key
from node.data.schemas import PackageQuerySchema
from node.db import db
from node.exchange.agreement_calls import in_force
from node.exchange.agreements import bounded, log_refusal, log_served, plan_for
from node.exchange.auth import MissingScope, authorize, confirm_active
from node.exchange.package import (
    CamtrapExporter,
    CursorRefused,
    DwcExporter,
    ExportError,
    ExportResult,
    exporter_for,
)
from node.exchange.streaming import pipe
from node.log.exchange_log import LOG
from node.settings import current_settings, current_signing_key
from policies.errors import PolicyError

log = logging.getLogger(__name__)

blp = Blueprint("agreement_packages", __name__, url_prefix="/agreements",
                description="Signed packages for partners with an active agreement.")


class PackageUnavailable(Conflict):
    """The agreement is in force but no package can be made (policy changed, aggregate tier)."""

    title = "Package unavailable"


class NodeCannotServe(CorridorError):
    """The node's own keys or policy cannot be read: its operator must act (503).

    The partner is told no more than that; the server log holds the cause
    (it names files on the node's machine).
    """

    status = 503
    title = "The node cannot serve packages now"


class InvalidCursor(CorridorError):
    """The ``since`` cursor is not one this node issued for this agreement and data."""

    status = 422
    title = "Cursor refused"


class ServedPackage:
    """Streams one package and keeps the log of it, from the streaming thread.

    The thread has no request context: it gets the engine and the clock, and
    opens its own short transactions (the log's write lock is never held
    while bytes wait for a slow client).
    """

    def __init__(self, exporter: CamtrapExporter | DwcExporter, *, engine: Engine,
                 clock: Clock, me: str, claims: AccessClaims, agreement_id: str,
                 since: str | None) -> None:
        """Prepare to stream ``exporter``'s package for the holder of ``claims``."""
        self.exporter = exporter
        self.sessions = make_session_factory(engine)
        self.clock, self.me, self.claims = clock, me, claims
        self.agreement_id, self.since = agreement_id, since
        #: The indexes of the ``package.started`` and ``package.served`` entries.
        self.started: int | None = None
        self.index: int | None = None
        #: Bytes handed to the server so far (what the client got, give or take a chunk).
        self.bytes_sent = 0

    def start(self) -> int:
        """Commit ``package.started`` on its own, before any byte is sent; return its index."""
        with self.sessions() as session:
            self.started = LOG.append(
                session, "package.started", self.clock(), member=self.claims.subject,
                agreement=self.agreement_id, token_jti=self.claims.jti,
                plan_digest=self.exporter.plan.digest(), since=bounded(self.since))
            session.commit()
        return self.started

    def stream(self) -> Iterator[bytes]:
        """The package's bytes, counted as they are handed to the server."""
        chunks = pipe(self.write)
        try:
            for chunk in chunks:
                self.bytes_sent += len(chunk)
                yield chunk
        finally:
            chunks.close()  # a client that went away stops the writer thread now

    def write(self, out: BinaryIO) -> ExportResult:
        """Stream the package into ``out``, logging it before its descriptor is signed."""
        try:
            return self.exporter.write(out, seal=self.seal)
        except BaseException as e:
            self._log_unfinished(e)
            raise

    def seal(self, result: ExportResult) -> Mapping[str, Any]:
        """Commit the ``package.served`` entry; return what the descriptor says of it.

        :raises CorridorError: the agreement stopped being in force while the
            package was written (logged as ``fetch.refused``; no package).
        """
        with self.sessions() as session:
            try:
                self.index = log_served(session, me=self.me, claims=self.claims,
                                        agreement_id=self.agreement_id, since=self.since,
                                        result=result, now=self.clock(),
                                        started_index=self.started)
                session.commit()
            except CorridorError as e:
                session.rollback()
                log_refusal(session, claims=self.claims, agreement_id=self.agreement_id,
                            error=e, now=self.clock())
                session.commit()
                raise
        return {"log_index": self.index, "log_origin": node_origin(self.me)}

    def _log_unfinished(self, error: BaseException) -> None:
        try:
            with self.sessions() as session:
                LOG.append(session, "package.unfinished", self.clock(),
                           member=self.claims.subject, agreement=self.agreement_id,
                           started_index=self.started, served_index=self.index,
                           bytes_sent=self.bytes_sent,
                           rows_sent=dict(self.exporter.progress.rows),
                           reason=type(error).__name__)
                session.commit()
        except Exception:
            # The original error is on its way up; this one goes to the server log.
            log.exception("package %s started at log index %s but unfinished, and that could "
                          "not be logged", self.agreement_id, self.started)


@blp.route("/<string:agreement_id>/package")
class AgreementPackage(MethodView):
    """The agreement's signed, policy-filtered package."""

    @blp.arguments(PackageQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, content_type="application/zip")
    @blp.alt_response(409, "CONFLICT")
    @needs_token(FETCH_SCOPE)
    def get(self, query: dict[str, Any], agreement_id: str) -> Response:
        """Stream the package (a zip with datapackage.json and its detached JWS)."""
        settings = current_settings()
        session = db.session()
        current = now()
        try:  # a 401 is never logged (see log_refusal); a valid token's 403 is
            claims = authorize(FETCH_SCOPE)
        except MissingScope as e:
            log_refusal(session, claims=e.claims, agreement_id=agreement_id, error=e,
                        now=current)
            session.commit()
            raise
        since = query.get("since")
        try:
            row = in_force(session, claims, agreement_id, current)
            confirm_active(claims)  # a token revoked at the registry stops here (fail closed)
            try:
                dataset, plan, _ = plan_for(session, row, keys_dir=settings.keys_dir,
                                            now=current)
                exporter = exporter_for(db.engine, dataset, plan, provider=settings.member_id,
                                        key=current_signing_key(), now=current,
                                        cursor_key=cursor_key(settings.keys_dir),
                                        recipient=row.requester, agreement=row.id,
                                        since=since)
                exporter.prepare()  # everything that can fail, before the first byte
            except CursorRefused as e:
                raise InvalidCursor(str(e), reason=e.reason) from e
            except (PolicyError, ExportError) as e:
                raise PackageUnavailable(f"no package for {row.id}: {e}") from e
            except (PolicyFileError, KeystoreError) as e:
                log.error("cannot serve %s: %s", row.id, e)
                raise NodeCannotServe("its keys or policy cannot be read; the operator "
                                      "has been told (server log). Try again later.") from e
        except CorridorError as e:
            session.rollback()
            log_refusal(session, claims=claims, agreement_id=agreement_id, error=e, now=current)
            session.commit()
            raise
        session.close()
        clock: Clock = current_app.extensions["corridor_clock"]
        served = ServedPackage(exporter, engine=db.engine, clock=clock, me=settings.member_id,
                               claims=claims, agreement_id=row.id, since=since)
        served.start()
        filename = f"{row.id}.zip"
        return Response(served.stream(), mimetype="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store"})
