"""One counting protocol for every node: what each joint-count metric means (DESIGN.md §9).

Two parks can add up their counts only if they computed the same thing.
Every metric is defined here once, every choice in it is a named parameter of
:class:`Protocol` with a default, and every result carries the protocol it
was computed with, so that results computed differently refuse to merge
(:mod:`policies.joint`).

Camera traps (Camtrap DP), per accepted taxon, grid cell and period:

* **effort** -- camera-days: each deployment's time from ``deploymentStart``
  to ``deploymentEnd``, clipped to the period, in UTC, summed over the
  cell's deployments (kept exactly, as whole seconds);
* **independent events** -- records of one taxon at one deployment, in time
  order, start a new event when at least ``independence_minutes`` have
  passed since the last record of that taxon there (``independence_from =
  "last"``, the usual choice) or since the first record of the current event
  (``"first"``). Events are formed from every record the agreement releases,
  whatever the query's period, and an event is counted in the period and
  cell where it starts: so the count of a month does not depend on which
  months were asked for;
* **RAI** -- relative abundance index: independent events per 100 camera-days;
* **naive occupancy** -- cameras (sites: ``locationID``, else the deployment)
  with at least one event, over cameras operating in the cell and period;
* **distinct individuals** -- distinct ``individualID`` per taxon, cell and
  period; only the count leaves the node.

Bird counts (Darwin Core sampling events), per taxon, cell and period: the
**surveys** done (effort), the **visits** (surveys at which the taxon was
counted, zero counts included), and the **sum** and **maximum** of
``individualCount``.

A camera (or survey site) belongs to the cell of its true position; only the
cell's name leaves the node. This module is pure: records come in as values,
exact tallies go out; :mod:`policies.suppression` decides what of a tally
may be released.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from policies.grid import (
    PERIOD_UNITS,
    GridError,
    cell_of,
    period_bounds,
    period_of,
    periods_between,
)
from policies.taxonomy import accepted_name

__all__ = [
    "BIRD_METRICS",
    "CAMTRAP_METRICS",
    "COUNTS_VERSION",
    "BirdRecord",
    "Camera",
    "Detection",
    "Protocol",
    "Query",
    "Survey",
    "Tally",
    "tally_birds",
    "tally_camtrap",
]

#: Version of the counting protocol; bumped whenever a metric changes meaning.
COUNTS_VERSION = 1
#: Camera-trap metrics a query can ask for.
CAMTRAP_METRICS = ("effort", "events", "rai", "occupancy", "individuals")
#: Bird-count metrics a query can ask for.
BIRD_METRICS = ("surveys", "visits", "sum", "max")
#: How an independent event is measured: from the last record, or the first of the event.
INDEPENDENCE_FROM = ("last", "first")
#: Longest independence interval accepted, in minutes (one day).
MAX_INDEPENDENCE_MINUTES = 1440
#: Most taxa one query may name.
MAX_TAXA = 50


@dataclass(frozen=True)
class Protocol:
    """The parameters of the counting protocol; two results merge only if these are equal.

    :ivar independence_minutes: the independence interval between events.
    :ivar independence_from: ``"last"`` (from the last record) or ``"first"``
        (from the first record of the event).
    :ivar observation_level: which Camtrap DP observations count: ``"event"``
        (one per sequence, the usual unit) or ``"media"`` (one per image).
    """

    independence_minutes: int = 30
    independence_from: str = "last"
    observation_level: str = "event"

    def __post_init__(self) -> None:
        """Refuse parameters outside the protocol."""
        if (isinstance(self.independence_minutes, bool)
                or not isinstance(self.independence_minutes, int)
                or not 0 < self.independence_minutes <= MAX_INDEPENDENCE_MINUTES):
            raise GridError(f"independence_minutes must be a whole number of minutes, 1 to "
                            f"{MAX_INDEPENDENCE_MINUTES}")
        if self.independence_from not in INDEPENDENCE_FROM:
            raise GridError("independence_from must be 'last' or 'first'")
        if self.observation_level not in ("event", "media"):
            raise GridError("observation_level must be 'event' or 'media'")

    def to_json(self) -> dict[str, Any]:
        """The protocol as recorded in every result (with :data:`COUNTS_VERSION`)."""
        return {"version": COUNTS_VERSION, "independence_minutes": self.independence_minutes,
                "independence_from": self.independence_from,
                "observation_level": self.observation_level, "effort_unit": "camera-day",
                "time_zone": "UTC"}

    def describe(self) -> list[str]:
        """The protocol in plain lines, for a result's explanation."""
        since = "the last record" if self.independence_from == "last" else \
            "the first record of the event"
        return [f"independent events: {self.observation_level}-level records of one taxon at "
                f"one camera, a new event when at least {self.independence_minutes} minutes "
                f"have passed since {since}; counted where and when the event starts",
                "effort: camera-days from deploymentStart to deploymentEnd, clipped to each "
                "period, in UTC; RAI = independent events per 100 camera-days",
                "occupancy: cameras with at least one event / cameras operating, per cell and "
                "period (naive: detection probability not modelled)"]


