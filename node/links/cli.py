"""``corridor node links``: the match ledger from the command line.

    corridor node links propose cn-ntlnp PPO-RU-017 CN-L07 --method photo-id \\
        --evidence media:CN-M0001234 --confidence 0.9 --reason "Same left-flank rosettes"
    corridor node links list
    corridor node links confirm LINK --reason "Our experts agree"     # at the other node
    corridor node links retract LINK --reason "Second look: different animal"

Each action is signed, stored and logged here first, then delivered to the
other node; if that node cannot be reached the message stays queued and
``corridor node links push`` (or the next action) sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy.orm import Session

from corridor.console import fail, out
from corridor.errors import CorridorError
from corridor.keystore import load_signing_key
from corridor.listing import format_option, print_rows
from corridor.outbound import partner_client
from corridor.pages import is_development_url
from node.data.datasets import current_datasets
from node.exchange.agreements_cli import node_context, registry_of, trust_list_of
from node.links.ledger import (
    decide,
    get_link,
    list_links,
    propose,
    retract,
    send,
)
from node.links.messages import METHODS, MessageInvalid, read_message
from node.links.overlap import identifiers, run_overlap
from node.models import PROFILE_CAMTRAP, Link
from node.settings import NodeSettings

__all__ = ["links", "overlap"]

_STATES = ("proposed", "confirmed", "rejected", "retracted")


@click.group("links")
def links() -> None:
    """The cross-border match ledger: which of my animals is which of a partner's.

    A link is proposed by one node, confirmed or rejected by the other's
    owner, and can be retracted by either; every step is signed, kept on both
    nodes and written to both exchange logs. Confirmed links are what
    'corridor joint-count --individuals' subtracts so that border crossers
    are counted once.
    """


def _row(link: Link, me: str) -> dict[str, Any]:
    return {"link": link.link_id, "state": link.state, "taxon": link.taxon,
            "mine": link.local_id, "partner": link.other_member, "theirs": link.other_id,
            "proposed_by": "this node" if link.proposer == me else link.proposer,
            "method": link.method, "confidence": link.confidence,
            "updated": link.updated_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "undelivered": len(link.outbox) or None, "delivery_error": link.delivery_error}


@links.command("list")
@click.option("--state", type=click.Choice(_STATES), default=None, help="Only this state.")
@click.option("--with", "other", default=None, metavar="MEMBER",
              help="Only links with this member.")
@format_option()
@click.pass_context
def list_cmd(ctx: click.Context, state: str | None, other: str | None, fmt: str) -> None:
    """List the ledger's links, newest first."""
    me = node_context(ctx).settings.member_id
    with node_context(ctx).session() as session:
        rows = [_row(link, me) for link in list_links(session, state=state, other=other)]
    columns = ["link", "state", "taxon", "mine", "partner", "theirs", "proposed_by"]
    if fmt != "table":
        columns += ["method", "confidence", "updated", "undelivered", "delivery_error"]
    print_rows(rows, columns, fmt, title="Match ledger", empty="No links yet.")


@links.command("show")
@click.argument("link_id")
@click.pass_context
def show(ctx: click.Context, link_id: str) -> None:
    """Show one link and check each of its signed messages against the trust list."""
    settings = node_context(ctx).settings
    trust_list = trust_list_of(settings)
    now = datetime.now(UTC)
    with node_context(ctx).session() as session:
        try:
            link = get_link(session, link_id)
        except CorridorError as e:
            fail(str(e.detail))
        for name, value in _row(link, settings.member_id).items():
            if value is not None:
                out.print(f"{name:>15}  {value}", markup=False)
        try:
            body = read_message(link.proposal, trust_list, sender=link.proposer,
                                now=now).payload
        except MessageInvalid:
            body = {}  # the signature lines below say why
        if body:
            out.print(f"{'evidence':>15}  {', '.join(body['evidence']) or '(none)'}",
                      markup=False)
            out.print(f"{'reason':>15}  {body['reason']}", markup=False)
        decider = settings.member_id if link.proposer != settings.member_id \
            else link.other_member
        for label, jws, signers in (("proposal", link.proposal, (link.proposer,)),
                                    ("decision", link.decision, (decider,)),
                                    ("retraction", link.retraction,
                                     (settings.member_id, link.other_member))):
            if jws:
                out.print(f"{label:>15}  {_verified(jws, signers, trust_list, now)}",
                          markup=False)


def _verified(jws: str, signers: Sequence[str], trust_list: Any, now: datetime) -> str:
    """Who signed a stored message (one of ``signers``), or why it does not verify."""
    problem = ""
    for signer in signers:
        try:
            message = read_message(jws, trust_list, sender=signer, now=now)
        except MessageInvalid as e:
            problem = str(e.detail)
            continue
        return f"{message.action} signed by {signer} at {message.payload['at']} ({message.digest})"
    return f"DOES NOT VERIFY: {problem}"


@links.command("propose")
@click.argument("member")
@click.argument("mine")
@click.argument("theirs")
@click.option("--method", type=click.Choice(METHODS), required=True,
              help="photo-id (coat or flank pattern), genotype, or other.")
@click.option("--evidence", multiple=True, metavar="REF",
              help="A reference to the evidence, e.g. media:CN-M0001234 (repeatable).")
@click.option("--confidence", type=click.FloatRange(0, 1), required=True,
              help="How sure the experts are, from 0 to 1.")
