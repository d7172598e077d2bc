"""The demo's last question: how many leopards and tigers, counting border crossers once.

Each park names its animals in its own scheme. Their experts compare the
other side's catalogue photographs and agree which animals are the same; in
the demo, :func:`match_crossers` stands in for that comparison (it knows the
generator's hidden truth, as the experts' eyes would), but every link goes
through the real ledger: ru-lotl proposes it, signed, over HTTP; cn-ntlnp's
owner confirms it, signed; one look-alike proposed in error is rejected.

:func:`individuals_truth` recomputes the answer from both nodes' raw files
with the generator's mapping, so the demo can check the joint count of
individuals that went through signed counts and the ledger alone.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import httpx
from sqlalchemy.orm import Session

from corridor.keystore import load_signing_key
from corridor.outbound import partner_client
from crypto.keys import SigningKey
from crypto.trustlist import TrustList
from deploy.federation import LoopbackFederation, stored_trust_list
from node.data.demo_data import Side, cross_border_truth, individual_registry
from node.exchange.registry_client import client_for
from node.links.ledger import decide, deliver, get_link, propose
from node.models import Link
from node.settings import NodeSettings

__all__ = ["Truth", "individuals_truth", "match_crossers"]

#: (taxon, year) -> (animals recorded by RU, by CN), as generator ids.
Truth = dict[tuple[str, str], tuple[set[str], set[str]]]


def _recorded(settings: NodeSettings, side: Side, seed: int
              ) -> dict[tuple[str, str], set[str]]:
    """(taxon, UTC year) -> the animals (generator ids) a side's cameras identified."""
    local = {a.local_id(side): a.individual_id
             for a in individual_registry(seed) if a.ranges_on(side)}
    [path] = (settings.directory / "demo-data").glob("camtrap-*/observations.csv")
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["individualID"] and row["observationLevel"] == "event":
                year = datetime.fromisoformat(row["eventStart"]).astimezone(UTC).year
                seen[(row["scientificName"], str(year))].add(local[row["individualID"]])
    return seen


def individuals_truth(ru: NodeSettings, cn: NodeSettings, seed: int) -> Truth:
    """What the joint count of individuals should say, from the raw files and the truth."""
    a, b = _recorded(ru, "ru", seed), _recorded(cn, "cn", seed)
    return {key: (a.get(key, set()), b.get(key, set())) for key in sorted(set(a) | set(b))}


def match_crossers(net: LoopbackFederation, sessions: Callable[[NodeSettings], Session], *,
                   proposer: str, confirmer: str, seed: int,
                   step: Callable[[str], None]) -> Sequence[str]:
    """Link every crosser both parks recorded, through the signed ledger; return the link ids."""
    ru, cn = net.nodes[proposer], net.nodes[confirmer]
    seen_ru = {i for ids in _recorded(ru, "ru", seed).values() for i in ids}
    seen_cn = {i for ids in _recorded(cn, "cn", seed).values() for i in ids}
    truth = cross_border_truth(seed)
    pairs = [(truth[i][0], truth[i][1]) for i in sorted(truth) if i in seen_ru and i in seen_cn]
    residents = sorted(a.local_id("cn") for a in individual_registry(seed)
                       if a.home_range == "cn" and a.individual_id in seen_cn
                       and a.scientific_name == "Panthera pardus orientalis")
    look_alike = None
    if pairs and residents:  # a leopard of RU's proposed for a CN resident: rejected
        leopards = [p for p in pairs if p[0].startswith("PPO")]
        if leopards:
            look_alike = (leopards[0][0], residents[0])
    now = datetime.now(UTC)
    confirmed: list[str] = []
    with sessions(ru) as ru_db, sessions(cn) as cn_db, \
            partner_client(development=True, timeout=30) as http:
        ru_key, cn_key = load_signing_key(ru.keys_dir), load_signing_key(cn.keys_dir)
        ru_tokens, cn_tokens = client_for(ru).links_token, client_for(cn).links_token
        ru_trust, cn_trust = stored_trust_list(ru), stored_trust_list(cn)
        wrong = None
        if look_alike is not None:
            wrong = _proposed(ru_db, ru, ru_key, ru_trust, confirmer, look_alike, "0.4",
                              ru_tokens, http, now)
            link = decide(cn_db, me=confirmer, key=cn_key, link_id=wrong, confirm=False,
                          reason="Rosette pattern on the left flank differs", now=now)
            _delivered(cn_db, link, cn_trust, cn_tokens, http, now)
        for pair in pairs:
            link_id = _proposed(ru_db, ru, ru_key, ru_trust, confirmer, pair, "0.9", ru_tokens,
                                http, now)
            link = decide(cn_db, me=confirmer, key=cn_key, link_id=link_id, confirm=True,
                          reason="Our experts agree: same flank pattern", now=now)
            _delivered(cn_db, link, cn_trust, cn_tokens, http, now)
            confirmed.append(link_id)
        held = sum(get_link(ru_db, i).state == "confirmed" for i in confirmed)
    step(f"The parks' experts compared catalogue photographs: {proposer} proposed "
         f"{len(pairs) + bool(wrong)} matches in the signed ledger, {confirmer} confirmed "
         f"{len(confirmed)} (both signatures, on both nodes: {held} confirmed at {proposer}) "
         f"and rejected {int(bool(wrong))} look-alike.")
    return confirmed


def _proposed(session: Session, settings: NodeSettings, key: SigningKey, trust: TrustList,
              other: str, pair: tuple[str, str], confidence: str,
              tokens: Callable[[str], str], http: httpx.Client, now: datetime) -> str:
    """Propose one link and deliver it; its id."""
    link = propose(session, me=settings.member_id, key=key, trust_list=trust, other=other,
                   local_id=pair[0], other_id=pair[1], method="photo-id",
                   evidence=[f"individual:{pair[1]}"], confidence=float(confidence),
                   reason="Flank pattern matches the other park's catalogue photographs",
                   now=now)
    session.commit()
    _delivered(session, link, trust, tokens, http, now)
    return link.link_id


def _delivered(session: Session, link: Link, trust: TrustList, tokens: Callable[[str], str],
               http: httpx.Client, now: datetime) -> None:
    result = deliver(session, link, trust_list=trust, token=tokens, http=http, now=now)
    session.commit()
    if result.problem is not None:
        raise RuntimeError(f"the demo's link message was not delivered: {result.problem}")

