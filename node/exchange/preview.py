"""What approving a request would release, shown to the owner before they decide.

The web request page and the CLI (``decide``, ``request show``) show the
same thing: the plan's lines and, for a package tier, the rows per resource
a dry run of the export would send; for the aggregate tier, the counts the
partner would get for the most detailed query they could send -- every
taxon of the agreement, the finest cell the rules allow, the finest period
offered, over the dataset's time -- with its suppressed cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, cast

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from corridor.db import table_of
from corridor.errors import NotFound
from crypto.keys import SigningKey
from node.data.policy_store import cursor_key
from node.exchange.agreements import plan_for
from node.exchange.counts import count, tier_of
from node.exchange.package import CamtrapExporter, ExportError, exporter_for
from node.exchange.release_map import ReleaseGeometry, withheld_of
from node.models import PROFILE_CAMTRAP, Dataset, Deployment, Event
from node.models import Agreement as AgreementRow
from policies.counts import BIRD_METRICS, CAMTRAP_METRICS, MAX_TAXA, Query
from policies.engine import Plan
from policies.errors import PolicyError
from policies.grid import (
    CELL_SIZES,
    MAX_PERIODS,
    PERIOD_UNITS,
    GridError,
    parse_period,
    period_bounds,
    period_of,
)
from policies.policy import Tier
from policies.suppression import Released, derived
from policies.taxonomy import accepted_name

__all__ = ["Preview", "counts_query", "preview", "release_geometry"]


@dataclass
class Preview:
    """What approving would release: the plan's lines, and rows or counts.

    :ivar refusal: approval itself would be refused (the policy forbids the terms).
    :ivar no_rows: why no row package is released (the aggregate tier).
    :ivar counts: the counts the partner would get, and the query they answer.
    :ivar no_counts: why no counts can be shown.
    """

    lines: list[str] = field(default_factory=list)
    refusal: str | None = None
    no_rows: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    query: Query | None = None
    counts: Released | None = None
    no_counts: str | None = None

    @property
    def suppressed(self) -> int:
        """How many cell rows of the counts are suppressed."""
        return sum(1 for r in self.counts.counts if "suppressed" in r) if self.counts else 0

    @property
    def columns(self) -> tuple[str, ...]:
        """The figures a counts row shows, by the kind of data."""
        if self.counts is not None and self.counts.kind == "birds":
            return ("visits", "surveys", "sum", "max")
        return ("events", "camera_days", "rai", "cameras", "occupancy")

    def count_rows(self, level: str) -> list[dict[str, Any]]:
        """The counts' ``total`` or ``cell`` rows, with days, RAI and occupancy derived."""
        if self.counts is None:
            return []
        rows = self.counts.totals if level == "total" else self.counts.counts
        return [derived(r, self.counts.kind) for r in rows]


class _NullSink:
    """Counts nothing, keeps nothing: an export run only for its row counts."""

    def write(self, data: bytes, /) -> int:
        return len(data)

    def flush(self) -> None:
        return None


def preview(session: Session, engine: Engine, row: AgreementRow, *, keys_dir: Path,
            key: SigningKey, provider: str, now: datetime) -> Preview:
    """The plan this node would apply to ``row``, and a dry run of what it would release."""
    try:
        dataset, plan, _ = plan_for(session, row, keys_dir=keys_dir, now=now)
    except PolicyError as e:
        return Preview(refusal=str(e))
    except NotFound as e:
        return Preview(refusal=e.detail or "the dataset is not at this node")
    shown = Preview(lines=plan.explain())
    try:
        result = exporter_for(engine, dataset, plan, provider=provider, key=key, now=now,
                              cursor_key=cursor_key(keys_dir), recipient=row.requester,
                              agreement=row.id).write(cast(BinaryIO, _NullSink()))
    except ExportError as e:
        shown.no_rows = str(e)
    else:
        shown.rows, shown.dropped = dict(result.rows), dict(result.dropped)
    tier = tier_of(session, dataset.name, plan)
    if tier.aggregate_only:
        try:
            shown.query = counts_query(dataset, plan, tier)
            shown.counts = count(engine, dataset, plan, tier, shown.query).released
        except (GridError, PolicyError) as e:
            shown.no_counts = str(e)
    return shown


