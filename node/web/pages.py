"""The node's web pages: sign in, the inbox of requests, one request, the agreements, the log.

Server-rendered for people (Flask + Jinja, autoescaped); the JSON API of
:mod:`node.api` and :mod:`node.exchange.agreements_api` is for machines, uses bearer
tokens and no cookies, so only this blueprint checks CSRF tokens. Sign-in,
headers, error pages and the layout are shared with the registry
(:mod:`corridor.pages`).

Every page needs a signed-in local account (:mod:`node.web.users`). Owners and
admins sign decisions with the node's key; auditors see the same pages
without the forms, and the server refuses their changes with 403 whatever
they post. A decision is stored here first and then pushed to the registry;
if the registry cannot be reached it goes at the next sync (DESIGN.md §6).
The exchange log page (:func:`corridor.pages.log_page`) is for auditors and
admins only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect
from marshmallow import fields
from marshmallow.validate import Length, OneOf
from sqlalchemy.orm import Session

from corridor import pages
from corridor.clock import now
from corridor.errors import CorridorError, NotFound
from corridor.files import written_whole
from corridor.keystore import KeystoreError
from corridor.log_api import current_audit
from corridor.pages import FormInvalid, PageForm, Site, load_form, page_message
from node.data.policy_store import get_policy
from node.db import db
from node.exchange.agreement_sync import push
from node.exchange.agreements import STORE, act, local, restore
from node.exchange.preview import Preview, preview, release_geometry
from node.exchange.registry_client import RegistryError, client_for
from node.exchange.release_map import render_png
from node.log.exchange_log import LOG
from node.models import Agreement as AgreementRow
from node.models import User
from node.settings import NodeSettings, current_settings, current_signing_key
from node.web.users import ACCOUNTS, LOG_READERS, can_decide, can_read_log
from policies.agreement_terms import narrower_tiers
from policies.agreements import ACTIVE, APPROVED, PROVIDER, REQUESTED, REQUESTER, Agreement
from policies.errors import PolicyError
from policies.policy import Policy, Tier

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__, template_folder="templates")
csrf = CSRFProtect()

SESSION_COOKIE = "corridor_node_session"
MAX_REASON = 2000
#: What the decision form may ask for; :func:`node.exchange.agreements.act` checks the side.
DECISIONS = ("approve", "narrow", "refuse", "accept", "withdraw")
#: Decisions that may be signed without a reason (accepting is its own reason).
REASON_OPTIONAL = frozenset({"accept"})
DONE = {"approve": "Approved", "narrow": "Narrowed and approved", "refuse": "Refused",
        "accept": "Accepted", "withdraw": "Withdrew", "revoke": "Revoked"}
BBOX_SIDES = ("west", "south", "east", "north")
#: States whose agreement may still release data (the request page previews those).
IN_PLAY = frozenset({REQUESTED, APPROVED, ACTIVE})


def flask_settings(url: str | None) -> dict[str, Any]:
    """Flask settings of the pages' session cookie and CSRF tokens, for a node at ``url``."""
    return pages.flask_settings(url, SESSION_COOKIE)


def site(user: User | None) -> Site:
    """The layout's view of this node; the log is linked for those who may read it."""
    settings = current_settings()
    nav = [("web.inbox", "Inbox"), ("web.agreements", "Agreements"),
           ("web.links_page", "Match ledger")]
    if user is not None and can_read_log(user):
        nav.append(("web.log_page", "Log"))
    return Site(title=f"Corridor node {settings.member_id}", brand=f"Corridor · {settings.name}",
                tag=settings.member_id, home="web.inbox", nav=tuple(nav),
                users_hint="corridor node users add NAME --role owner")


pages.install(bp, csrf=csrf, accounts=ACCOUNTS, database=db, log=LOG, site=site)


# --- forms (marshmallow at the edge, CONVENTIONS.md §8) -------------------------


class ReasonForm(PageForm):
    """A form whose only field is the reason (revoke)."""

    reason = fields.String(load_default="", validate=Length(max=MAX_REASON))


class DecisionForm(ReasonForm):
    """A decision on a request; the term fields are read only when narrowing."""

    decision = fields.String(required=True, validate=OneOf(DECISIONS))
    tier = fields.String(load_default="", validate=Length(max=64))
    until = fields.String(load_default="", validate=Length(max=10))
    time_from = fields.String(load_default="", validate=Length(max=10))
    time_to = fields.String(load_default="", validate=Length(max=10))
    taxa = fields.String(load_default="", validate=Length(max=20_000))
    bbox_west = fields.String(load_default="", validate=Length(max=32))
    bbox_south = fields.String(load_default="", validate=Length(max=32))
    bbox_east = fields.String(load_default="", validate=Length(max=32))
    bbox_north = fields.String(load_default="", validate=Length(max=32))


