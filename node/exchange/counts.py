"""Joint counts at the provider: the query, the grouping in SQL, the signed result (DESIGN.md §9).

A partner with an active agreement (any tier: ``aggregate`` releases only
this) asks for summary counts with a query document. The node compiles the
agreement's plan exactly as for a package (its policy and the agreement's
terms only), takes the owner's disclosure rules from the agreement's tier,
and counts with the one protocol of :mod:`policies.counts`: the database
filters and orders the released records (taxa, area, time, category-1 taxa,
embargo: the same conditions as a package, :class:`~node.exchange.release.CamtrapRelease`),
Python walks them once in time order per camera, and
:mod:`policies.suppression` decides what may leave.

The answer is a **counts result**: canonical JSON carrying the provider,
recipient, agreement, dataset and version, the query, the protocol, the
disclosure rules applied, the plan digest, the rows and their explanation,
and the provider's log index of its ``counts.served`` entry, signed by the
node key as a detached JWS (:mod:`corridor.counts_reader` checks it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, select
from sqlalchemy.orm import Session

from corridor.counts_reader import COUNTS_TYP, RESULT_TYPE
from corridor.db import table_of
from crypto.canonical import canonical_json
from crypto.jws import sign_detached
from crypto.keys import SigningKey
from node.data.policy_store import get_policy
from node.exchange.package import stored_names
from node.exchange.release import CamtrapRelease, embargo_clause
from node.models import (
    PROFILE_CAMTRAP,
    Dataset,
    Deployment,
    Event,
    Link,
    Observation,
    Occurrence,
)
from policies.counts import (
    BirdRecord,
    Camera,
    Detection,
    Query,
    Survey,
    Tally,
    tally_birds,
    tally_camtrap,
)
from policies.crossers import crossers_section
from policies.engine import Plan
from policies.grid import GridError, cell_of
from policies.links import CONFIRMED
from policies.policy import Tier
from policies.suppression import Disclosure, Released, release
from policies.taxonomy import accepted_name

__all__ = ["CountsAnswer", "content_digest", "count", "crossers_of", "disclosure_for",
           "linked_individuals", "sign_result", "tier_of"]

#: Rows fetched from the database per round trip while counting.
BATCH = 10_000


@dataclass(frozen=True)
class CountsAnswer:
    """What a counts query produced before it is signed: the release and its context."""

    released: Released
    rules: Disclosure
    plan: Plan
    dataset: Dataset
    tally: Tally | None = None  # the exact counts behind ``released``; never signed or sent


def tier_of(session: Any, dataset_name: str, plan: Plan) -> Tier:
    """The policy tier a plan was compiled from (its disclosure rules live there)."""
    policy, _ = get_policy(session, dataset_name)
    return policy.tiers[plan.tier]


def disclosure_for(plan: Plan, tier: Tier, query: Query) -> Disclosure:
    """The owner's rules for ``query`` under ``plan``: thresholds, grid, terms, embargo."""
    finest = {t: p for t in query.taxa if (p := plan.precision_of(t)) is not None}
    embargo = {t: c for t in query.taxa if (c := plan.embargo_cutoff(t)) is not None}
    return Disclosure(
        min_events=tier.min_events, min_cameras=tier.min_cameras, periods=tier.count_periods,
        min_cell_degrees=finest, embargo=embargo,
        withheld=frozenset(t for t in query.taxa if plan.is_dropped(t)),
        taxa=None if plan.taxa is None else frozenset(t for t in query.taxa if plan.in_taxa(t)),
        not_before=plan.time_from, not_after=plan.time_to)


def count(engine: Engine, dataset: Dataset, plan: Plan, tier: Tier, query: Query) -> CountsAnswer:
    """Count ``query`` over ``dataset`` under ``plan``; refuse what the rules do not allow.

    :raises policies.suppression.QueryRefused: the query asks for more than
        the rules or the agreement allow (checked before any row is read).
    :raises policies.grid.GridError: the query's metrics do not fit the dataset.
    """
    rules = disclosure_for(plan, tier, query)
    rules.check(query)
    camtrap = dataset.profile == PROFILE_CAMTRAP
    if camtrap != (query.kind == "camtrap"):
        raise GridError(f"{dataset.name} is a {dataset.profile} dataset: ask for "
                        + ("effort, events, rai, occupancy or individuals" if camtrap
                           else "surveys, visits, sum or max"))
    if camtrap:
        tally = tally_camtrap(query, _cameras(engine, dataset, plan, query),
                              _detections(engine, dataset, plan, query))
    else:
        surveys, records = _surveys(engine, dataset, plan, query)
        tally = tally_birds(query, surveys, records)
    return CountsAnswer(release(tally, rules), rules, plan, dataset, tally)


def _cameras(engine: Engine, dataset: Dataset, plan: Plan, query: Query) -> list[Camera]:
    """The dataset's deployments that ran during the query, in cells inside the area.

    A camera counts only if its whole query cell lies in the agreement's area:
    an edge drawn through a cell would otherwise split the cell's cameras by
    where they stand, and two agreements' counts differenced would place them
    more finely than the grid allows.
    """
    table = table_of(Deployment)
    start, end = query.span()
    statement = select(table.c.deploymentID, table.c.locationID, table.c.latitude,
                       table.c.longitude, table.c.deploymentStart_utc,
                       table.c.deploymentEnd_utc).where(
        table.c.dataset_id == dataset.id, table.c.deploymentStart_utc < end,
        table.c.deploymentEnd_utc > start)
    with engine.connect() as conn:
        return [Camera(d, loc or d, lat, lon, s, e)
                for d, loc, lat, lon, s, e in conn.execute(statement)
                if _cell_inside(plan, lat, lon, query.cell_size)]


