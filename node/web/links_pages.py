"""The match ledger's page: every link, and the owner's confirm, reject and retract forms.

``GET /ledger`` lists this node's links with each proposal's method,
evidence, confidence and reason; an owner or admin confirms or rejects a
link another node proposed, or retracts a live one, with ``POST
/ledger/<link>``. Each action is signed with the node key and stored first,
then delivered to the other node (:func:`node.links.ledger.send`); if that
node cannot be reached the page says so and the message waits in the queue.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import fields
from marshmallow.validate import Length, OneOf

from corridor.clock import now
from corridor.errors import CorridorError, NotFound
from corridor.pages import FormInvalid, PageForm, load_form, page_message
from node.db import db
from node.exchange.trust_store import TrustUnavailable, current_trust_store
from node.links.ledger import decide, get_link, list_links, retract, send
from node.links.messages import read_message
from node.models import Link
from node.settings import current_settings, current_signing_key
from node.web.pages import bp, require_decider

__all__ = ["LinkActionForm"]

ACTIONS = ("confirm", "reject", "retract")


class LinkActionForm(PageForm):
    """Confirm, reject or retract one link, with the reason signed into it."""

    action = fields.String(required=True, validate=OneOf(ACTIONS))
    reason = fields.String(load_default="", validate=Length(max=500))


def _proposal(link: Link) -> dict[str, Any]:
    """What the proposer signed (read back from the stored JWS, whose shape was checked)."""
    trust = current_trust_store().current()
    if trust is None:
        return {}
    try:
        return dict(read_message(link.proposal, trust, sender=link.proposer,
                                 now=now()).payload)
    except CorridorError:
        return {}


@bp.get("/ledger")
def links_page() -> ResponseReturnValue:
    """This node's match ledger, waiting proposals first."""
    return _render()


def _render(*, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    me = current_settings().member_id
    links = sorted(list_links(db.session()),
                   key=lambda link: not (link.state == "proposed" and link.proposer != me))
    rows = [(link, _proposal(link)) for link in links]
    waiting = sum(link.state == "proposed" and link.proposer != me for link in links)
    return render_template("links.html", rows=rows, waiting=waiting, error=error), status


@bp.post("/ledger/<link_id>")
def link_action(link_id: str) -> ResponseReturnValue:
    """Confirm, reject or retract one link (owners and admins)."""
    require_decider()
    settings, session = current_settings(), db.session()
    try:
        get_link(session, link_id)
    except NotFound as e:
        abort(404, description=e.detail)
    try:
        form = load_form(LinkActionForm(), request.form)
        action, reason = form["action"], form["reason"].strip()
        if action != "confirm" and not reason:
            raise FormInvalid("reason: give a reason; it is signed into the link")
        if action == "retract":
            link = retract(session, me=settings.member_id, key=current_signing_key(),
                           link_id=link_id, reason=reason, now=now())
        else:
            link = decide(session, me=settings.member_id, key=current_signing_key(),
                          link_id=link_id, confirm=action == "confirm", reason=reason,
                          now=now())
        session.commit()
    except (FormInvalid, CorridorError) as e:
        session.rollback()
        text = page_message(e) if isinstance(e, CorridorError) else str(e)
        return _render(error=f"Nothing was recorded: {text}",
                       status=e.status if isinstance(e, CorridorError) else 422)
    try:
        result = send(session, settings, link, trust_list=current_trust_store().valid(now()))
        sent = ("and delivered to " + link.other_member if result.problem is None
                else f"but not yet delivered: {result.problem}")
    except TrustUnavailable as e:
        sent = f"but not yet delivered: {e.detail}"
    flash(f"Link {link.link_id} is now {link.state}, signed {sent}.", "ok")
    return redirect(url_for("web.links_page"))