def narrowed_terms(requested: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The counter-offer: the requested terms with the form's non-empty values in place.

    An empty field keeps what was requested (a filter the request had cannot be
    dropped, that would widen it; one it did not have stays absent). Whether
    the result really is narrower is for :func:`node.exchange.agreements.act` to judge.

    :raises PolicyError: the area is not four numbers.
    """
    terms = dict(requested)
    for key in ("tier", "until", "time_from", "time_to"):
        if value := form.get(key, "").strip():
            terms[key] = value
    taxa = [name for line in form.get("taxa", "").replace(",", "\n").splitlines()
            if (name := " ".join(line.split()))]
    if taxa:
        terms["taxa"] = list(dict.fromkeys(taxa))
    corners = [form.get(f"bbox_{side}", "").strip() for side in BBOX_SIDES]
    if any(corners):
        try:
            terms["bbox"] = [float(value) for value in corners]
        except ValueError as e:
            raise PolicyError("bbox", "give all four numbers (west, south, east, north) "
                                      "in decimal degrees, or none") from e
    return terms


# --- who is asking ------------------------------------------------------------


@bp.context_processor
def _page_context() -> dict[str, Any]:
    user = g.get("user")
    return {"node": current_settings(), "may_decide": user is not None and can_decide(user)}


def require_decider() -> None:
    """Abort with 403 unless the signed-in account may sign decisions (owner, admin)."""
    if not can_decide(g.user):
        abort(403, description=f"Your role ({g.user.role}) may view agreements but not "
                               "change them. Ask an owner or an admin.")


# --- pages --------------------------------------------------------------------


@bp.get("/")
def home() -> ResponseReturnValue:
    """The inbox is the front page."""
    return redirect(url_for("web.inbox"))


@bp.get("/inbox")
def inbox() -> ResponseReturnValue:
    """Requests addressed to this node, pending first; and this node's own requests."""
    session, me = db.session(), current_settings().member_id
    incoming = STORE.of_member(session, me, role=PROVIDER)
    incoming.sort(key=lambda row: row.state != REQUESTED)  # stable: newest first within
    outgoing = STORE.of_member(session, me, role=REQUESTER)
    return render_template("inbox.html", incoming=incoming, outgoing=outgoing,
                           pending=sum(row.state == REQUESTED for row in incoming))


@bp.get("/requests/<agreement_id>")
def request_page(agreement_id: str) -> ResponseReturnValue:
    """One agreement: the request, the policy beside it, the plan, the history, the forms."""
    return _render_request(agreement_id)


@bp.get("/agreements")
def agreements() -> ResponseReturnValue:
    """Every agreement of this node, in both roles."""
    return _render_agreements()


@bp.get("/log")
def log_page() -> ResponseReturnValue:
    """The node's exchange log and its checkpoints.

    Auditors and admins read every field; the node's data owners read every
    entry too, without token ids and cursors (``OWNER_HIDDEN_FIELDS``).
    """
    full = pages.require_auditor_page(readers=LOG_READERS)
    return pages.log_page(current_audit(), full=full)


# --- decisions ------------------------------------------------------------------


@bp.post("/requests/<agreement_id>/decide")
def decide(agreement_id: str) -> ResponseReturnValue:
    """Approve, narrow or refuse a request (provider); accept or withdraw (requester)."""
    require_decider()
    session, me = db.session(), current_settings().member_id
    row = _agreement_or_404(session, agreement_id, me)
    try:
        form = load_form(DecisionForm(), request.form)
        action, reason = form["decision"], form["reason"].strip()
        if not reason and action not in REASON_OPTIONAL:
            raise FormInvalid("reason: give a reason; it is signed into the agreement's history")
        terms = narrowed_terms(row.terms, form) if action == "narrow" else None
        message = _sign(agreement_id, action, terms=terms, reason=reason or None)
    except (FormInvalid, PolicyError, CorridorError) as e:
        return _refused(e, lambda error, status: _render_request(
            agreement_id, error=error, status=status, form=request.form))
    flash(message, "ok")
    return redirect(url_for("web.request_page", agreement_id=agreement_id))


@bp.post("/agreements/<agreement_id>/revoke")
def revoke(agreement_id: str) -> ResponseReturnValue:
    """Revoke an active agreement this node provides; fetches stop at once."""
    require_decider()
    _agreement_or_404(db.session(), agreement_id, current_settings().member_id)
    try:
        reason = load_form(ReasonForm(), request.form)["reason"].strip()
        if not reason:
            raise FormInvalid("reason: give a reason; the requester will see it")
        message = _sign(agreement_id, "revoke", reason=reason)
    except (FormInvalid, PolicyError, CorridorError) as e:
        return _refused(e, lambda error, status: _render_agreements(
            error=f"{agreement_id}: {error}", status=status))
    flash(message, "ok")
    return redirect(url_for("web.agreements"))


def _refused(error: Exception, render: Callable[[str, int], ResponseReturnValue]
             ) -> ResponseReturnValue:
    """Re-render the page with why nothing was recorded (never a 500)."""
    db.session().rollback()
    if isinstance(error, NotFound):
        abort(404, description=error.detail)
    if isinstance(error, CorridorError):
        return render(f"Nothing was recorded: {page_message(error)}", error.status)
    return render(f"Nothing was recorded: {error}", 422)


def _sign(agreement_id: str, action: str, *, reason: str | None,
          terms: Mapping[str, Any] | None = None) -> str:
    """Sign and store this node's decision, then tell the registry; the message to show.

    :raises PolicyError: the state machine or the policy forbids it.
    :raises CorridorError: no such agreement, or it changed meanwhile.
    """
    settings, session = current_settings(), db.session()
    row = act(session, me=settings.member_id, key=current_signing_key(),
              keys_dir=settings.keys_dir, agreement_id=agreement_id, action=action,
              now=now(), terms=terms, reason=reason)
    session.commit()
    return f"{DONE[action]} {row.id}. {_tell_registry(session, settings, row)}"


def _tell_registry(session: Session, settings: NodeSettings, row: AgreementRow) -> str:
    if not settings.registry_url:
        return "Recorded here (this node has no registry to tell)."
    client = None
    try:
        client = client_for(settings)
        sent, why = push(session, client, row), "the registry did not answer"
    except (RegistryError, KeystoreError) as e:
        session.rollback()
        sent, why = False, str(e)
    finally:
        if client is not None:
            client.http.close()
    if sent:
        return "Recorded and sent to the registry."
    return f"Recorded here; it will be sent to the registry at the next sync ({why})."


# --- what the pages show ----------------------------------------------------------


def _agreement_or_404(session: Session, agreement_id: str, me: str) -> AgreementRow:
    try:
        return local(session, agreement_id, me)
    except NotFound as e:
        abort(404, description=e.detail)


def _preview(session: Session, row: AgreementRow, settings: NodeSettings) -> Preview:
    """The plan this node would apply, and a dry run of what it would release."""
    return preview(session, db.engine, row, keys_dir=settings.keys_dir,
                   key=current_signing_key(), provider=settings.member_id, now=now())


#: Where rendered release maps are kept, under the node directory (one file per
#: plan digest and dataset version: the map of a plan never changes).
MAP_CACHE = "cache/maps"


@bp.get("/requests/<agreement_id>/map.png")
def request_map(agreement_id: str) -> ResponseReturnValue:
    """The owner's map of a request: cameras as stored, as the plan releases them, withheld.

    Only the provider's owners see it (true positions are drawn). Rendered
    once per plan digest and dataset version, then served from the cache.
    """
    settings, session = current_settings(), db.session()
    row = _agreement_or_404(session, agreement_id, settings.member_id)
    if row.provider != settings.member_id:
        abort(404, description="this node provides no data under this agreement")
    try:
        geometry, key = release_geometry(session, db.engine, row, keys_dir=settings.keys_dir,
                                         key=current_signing_key(),
                                         provider=settings.member_id, now=now())
    except (PolicyError, CorridorError) as e:
        abort(404, description=f"no map: {e}")
    cached = settings.directory / MAP_CACHE / f"{key}.png"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        png = render_png(geometry, title=f"{row.dataset} under {row.id} "
                                         f"({row.terms.get('tier')} tier)")
        with written_whole(cached) as part:
            part.write_bytes(png)
            part.chmod(0o600)
    return send_file(cached, mimetype="image/png", max_age=0)


def terms_rows(terms: Mapping[str, Any], start: date) -> list[tuple[str, str]]:
    """The terms as (label, plain text) lines, every filter spelled out."""
    until = str(terms.get("until", ""))
    try:
        days = f" ({(date.fromisoformat(until) - start).days} days from the request)"
    except ValueError:
        days = ""
    taxa = terms.get("taxa")
    bbox = terms.get("bbox")
    wanted = terms.get("fields")
    return [
        ("Purpose", str(terms.get("purpose", ""))),
        ("Tier", str(terms.get("tier", ""))),
        ("Until", until + days),
        ("Taxa", ", ".join(map(str, taxa)) if taxa else "all"),
        ("Time window", f"{terms.get('time_from') or 'any start'} to "
                        f"{terms.get('time_to') or 'any end'}"
         if terms.get("time_from") or terms.get("time_to") else "all time"),
        ("Area", "west {}, south {}, east {}, north {}".format(*bbox)
         if isinstance(bbox, list) and len(bbox) == 4 else "everywhere"),
        ("Fields", "; ".join(f"{resource}: {', '.join(map(str, names))}"
                             for resource, names in wanted.items())
         if isinstance(wanted, dict) and wanted else "all the tier allows"),
    ]


def _tier_text(tier: Tier) -> str:
    if tier.aggregate_only:
        return "summary counts only, no rows"
    parts = [f"times to the {tier.coarsen_time}" if tier.coarsen_time else "times as recorded"]
    if tier.default_precision is not None:
        parts.append(f"coordinates rounded to {tier.default_precision}°")
    withheld = sum(len(names) for names in tier.withhold_fields.values())
    if withheld:
        parts.append(f"{withheld} fields withheld")
    if tier.pseudonymize_individuals:
        parts.append("individuals pseudonymized")
    parts.append("sensitive taxa protected" if tier.apply_sensitivity
                 else "no sensitivity rules")
    return ", ".join(parts)


def policy_rows(policy: Policy) -> list[tuple[str, str]]:
    """The essentials of a policy as (label, plain text) lines."""
    embargo = ", ".join(f"{taxon}: {days} days"
                        for taxon, days in sorted(policy.embargo_days.items()))
    return [
        ("Purposes", ", ".join(sorted(policy.purposes))),
        *((f"Tier {name}", _tier_text(tier)) for name, tier in sorted(policy.tiers.items())),
        ("Partners", "every member" if "*" in policy.partners
         else ", ".join(sorted(policy.partners))),
        ("Longest agreement", f"{policy.max_duration_days} days"),
        ("Embargo", embargo or "none"),
    ]


def narrow_values(terms: Mapping[str, Any], form: Mapping[str, str] | None) -> dict[str, str]:
    """What the narrow form shows: the request's values, or what was just submitted."""
    bbox = terms.get("bbox")
    corners = [str(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4 else [""] * 4
    values = {
        "tier": str(terms.get("tier", "")),
        "until": str(terms.get("until", "")),
        "taxa": "\n".join(map(str, terms.get("taxa") or [])),
        "time_from": str(terms.get("time_from") or ""),
        "time_to": str(terms.get("time_to") or ""),
        **{f"bbox_{side}": corner for side, corner in zip(BBOX_SIDES, corners, strict=True)},
    }
    if form is not None and form.get("decision") == "narrow":
        values.update({key: str(form[key]) for key in values if key in form})
    return values


def _render_request(agreement_id: str, *, error: str | None = None, status: int = 200,
                    form: Mapping[str, str] | None = None) -> ResponseReturnValue:
    settings, session = current_settings(), db.session()
    row = _agreement_or_404(session, agreement_id, settings.member_id)
    agreement: Agreement = restore(session, row)
    provider_side = row.provider == settings.member_id
    requested = agreement.events[0].terms or row.terms
    context: dict[str, Any] = {
        "row": row, "events": agreement.events, "error": error,
        "justification": agreement.events[0].reason,
        "provider_side": provider_side,
        "requested": terms_rows(requested, row.requested_at.date()),
        "current": terms_rows(row.terms, row.requested_at.date()),
        "narrowed": row.terms != agreement.events[0].terms,
        "can_answer": provider_side and row.state == REQUESTED,
        "can_accept": not provider_side and row.state == APPROVED,
        "can_withdraw": not provider_side and row.state in (REQUESTED, APPROVED),
        "submitted": form.get("decision") if form else None,
        "reason": form.get("reason", "") if form else "",
    }
    if provider_side:
        policy, _ = get_policy(session, row.dataset.split("/", 1)[-1])
        # An ended agreement releases nothing: no dry run of its package.
        preview = _preview(session, row, settings) if row.state in IN_PLAY else None
        context.update(policy=policy_rows(policy), preview=preview,
                       tiers=narrower_tiers(str(requested.get("tier")), policy.tiers),
                       narrow=narrow_values(row.terms, form))
    return render_template("request.html", **context), status


def _render_agreements(*, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    me = current_settings().member_id
    rows = STORE.of_member(db.session(), me)
    return render_template("agreements.html", rows=rows, error=error, active=ACTIVE), status