@dataclass(frozen=True)
class Query:
    """What a partner asks a node to count: metrics, taxa, a grid cell size and periods.

    ``taxa`` are accepted names (synonyms resolved); ``first`` and ``last``
    are period names of ``unit``, both included.
    """

    metrics: tuple[str, ...]
    taxa: tuple[str, ...]
    cell_size: str
    unit: str
    first: str
    last: str
    protocol: Protocol = field(default_factory=Protocol)

    @classmethod
    def build(cls, *, metrics: Iterable[str], taxa: Iterable[str], cell_size: str, unit: str,
              first: str, last: str, protocol: Protocol | None = None) -> Query:
        """A query with its taxa resolved to accepted names and everything checked.

        :raises GridError: an unknown metric, no taxa or too many, a cell size
            or period not on the common grid, or ``last`` before ``first``.
        """
        names = sorted({accepted_name(t) for t in taxa if accepted_name(t)})
        if not names:
            raise GridError("name at least one taxon to count")
        if len(names) > MAX_TAXA:
            raise GridError(f"at most {MAX_TAXA} taxa per query")
        wanted = tuple(dict.fromkeys(metrics))
        known = CAMTRAP_METRICS + BIRD_METRICS
        unknown = [m for m in wanted if m not in known]
        if unknown or not wanted:
            raise GridError(f"unknown metric {unknown[0]!r}; known: {', '.join(known)}"
                            if unknown else "name at least one metric")
        query = cls(metrics=wanted, taxa=tuple(names), cell_size=cell_size, unit=unit,
                    first=first, last=last, protocol=protocol or Protocol())
        cell_of(0.0, 0.0, cell_size)  # the size is on the grid
        query.periods()  # the periods are
        return query

    @property
    def kind(self) -> str:
        """``camtrap`` or ``birds``: the metrics of one query are of one kind."""
        return "birds" if any(m in BIRD_METRICS for m in self.metrics) else "camtrap"

    def periods(self) -> list[str]:
        """The query's periods, in order."""
        return periods_between(self.first, self.last, self.unit)

    def span(self) -> tuple[datetime, datetime]:
        """``[start, end)`` of the whole query, in UTC."""
        return period_bounds(self.first, self.unit)[0], period_bounds(self.last, self.unit)[1]

    def to_json(self) -> dict[str, Any]:
        """The query as a result records it."""
        return {"metrics": list(self.metrics), "taxa": list(self.taxa),
                "cell_size": self.cell_size, "period": {"unit": self.unit,
                                                        "from": self.first, "to": self.last}}

    def describe(self) -> str:
        """One line: what is counted, on which grid, over which periods."""
        return (f"{', '.join(self.metrics)} for {', '.join(self.taxa)} per {self.cell_size}° "
                f"cell and {self.unit}, {self.first} to {self.last} (UTC)")


# --- camera traps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """One deployment: where (true position, never released) and when it ran (aware UTC)."""

    deployment: str
    site: str
    latitude: float
    longitude: float
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Detection:
    """One released record of an animal: which camera, which taxon, when, which individual."""

    deployment: str
    taxon: str
    start: datetime
    individual: str | None = None


@dataclass
class EffortCell:
    """Exact effort of one cell in one period."""

    sites: set[str] = field(default_factory=set)
    seconds: int = 0  # camera-seconds (camtrap) or surveys (birds)


@dataclass
class CountCell:
    """Exact counts of one taxon in one cell and period."""

    events: int = 0  # independent events (camtrap) or visits (birds)
    detected: set[str] = field(default_factory=set)  # sites with an event
    individuals: set[str] = field(default_factory=set)
    total: int = 0  # sum of individualCount (birds)
    largest: int = 0  # maximum individualCount (birds)


@dataclass
class Tally:
    """Exact, unreleasable counts: keyed by (cell, period) and (taxon, cell, period).

    ``cameras`` is the number of cameras (or survey sites) that ran at all.
    ``individuals`` keeps each taxon's and period's distinct individuals over
    all cells (a total of individuals is not the sum of its cells).
    """

    query: Query
    effort: dict[tuple[str, str], EffortCell] = field(default_factory=dict)
    counts: dict[tuple[str, str, str], CountCell] = field(default_factory=dict)
    individuals: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def cells(self) -> list[str]:
        """Every cell with effort in any period, sorted."""
        return sorted({cell for cell, _ in self.effort})