def _cell_inside(plan: Plan, lat: float, lon: float, size: str) -> bool:
    """Whether the query cell holding a position lies wholly in the agreement's area."""
    if plan.bbox is None:
        return True
    cell = cell_of(lat, lon, size)
    return plan.holds(cell.west, cell.south, cell.west + cell.size, cell.south + cell.size)


def _detections(engine: Engine, dataset: Dataset, plan: Plan, query: Query
                ) -> Iterator[Detection]:
    """Released animal records of the query's taxa, in time order per camera."""
    names = stored_names(engine, dataset.id)
    stored = [n for n in names if accepted_name(n) in query.taxa]
    if not stored:
        return
    released = CamtrapRelease(engine, dataset.id, plan, names=names, excluded_cameras=())
    obs = table_of(Observation)
    _, end = query.span()
    statement = (select(obs.c.deploymentID, obs.c.scientificName, obs.c.eventStart_utc,
                        obs.c.individualID)
                 .where(*released.observations(obs), obs.c.scientificName.in_(stored),
                        obs.c.observationType == "animal",
                        obs.c.observationLevel == query.protocol.observation_level,
                        obs.c.eventStart_utc < end)
                 .order_by(obs.c.deploymentID, obs.c.eventStart_utc))
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=BATCH).execute(statement)
        for deployment, taxon, start, individual in result:
            yield Detection(deployment, taxon, start, individual)


def _surveys(engine: Engine, dataset: Dataset, plan: Plan, query: Query
             ) -> tuple[list[Survey], list[BirdRecord]]:
    """The survey events of the query's periods inside the area, and their released counts."""
    events, occ = table_of(Event), table_of(Occurrence)
    start, end = query.span()
    with engine.connect() as conn:
        stored = sorted(conn.scalars(select(occ.c.scientificName).distinct().where(
            occ.c.dataset_id == dataset.id, occ.c.scientificName.is_not(None))))
        wanted = [n for n in stored if accepted_name(n) in query.taxa and plan.in_taxa(n)
                  and not plan.is_dropped(n)]
        surveys = [Survey(e, loc or e, lat, lon, s) for e, loc, lat, lon, s in conn.execute(
            select(events.c.eventID, events.c.locationID, events.c.decimalLatitude,
                   events.c.decimalLongitude, events.c.eventDate_start_utc).where(
                events.c.dataset_id == dataset.id, events.c.eventDate_start_utc >= start,
                events.c.eventDate_start_utc < end, events.c.decimalLatitude.is_not(None),
                events.c.decimalLongitude.is_not(None)))
            if _cell_inside(plan, lat, lon, query.cell_size)]
        cutoffs = {n: c for n in wanted if (c := plan.embargo_cutoff(n)) is not None}
        records = [BirdRecord(e, name, n) for e, name, n in conn.execute(
            select(occ.c.eventID, occ.c.scientificName, occ.c.individualCount)
            .join(events, and_(events.c.dataset_id == occ.c.dataset_id,
                               events.c.eventID == occ.c.eventID))
            .where(occ.c.dataset_id == dataset.id, occ.c.scientificName.in_(wanted),
                   embargo_clause(occ.c.scientificName, events.c.eventDate_start_utc, cutoffs)))
        ] if wanted else []
    return surveys, records


def linked_individuals(session: Session, partners: Sequence[str]) -> dict[str, list[str]]:
    """This node's individuals with a confirmed link to one of ``partners``: id -> link ids."""
    linked: dict[str, list[str]] = {}
    for local_id, link_id in session.execute(
            select(Link.local_id, Link.link_id).where(Link.state == CONFIRMED,
                                                     Link.other_member.in_(partners))
            .order_by(Link.link_id)):
        linked.setdefault(local_id, []).append(link_id)
    return linked


def crossers_of(session: Session, answer: CountsAnswer,
                partners: Sequence[str]) -> list[dict[str, Any]]:
    """The crossers section of ``answer`` for the links with ``partners``.

    :raises GridError: the query does not count individuals on camera traps.
    """
    query = answer.released.query
    if (answer.tally is None or answer.released.kind != "camtrap"
            or "individuals" not in query.get("metrics", ())):
        raise GridError("the crossers section needs a camera-trap query with the "
                        "individuals metric")
    return crossers_section(answer.tally, answer.released,
                            linked_individuals(session, partners))


def result_document(answer: CountsAnswer, *, provider: str, recipient: str | None,
                    agreement: str | None, issued_at: datetime,
                    log: Mapping[str, Any] | None,
                    crossers: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The counts result as it is signed (``log``: the ``counts.served`` entry's index, origin).

    ``crossers``: the crossers section (:func:`policies.crossers.crossers_section`),
    when the query asked for it.
    """
    dataset = answer.dataset
    extra = {} if crossers is None else {"crossers": [dict(r) for r in crossers]}
    return {
        "type": RESULT_TYPE,
        "provider": provider,
        "recipient": recipient,
        "agreement": agreement,
        "dataset": {"name": dataset.name, "version": dataset.version,
                    "profile": dataset.profile},
        "issued_at": issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "plan": {"digest": answer.plan.digest(), "tier": answer.plan.tier,
                 "lines": answer.plan.explain()},
        "disclosure": answer.rules.to_json(),
        "log": dict(log) if log else None,
        **answer.released.to_json(),
        **extra,
    }


def content_digest(result: Mapping[str, Any]) -> str:
    """The digest a ``counts.served`` entry records: the result without its log reference."""
    body = dict(result)
    body["log"] = None
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def sign_result(document: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """``{"result": document, "jws": detached JWS over its canonical JSON}``."""
    return {"result": dict(document),
            "jws": sign_detached(canonical_json(document), key, typ=COUNTS_TYP)}
