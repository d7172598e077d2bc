"""The match ledger's rules: one animal to one on the other side, and one taxon.

A link joins this node's individual ``local_id`` to another member's
``other_id``. :func:`link_refusal` says why a new (or newly confirmed) link
cannot be held, given the links this node already holds with that member;
the node applies it to every link it proposes, receives or confirms
(:mod:`node.links.ledger`). Pure: no IO, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from policies.taxonomy import accepted_name

__all__ = ["CONFIRMED", "LIVE", "PROPOSED", "REJECTED", "RETRACTED", "HeldLink", "link_refusal"]

#: A link's states: proposed by one node, then confirmed or rejected by the
#: other, and a proposed or confirmed link may be retracted by either.
PROPOSED, CONFIRMED, REJECTED, RETRACTED = "proposed", "confirmed", "rejected", "retracted"
#: States in which a link holds its two individuals.
LIVE = (PROPOSED, CONFIRMED)


@dataclass(frozen=True)
class HeldLink:
    """A live link (proposed or confirmed) this node holds with one other member."""

    link_id: str
    local_id: str
    other_id: str
    state: str


def link_refusal(*, local_id: str, local_taxon: str | None, other_id: str, other_taxon: str,
                 other: str, held: Iterable[HeldLink]) -> str | None:
    """Why the link ``local_id`` = ``other``'s ``other_id`` cannot be held, or None.

    :param local_taxon: the accepted taxon of this node's animal (None: no such animal).
    :param other_taxon: the taxon the link gives for the other animal.
    :param held: the live links with ``other`` (the link itself excluded).
    """
    if local_taxon is None:
        return f"{local_id} is not an individual of this node's current datasets"
    if accepted_name(other_taxon) != accepted_name(local_taxon):
        return (f"the link would join two taxa: {local_id} is {local_taxon}, the other "
                f"animal {other_taxon}")
    for link in held:
        if link.local_id == local_id or link.other_id == other_id:
            return (f"the link would join one animal to two: {link.local_id} is already "
                    f"{link.state} as {other}'s {link.other_id} (link {link.link_id}); "
                    "retract that link first")
    return None