@click.option("--reason", required=True, help="Why the two are one animal, in words.")
@click.pass_context
def propose_cmd(ctx: click.Context, member: str, mine: str, theirs: str, method: str,
                evidence: tuple[str, ...], confidence: float, reason: str) -> None:
    """Propose that this node's individual MINE is MEMBER's individual THEIRS."""
    settings = node_context(ctx).settings
    trust_list = trust_list_of(settings)
    with node_context(ctx).session() as session:
        try:
            link = propose(session, me=settings.member_id,
                           key=load_signing_key(settings.keys_dir), trust_list=trust_list,
                           other=member, local_id=mine, other_id=theirs, method=method,
                           evidence=evidence, confidence=confidence, reason=reason,
                           now=datetime.now(UTC))
        except CorridorError as e:
            fail(f"link refused: {e.detail}")
        session.commit()
        out.print(f"Proposed link [bold]{link.link_id}[/]: {mine} here = {member}'s {theirs} "
                  f"({link.taxon}).")
        _deliver(session, settings, link)


def _act(ctx: click.Context, link_id: str, action: str, reason: str) -> None:
    """Confirm, reject or retract one link, then deliver the message."""
    settings = node_context(ctx).settings
    key = load_signing_key(settings.keys_dir)
    now = datetime.now(UTC)
    with node_context(ctx).session() as session:
        try:
            if action == "retract":
                link = retract(session, me=settings.member_id, key=key, link_id=link_id,
                               reason=reason, now=now)
            else:
                link = decide(session, me=settings.member_id, key=key, link_id=link_id,
                              confirm=action == "confirm", reason=reason, now=now)
        except CorridorError as e:
            fail(f"{action} refused: {e.detail}")
        session.commit()
        out.print(f"Link [bold]{link.link_id}[/] ({link.local_id} here = "
                  f"{link.other_member}'s {link.other_id}) is now {link.state}.")
        _deliver(session, settings, link)


@links.command("confirm")
@click.argument("link_id")
@click.option("--reason", default="", help="A note for the record.")
@click.pass_context
def confirm(ctx: click.Context, link_id: str, reason: str) -> None:
    """Confirm a link proposed to this node: both nodes then hold both signatures."""
    _act(ctx, link_id, "confirm", reason)


@links.command("reject")
@click.argument("link_id")
@click.option("--reason", required=True, help="Why the two are not one animal.")
@click.pass_context
def reject(ctx: click.Context, link_id: str, reason: str) -> None:
    """Reject a link proposed to this node."""
    _act(ctx, link_id, "reject", reason)


@links.command("retract")
@click.argument("link_id")
@click.option("--reason", required=True, help="Why the link no longer holds.")
@click.pass_context
def retract_cmd(ctx: click.Context, link_id: str, reason: str) -> None:
    """Retract a proposed or confirmed link (either party may)."""
    _act(ctx, link_id, "retract", reason)


@links.command("push")
@click.pass_context
def push(ctx: click.Context) -> None:
    """Deliver every message still queued for a partner node."""
    settings = node_context(ctx).settings
    with node_context(ctx).session() as session:
        pending = [link for link in list_links(session) if link.outbox]
        if not pending:
            out.print("Nothing to deliver.")
        failed = sum(not _deliver(session, settings, link) for link in pending)
    if failed:
        fail(f"{failed} of {len(pending)} links still have undelivered messages")


def _deliver(session: Session, settings: NodeSettings, link: Link) -> bool:
    """Send the link's queued messages now; say what happened. True when none is left."""
    if not link.outbox:
        return True
    result = send(session, settings, link, trust_list=trust_list_of(settings))
    if result.problem is None:
        out.print(f"  delivered to {link.other_member}.")
        return True
    if result.refused:
        fail(f"{result.problem} (link {link.link_id} is now {link.state} here)")
    out.print(f"  [yellow]not yet delivered to {link.other_member}:[/] {result.problem}; it "
              "is kept here and 'corridor node links push' sends it.", markup=True)
    return False



@click.command("overlap")
@click.argument("agreement_id")
@click.option("--field", required=True, metavar="COLUMN",
              help="This node's individuals column with the shared identifier, e.g. genotype.")
@click.option("--dataset", "dataset_name", default=None,
              help="This node's camera-trap dataset (default: the only one).")
@click.pass_context
def overlap(ctx: click.Context, agreement_id: str, field: str,
            dataset_name: str | None) -> None:
    """Count the animals this node shares with an agreement's provider, privately.

    Both sides' identifiers (a genotype, a joint catalogue code) stay home:
    only blinded values cross (crypto.psi), and both nodes learn the count
    and nothing else. The provider's tier must name its identifier column
    (private_overlap). The result, signed by both, goes to
    received/overlap/SESSION.json.
    """
    settings = node_context(ctx).settings
    client, trust_list = registry_of(settings), trust_list_of(settings)
    with node_context(ctx).session() as session:
        camtrap = [d for d in current_datasets(session) if d.profile == PROFILE_CAMTRAP
                   and dataset_name in (None, d.name)]
        if len(camtrap) != 1:
            fail("give --dataset: " + (", ".join(d.name for d in camtrap)
                                       or "this node holds no such camera-trap dataset"))
        mine = identifiers(session, camtrap[0], None, field)
        if not mine:
            fail(f"no individual of {camtrap[0].name} has a value in column {field!r}")
        with partner_client(development=is_development_url(settings.url), timeout=120) as http:
            try:
                result = run_overlap(session, client, trust_list, agreement_id=agreement_id,
                                     mine=mine, key=load_signing_key(settings.keys_dir),
                                     out_dir=settings.directory / "received" / "overlap",
                                     now=datetime.now(UTC), http=http)
            except CorridorError as e:
                fail(f"overlap count refused: {e.detail}")
    sizes = result.result["sizes"]
    provider = result.result["provider"]
    out.print(f"{result.count} of this node's {len(mine)} and {provider}'s "
              f"{sizes.get(provider)} identifiers are shared (which ones, neither side "
              f"learned). Signed by both: {result.path}")
