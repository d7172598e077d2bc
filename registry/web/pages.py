"""The registry's pages for auditors: sign in, the registry's exchange log, the witness evidence.

Server-rendered (Flask + Jinja, autoescaped), with the node's layout,
sign-in and headers (:mod:`corridor.pages`). Every page needs a registry
account (:mod:`registry.web.users`, roles auditor and admin) and none changes
anything: members are admitted on the CLI, checkpoints are cosigned by the
witness API.

``/witness`` lists, for each member, the newest checkpoint the registry
cosigned (DESIGN.md §10) with both signatures checked again, and every
refusal kept as evidence: the checkpoint a member offered that was not
consistent with the one cosigned before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from sqlalchemy.orm import Session

from corridor import pages
from corridor.keystore import load_session_secret, public_keys
from corridor.log_api import AuditLog, CheckpointTrust, current_audit, init_audit, signed_by
from corridor.pages import Site
from corridor.tlog import REGISTRY_NAME, REGISTRY_ORIGIN, node_origin
from crypto.errors import InvalidKey
from crypto.keys import VerifyKey
from registry import context
from registry.db import db
from registry.log.exchange_log import LOG
from registry.models import MemberKey, User, WitnessedCheckpoint, WitnessRefusal
from registry.settings import RegistrySettings
from registry.web.users import ACCOUNTS

__all__ = ["SESSION_COOKIE", "bp", "csrf", "init_app"]

bp = Blueprint("web", __name__, template_folder="templates")
csrf = CSRFProtect()

SESSION_COOKIE = "corridor_registry_session"
#: Newest witness refusals shown.
REFUSALS_SHOWN = 100


def init_app(app: Flask, api: Any) -> None:
    """Add the audit API (``/log/...``) and the pages to a registry app.

    ``api`` is the app's flask-smorest ``Api``. The session secret is the
    one ``registry init`` wrote beside the keys, unless the config gave one.
    """
    settings: RegistrySettings = app.extensions["corridor_settings"]
    app.config.update(pages.flask_settings(settings.url, SESSION_COOKIE))
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_session_secret(settings.keys_dir)
    init_audit(app, api, AuditLog(label="registry", log=LOG, database=db, accounts=ACCOUNTS,
                                  trust=lambda: checkpoint_trust(settings),
                                  zone=settings.time_zone))
    csrf.init_app(app)
    app.register_blueprint(pages.ui)
    app.register_blueprint(bp)


def checkpoint_trust(settings: RegistrySettings) -> CheckpointTrust:
    """The registry's own checkpoints: signed by its keys, witnessed by no one."""
    return CheckpointTrust(origin=REGISTRY_ORIGIN, signer=REGISTRY_NAME,
                           signer_keys=public_keys(settings.keys_dir).verify_keys())


def site(user: User | None) -> Site:
    """The layout's view of the registry."""
    return Site(title="Corridor registry",
                brand=f"Corridor · {context.settings().name}", tag="registry",
                home="web.log_page", nav=(("web.log_page", "Log"), ("web.witness", "Witness")),
                users_hint="corridor registry users add NAME --role auditor")


pages.install(bp, csrf=csrf, accounts=ACCOUNTS, database=db, log=LOG, site=site)


@bp.get("/")
def home() -> ResponseReturnValue:
    """The log is the front page."""
    return redirect(url_for("web.log_page"))


@bp.get("/log")
def log_page() -> ResponseReturnValue:
    """The registry's exchange log and its checkpoints."""
    return pages.log_page(current_audit(), full=pages.require_auditor_page())


@dataclass(frozen=True)
class Cosigned:
    """A member's newest cosigned checkpoint, both signatures checked again."""

    row: WitnessedCheckpoint
    member_signature: str
    cosignature: str


@bp.get("/witness")
def witness() -> ResponseReturnValue:
    """Each member's cosigned checkpoint, and the refusals kept as evidence."""
    pages.require_auditor_page()
    session = db.session()
    registry_keys = public_keys(context.settings().keys_dir).verify_keys()
    cosigned = []
    for row in session.scalars(select(WitnessedCheckpoint).order_by(WitnessedCheckpoint.member)):
        member_keys = _member_keys(session, row.member)
        member_ok = signed_by(row.note, row.member, member_keys,
                              origin=node_origin(row.member), row=row)
        cosigned_ok = signed_by(row.note, REGISTRY_NAME, registry_keys, origin=None, row=row)
        cosigned.append(Cosigned(row, "valid" if member_ok else "invalid",
                                 "valid" if cosigned_ok else "invalid"))
    refusals = list(session.scalars(
        select(WitnessRefusal).order_by(WitnessRefusal.at.desc(), WitnessRefusal.id.desc())
        .limit(REFUSALS_SHOWN)))
    return render_template("witness.html", cosigned=cosigned, refusals=refusals,
                           shown=REFUSALS_SHOWN)


def _member_keys(session: Session, member: str) -> list[VerifyKey]:
    """Every key the member ever registered (a checkpoint may predate a rotation)."""
    keys = []
    for row in session.scalars(select(MemberKey).where(MemberKey.member_id == member)):
        try:
            keys.append(VerifyKey.from_jwk(row.jwk))
        except InvalidKey:
            continue  # checked when it was registered; a damaged row verifies nothing
    return keys
