"""The requester's side of a joint count, and a node's counts of its own data (DESIGN.md §9).

:func:`request_counts` gets an ``agreement:counts`` token from the registry,
posts the query to the provider, and keeps the answer only if it verifies
(:func:`corridor.counts_reader.check_counts`: the provider's signature from
the stored trust list, this agreement, this node as recipient, the protocol
asked for). The file is written whole or not at all, and the
``counts.received`` entry names the provider's ``counts.served`` index and
the content digest, so an auditor can pair them.

:func:`own_counts` is the owner counting its own dataset under one of its
policy's tiers (``aggregate`` by default), signed with its own key so that
every number of a joint table traces to a signed node result, and logged as
``counts.computed``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from corridor.counts_reader import MAX_RESULT_BYTES, CountsReport, check_counts
from corridor.errors import CorridorError
from corridor.files import written_whole
from corridor.tlog import node_origin
from crypto.canonical import canonical_json
from crypto.keys import SigningKey
from crypto.trustlist import TrustList
from node.data.policy_store import get_policy
from node.exchange.counts import (
    content_digest,
    count,
    crossers_of,
    result_document,
    sign_result,
)
from node.exchange.fetch import FetchRefused, post_for_json, requested_from
from node.exchange.package import dataset_plan
from node.exchange.registry_client import RegistryClient
from node.log.exchange_log import LOG
from policies.counts import Query
from policies.grid import GridError
from policies.terms import load_terms

__all__ = ["CountsReceived", "own_counts", "query_document", "request_counts"]


@dataclass(frozen=True)
class CountsReceived:
    """A counts result received (or computed), verified and written to ``path``."""

    path: Path
    provider: str
    agreement: str | None
    document: Mapping[str, Any]
    report: CountsReport


def query_document(query: Query, *, crossers: bool = False) -> dict[str, Any]:
    """The JSON a provider's counts endpoint takes for ``query`` (with the crossers section?)."""
    protocol = query.protocol
    document = {**query.to_json(), "protocol": {
        "independence_minutes": protocol.independence_minutes,
        "independence_from": protocol.independence_from,
        "observation_level": protocol.observation_level}}
    if crossers:
        document["crossers"] = True
    return document


def request_counts(session: Session, client: RegistryClient, trust_list: TrustList, *,
                   agreement_id: str, query: Query, out: Path, now: datetime,
                   http: httpx.Client, crossers: bool = False) -> CountsReceived:
    """Ask an agreement's provider for counts; verify, keep and log the signed answer.

    :raises FetchRefused: token refused, provider refused (its problem
        detail), transfer failed, or the answer does not verify; nothing is kept.
    """
    row, provider, token = requested_from(session, client, trust_list, agreement_id,
                                          token=client.counts_token)
    url = provider.node_url.rstrip("/") + f"/agreements/{agreement_id}/counts"
    document = post_for_json(http, url, token=token, body=query_document(query, crossers=crossers),
                             max_bytes=MAX_RESULT_BYTES, who=row.provider)
    report = check_counts(document, trust_list, agreement=agreement_id,
                          recipient=client.member_id, protocol=query.protocol.to_json()
                          if query.kind == "camtrap" else None)
    if not report.ok or report.result is None:
        raise FetchRefused(f"the counts result does not verify: {report.failure}")
    result = report.result
    if result.get("provider") != row.provider:
        raise FetchRefused(f"the counts result is signed by {result.get('provider')}, "
                           f"not by the provider {row.provider}")
    with written_whole(out) as part:
        part.write_bytes(canonical_json(document))
    log = result.get("log") or {}
    served = log.get("index") if isinstance(log, dict) else None
    LOG.append(session, "counts.received", now, member=row.provider, agreement=agreement_id,
               served_index=served if type(served) is int else None,
               content_sha256=content_digest(result),
               file_sha256="sha256:" + hashlib.sha256(out.read_bytes()).hexdigest())
    session.commit()
    return CountsReceived(out, row.provider, agreement_id, document, report)


def own_counts(session: Session, engine: Engine, *, me: str, key: SigningKey, keys_dir: Path,
               trust_list: TrustList, dataset_name: str, query: Query, out: Path,
               now: datetime, tier: str = "aggregate",
               crossers_with: Sequence[str] | None = None) -> CountsReceived:
    """Count this node's own dataset under its policy's ``tier``; sign, verify, keep, log.

    ``crossers_with``: add the crossers section for the links with these members.

    :raises CorridorError: no such dataset or tier, or the rules refuse the query.
    """
    policy, _ = get_policy(session, dataset_name)
    if tier not in policy.tiers:
        raise CorridorError(f"the policy of {dataset_name} has no tier {tier!r}; it has "
                            + ", ".join(sorted(policy.tiers)))
    terms = load_terms({"purpose": "joint-monitoring", "tier": tier})
    dataset, plan = dataset_plan(session, dataset_name, terms, me, now, keys_dir=keys_dir,
                                 pseudonym_scope=f"preview:{me}")
    answer = count(engine, dataset, plan, policy.tiers[tier], query)
    crossers = None
    if crossers_with is not None:
        try:
            crossers = crossers_of(session, answer, crossers_with)
        except GridError as e:
            raise CorridorError(str(e)) from e
    document = result_document(answer, provider=me, recipient=me, agreement=None,
                               issued_at=now, log=None, crossers=crossers)
    content = content_digest(document)
    index = LOG.append(session, "counts.computed", now, member=me, dataset=dataset.name,
                       version=dataset.version, tier=tier, plan_digest=plan.digest(),
                       content_sha256=content, rows=len(answer.released.counts))
    document["log"] = {"index": index, "origin": node_origin(me), "content_sha256": content}
    signed = sign_result(document, key)
    report = check_counts(signed, trust_list, recipient=me)
    if not report.ok:
        raise CorridorError(f"this node's own counts do not verify: {report.failure}")
    with written_whole(out) as part:
        part.write_bytes(canonical_json(signed))
    session.commit()
    return CountsReceived(out, me, None, signed, report)
