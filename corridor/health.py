"""Probes for a load balancer or Kubernetes: ``/livez`` (the process answers) and ``/healthz``.

``/healthz`` is the readiness probe: 200 when every check of the service
passes, 503 when one fails, with each check's verdict and what to do. A
service's checks are its own (the node checks its trust list, the registry
its signing key); the database check is shared: it answers, and its schema
is at the newest migration. The answer holds nothing a caller without a
token may not see: trust-list versions and expiry are public.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from corridor.db import migration_state

__all__ = ["Check", "database_check", "health_blueprint", "trust_list_check"]


@dataclass(frozen=True)
class Check:
    """One probe's verdict: whether it passed, in words, and facts an operator can use."""

    ok: bool
    detail: str
    facts: Mapping[str, Any] = field(default_factory=dict)


def database_check(session: Session, migrations: Path) -> Check:
    """The database answers and its schema is at the newest migration."""
    try:
        session.execute(text("SELECT 1"))
        current, head = migration_state(session.connection(), migrations)
    except SQLAlchemyError as e:
        session.rollback()
        return Check(False, f"the database does not answer ({type(e).__name__}); "
                            "check database_url and that the server is up")
    finally:
        session.rollback()
    if current != head:
        return Check(False, f"the schema is at migration {current or 'none'}, not {head}: "
                            "run 'corridor node|registry --dir DIR migrate'",
                     {"revision": current, "head": head})
    return Check(True, "answers; schema at the newest migration", {"revision": current})


def trust_list_check(version: int | None, expires_at: datetime | None, issued_at: datetime | None,
                     now: datetime) -> Check:
    """The node holds a trust list that has not expired."""
    if version is None or expires_at is None or issued_at is None:
        return Check(False, "no trust list yet; run 'corridor node sync' once the node is admitted")
    facts = {"version": version, "expires_at": expires_at.isoformat(),
             "age_seconds": int((now - issued_at).total_seconds())}
    if expires_at <= now:
        return Check(False, "the trust list expired; every caller is refused until the node "
                            "reaches the registry ('corridor node sync')", facts)
    return Check(True, "held and not expired", facts)


class CheckSchema(Schema):
    """One check's verdict."""

    ok = fields.Boolean(required=True)
    detail = fields.String(required=True)
    facts = fields.Dict(keys=fields.String(), required=True)


class HealthSchema(Schema):
    """``ok`` when every check passes, else ``failing``; and each check."""

    status = fields.String(required=True, metadata={"enum": ["ok", "failing"]})
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckSchema), required=True)


class LiveSchema(Schema):
    """The process answers."""

    status = fields.String(required=True, metadata={"enum": ["ok"]})


def health_blueprint(checks: Callable[[], Mapping[str, Check]]) -> Blueprint:
    """The ``/livez`` and ``/healthz`` routes, ``/healthz`` running ``checks``."""
    blp = Blueprint("health", __name__, description="Probes for load balancers and Kubernetes "
                                                    "(no token needed).")

    @blp.route("/healthz")
    class Health(MethodView):
        """Readiness: the service can do its work."""

        @blp.response(200, HealthSchema)
        @blp.alt_response(503, schema=HealthSchema, description="A check failed.")
        def get(self) -> tuple[dict[str, Any], int]:
            """Run the service's checks: 200 if all pass, 503 naming the one that failed."""
            results = checks()
            healthy = all(c.ok for c in results.values())
            body = {"status": "ok" if healthy else "failing",
                    "checks": {name: {"ok": c.ok, "detail": c.detail, "facts": dict(c.facts)}
                               for name, c in results.items()}}
            return body, 200 if healthy else 503

    @blp.route("/livez")
    class Live(MethodView):
        """Liveness: the process answers (no database, so a database outage restarts nothing)."""

        @blp.response(200, LiveSchema)
        def get(self) -> dict[str, str]:
            """Answer at once."""
            return {"status": "ok"}

    return blp