def tally_camtrap(query: Query, cameras: Iterable[Camera],
                  detections: Iterable[Detection]) -> Tally:
    """Count ``detections`` at ``cameras`` by the protocol of ``query``.

    ``detections`` must come in time order per deployment (any order across
    deployments: ``ORDER BY deploymentID, eventStart``); taxa are resolved to
    their accepted names here. Records of taxa the query does not name, and
    at deployments not in ``cameras``, are ignored.

    :raises ValueError: a detection out of time order at its deployment.
    """
    tally = Tally(query)
    periods = query.periods()
    bounds = [period_bounds(p, query.unit) for p in periods]
    placed: dict[str, tuple[str, str]] = {}  # deployment -> (cell, site)
    for camera in cameras:
        cell = cell_of(camera.latitude, camera.longitude, query.cell_size).name
        placed[camera.deployment] = (cell, camera.site)
        for period, (start, end) in zip(periods, bounds, strict=True):
            seconds = _overlap(camera.start, camera.end, start, end)
            if seconds <= 0:
                continue
            effort = tally.effort.setdefault((cell, period), EffortCell())
            effort.sites.add(camera.site)
            effort.seconds += seconds
    for cell, period in list(tally.effort):
        for taxon in query.taxa:
            tally.counts[(taxon, cell, period)] = CountCell()
    wanted = set(query.taxa)
    first, after = query.span()
    gap = timedelta(minutes=query.protocol.independence_minutes)
    from_last = query.protocol.independence_from == "last"
    names: dict[str, str] = {}
    # (deployment, taxon) -> (time measured from, time of the last record)
    state: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for record in detections:
        where = placed.get(record.deployment)
        if where is None:
            continue
        found = names.get(record.taxon)
        taxon = found if found is not None else names.setdefault(
            record.taxon, accepted_name(record.taxon))
        if taxon not in wanted:
            continue
        key = (record.deployment, taxon)
        previous = state.get(key)
        if previous is not None and record.start < previous[1]:
            raise ValueError(f"detections at {record.deployment} are not in time order")
        new_event = previous is None or record.start - previous[0] >= gap
        if new_event or from_last or previous is None:
            state[key] = (record.start, record.start)
        else:
            state[key] = (previous[0], record.start)
        if not first <= record.start < after:
            continue
        period = period_of(record.start, query.unit)
        count = tally.counts.get((taxon, where[0], period))
        if count is None:  # a record outside its camera's deployment time: no effort there
            count = tally.counts.setdefault((taxon, where[0], period), CountCell())
        if new_event:
            count.events += 1
            count.detected.add(where[1])
        if record.individual:
            count.individuals.add(record.individual)
            tally.individuals.setdefault((taxon, period), set()).add(record.individual)
    return tally


def _overlap(start: datetime, end: datetime, low: datetime, high: datetime) -> int:
    """Whole seconds of ``[start, end)`` inside ``[low, high)``."""
    seconds = (min(end, high) - max(start, low)).total_seconds()
    return max(0, int(seconds))


# --- bird counts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Survey:
    """One Darwin Core sampling event: where (true position) and when it started."""

    event: str
    site: str
    latitude: float
    longitude: float
    start: datetime


@dataclass(frozen=True)
class BirdRecord:
    """One occurrence of a survey: taxon and ``individualCount`` (None if not counted)."""

    event: str
    taxon: str
    count: int | None


def tally_birds(query: Query, surveys: Iterable[Survey], records: Iterable[BirdRecord]) -> Tally:
    """Count bird ``records`` of ``surveys`` (surveys outside the query's periods are ignored).

    A survey with a record of a taxon is one visit for it, whatever its
    count, so zero counts are kept; ``sum`` and ``max`` add and compare
    ``individualCount`` (a record without a count adds a visit only).
    """
    tally = Tally(query)
    first, after = query.span()
    placed: dict[str, tuple[str, str, str]] = {}  # event -> (cell, period, site)
    for survey in surveys:
        if not first <= survey.start < after:
            continue
        cell = cell_of(survey.latitude, survey.longitude, query.cell_size).name
        period = period_of(survey.start, query.unit)
        placed[survey.event] = (cell, period, survey.site)
        effort = tally.effort.setdefault((cell, period), EffortCell())
        effort.sites.add(survey.site)
        effort.seconds += 1
    for cell, period in list(tally.effort):
        for taxon in query.taxa:
            tally.counts[(taxon, cell, period)] = CountCell()
    wanted = set(query.taxa)
    seen: set[tuple[str, str]] = set()  # (event, taxon) already visited
    for record in records:
        where = placed.get(record.event)
        taxon = accepted_name(record.taxon)
        if where is None or taxon not in wanted:
            continue
        count = tally.counts[(taxon, where[0], where[1])]
        if (record.event, taxon) not in seen:
            seen.add((record.event, taxon))
            count.events += 1
            count.detected.add(where[2])
        if record.count is not None and record.count > 0:
            count.total += record.count
            count.largest = max(count.largest, record.count)
    return tally


def periods_offered(units: Sequence[str]) -> tuple[str, ...]:
    """Period units in :data:`PERIOD_UNITS` order (for a policy's ``count_periods``)."""
    return tuple(u for u in PERIOD_UNITS if u in units)


def as_mapping(tally: Tally) -> Mapping[str, Any]:
    """A tally as plain values (for tests and debugging; never released)."""
    return {"effort": {k: (len(v.sites), v.seconds) for k, v in tally.effort.items()},
            "counts": {k: (v.events, len(v.detected), len(v.individuals), v.total, v.largest)
                       for k, v in tally.counts.items()}}