def counts_query(dataset: Dataset, plan: Plan, tier: Tier) -> Query:
    """The most detailed counts query the partner could send under ``plan``.

    :raises GridError: the agreement leaves no taxon or no whole period to count.
    """
    taxa = sorted({n for t in dataset.taxa if (n := accepted_name(t)) and plan.in_taxa(t)})
    if not taxa:
        raise GridError("the agreement covers no taxon this dataset holds")
    taxa = taxa[:MAX_TAXA]
    coarsest = max((Decimal(repr(p)) for t in taxa if (p := plan.precision_of(t)) is not None),
                   default=Decimal(0))
    cell = next((size for size in CELL_SIZES if Decimal(size) >= coarsest), CELL_SIZES[-1])
    unit = next(u for u in PERIOD_UNITS if u in tier.count_periods)
    if not dataset.temporal_start or not dataset.temporal_end:
        raise GridError("the dataset has no dates to count over")
    start = datetime.fromisoformat(dataset.temporal_start + "T00:00:00+00:00")
    end = datetime.fromisoformat(dataset.temporal_end + "T23:59:59+00:00")
    first, last = period_of(start, unit), period_of(end, unit)
    if plan.time_from is not None and plan.time_from > start:  # whole periods inside only
        first = period_of(plan.time_from, unit)
        if period_bounds(first, unit)[0] < plan.time_from:
            first = period_of(period_bounds(first, unit)[1], unit)
    if plan.time_to is not None and plan.time_to <= end:
        last = period_of(plan.time_to - timedelta(seconds=1), unit)
        if period_bounds(last, unit)[1] > plan.time_to:
            last = period_of(period_bounds(last, unit)[0] - timedelta(seconds=1), unit)
    months = {"month": 1, "quarter": 3, "year": 12}[unit] * (MAX_PERIODS - 1)
    year, index = parse_period(last, unit)
    back = year * 12 + (index - 1) * {"month": 1, "quarter": 3, "year": 12}[unit] - months
    earliest = period_of(datetime(back // 12, back % 12 + 1, 1, tzinfo=UTC), unit)
    if period_bounds(earliest, unit)[0] > period_bounds(first, unit)[0]:
        first = earliest  # at most MAX_PERIODS, the latest: what a partner asks for first
    query = Query.build(metrics=CAMTRAP_METRICS if dataset.profile == PROFILE_CAMTRAP
                        else BIRD_METRICS, taxa=taxa, cell_size=cell, unit=unit,
                        first=first, last=last)
    return query


def release_geometry(session: Session, engine: Engine, row: AgreementRow, *, keys_dir: Path,
                     key: SigningKey, provider: str, now: datetime
                     ) -> tuple[ReleaseGeometry, str]:
    """Where ``row``'s dataset has its cameras (or sites), and where the plan shows them.

    Returns the geometry and a cache key: the plan's digest and the dataset's
    version, which together fix every position the map draws.

    :raises PolicyError: the policy no longer allows these terms.
    :raises NotFound: the dataset is not at this node.
    """
    dataset, plan, _ = plan_for(session, row, keys_dir=keys_dir, now=now)
    camtrap = dataset.profile == PROFILE_CAMTRAP
    table = table_of(Deployment if camtrap else Event)
    ids = table.c.deploymentID if camtrap else table.c.eventID
    lat = table.c.latitude if camtrap else table.c.decimalLatitude
    lon = table.c.longitude if camtrap else table.c.decimalLongitude
    with engine.connect() as conn:
        stored = [(str(i), float(y), float(x)) for i, y, x in conn.execute(
            select(ids, lat, lon).where(table.c.dataset_id == dataset.id, lat.is_not(None),
                                        lon.is_not(None)))]
    geometry = ReleaseGeometry(stored=[(y, x) for _, y, x in stored], area=plan.bbox)
    digest = f"{plan.digest().removeprefix('sha256:')[:32]}-{dataset.id}-v{dataset.version}"
    if plan.aggregate_only:
        return geometry, digest  # counts only: no position leaves
    exporter = exporter_for(engine, dataset, plan, provider=provider, key=key, now=now,
                            cursor_key=cursor_key(keys_dir), recipient=row.requester,
                            agreement=row.id)
    if isinstance(exporter, CamtrapExporter):
        prepared = exporter.prepared
        geometry.released = [(float(d["latitude"]), float(d["longitude"]),
                              prepared.precisions.get(d["deploymentID"]))
                             for d in prepared.deployments
                             if d.get("latitude") is not None and d.get("longitude") is not None]
        shown = {str(d["deploymentID"]) for d in prepared.deployments}
    else:
        events = exporter.released_events()
        geometry.released = [(float(e["decimalLatitude"]), float(e["decimalLongitude"]), None)
                             for e in events
                             if e.get("decimalLatitude") and e.get("decimalLongitude")]
        shown = {str(e.get("eventID")) for e in events}
    geometry.withheld = withheld_of(stored, shown)
    return geometry, digest
