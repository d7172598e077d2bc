"""What of a tally may leave the node: the owner's disclosure rules, applied (DESIGN.md §9).

The owner sets, in a policy tier, ``min_events`` and ``min_cameras``: a cell
with fewer independent events (bird counts: visits) or fewer cameras (survey
sites) than that is released as **suppressed**, never as 0 and never left
out. Sensitive taxa may only be counted on cells at least as coarse as their
sensitivity category allows, and only the period units the owner offers can
be asked for (:meth:`Disclosure.check`).

**Secondary suppression.** Each taxon's cells in one period add up to a
released total, and the cells' effort adds up to the period's effort total.
A total minus the released cells is the sum of the suppressed ones, so one
suppressed cell alone would be recovered by subtraction. Within each such
group, the suppressed cells are therefore made safe before the total is
released: there must be at least two, and at least one of them must hold at
least the threshold (a cell an attacker cannot bound from above). Then every
suppressed cell's value lies in a range of more than one number whatever
else is known. Cells are added smallest first; when no released cell is
left to add, the total is suppressed instead. Counts in a cell whose effort
is suppressed are suppressed too (their camera-days would be), and counts
totals go with the effort total of their period.

Embargoed taxa are suppressed in every period that ends after their embargo
cutoff; taxa withheld outright (sensitivity category 1) are suppressed
everywhere. :class:`Released` is the result: plain rows, exact integers,
and the lines that explain it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from policies.counts import Query, Tally
from policies.errors import PolicyError
from policies.grid import PERIOD_UNITS, period_bounds

__all__ = ["EFFORT_FIELDS", "Disclosure", "QueryRefused", "Released", "derived", "release"]

#: Integer fields of each kind's effort rows and count rows, in release order.
EFFORT_FIELDS: Mapping[str, tuple[str, str]] = {
    "camtrap": ("cameras", "camera_seconds"),
    "birds": ("sites", "surveys"),
}
COUNT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "camtrap": ("events", "cameras_detected", "individuals"),
    "birds": ("visits", "sites_detected", "sum", "max"),
}
#: The field each kind's thresholds are tested on: (count rows, effort rows).
THRESHOLD_FIELDS: Mapping[str, tuple[str, str]] = {
    "camtrap": ("events", "cameras"),
    "birds": ("visits", "sites"),
}
SECONDS_PER_DAY = 86400


class QueryRefused(PolicyError):
    """A counts query the owner's rules or the agreement's terms do not allow (422)."""


@dataclass(frozen=True)
class Disclosure:
    """The owner's disclosure rules for one agreement, and the terms that bound a query.

    :ivar min_cell_degrees: accepted taxon -> the finest cell it may be counted on.
    :ivar embargo: accepted taxon -> records after this instant are not released.
    :ivar withheld: taxa whose records are not released at all.
    :ivar taxa: the taxa the agreement covers (None: every taxon).
    :ivar not_before, not_after: the agreement's time window ``[from, to)``.
    """

    min_events: int = 3
    min_cameras: int = 3
    periods: tuple[str, ...] = PERIOD_UNITS
    min_cell_degrees: Mapping[str, float] = field(default_factory=dict)
    embargo: Mapping[str, datetime] = field(default_factory=dict)
    withheld: frozenset[str] = frozenset()
    taxa: frozenset[str] | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None

    def check(self, query: Query) -> None:
        """Refuse a query these rules do not allow, saying why.

        :raises QueryRefused: a period unit the owner does not offer; a cell
            finer than a taxon allows; a taxon or period outside the agreement.
        """
        if query.unit not in self.periods:
            raise QueryRefused("period.unit", f"the owner offers counts per "
                               f"{', '.join(self.periods)} only, not per {query.unit}")
        size = Decimal(query.cell_size)
        for taxon in query.taxa:
            finest = self.min_cell_degrees.get(taxon)
            if finest is not None and size < Decimal(repr(finest)):
                raise QueryRefused("cell_size", f"{taxon} may be counted on cells of at least "
                                   f"{finest:g}° here, not {query.cell_size}°")
            if self.taxa is not None and taxon not in self.taxa:
                raise QueryRefused("taxa", f"{taxon} is outside the agreement's taxa")
        start, end = query.span()
        if (self.not_before is not None and start < self.not_before) or (
                self.not_after is not None and end > self.not_after):
            window = (f"{_day(self.not_before) or 'the start'} to "
                      f"{_day(self.not_after, end=True) or 'now'}")
            raise QueryRefused("period", f"the agreement covers {window}: ask for whole "
                               f"{query.unit}s inside it")

    def to_json(self) -> dict[str, Any]:
        """The rules as a result records them."""
        return {"min_events": self.min_events, "min_cameras": self.min_cameras,
                "periods": list(self.periods),
                "min_cell_degrees": dict(sorted(self.min_cell_degrees.items())),
                "embargo": {t: c.strftime("%Y-%m-%dT%H:%M:%SZ")
                            for t, c in sorted(self.embargo.items())},
                "withheld": sorted(self.withheld),
                "secondary_suppression": "groups of >= 2 suppressed cells holding one at or "
                                         "above the threshold, else the total is suppressed"}


def _day(moment: datetime | None, *, end: bool = False) -> str | None:
    if moment is None:
        return None
    return (moment - timedelta(days=1) if end else moment).date().isoformat()


@dataclass(frozen=True)
class Released:
    """What a node releases for one query: rows of exact integers, and their explanation.

    Rows are dicts. Effort rows: ``cell``, ``period`` and the kind's
    :data:`EFFORT_FIELDS`; count rows: ``taxon``, ``cell``, ``period``, the
    effort fields and :data:`COUNT_FIELDS`; totals drop ``cell`` and add
    ``cells``. A suppressed row has ``suppressed`` (the reason) and no values.
    """

    kind: str
    query: Mapping[str, Any]
    protocol: Mapping[str, Any]
    effort: tuple[dict[str, Any], ...]
    counts: tuple[dict[str, Any], ...]
    effort_totals: tuple[dict[str, Any], ...]
    totals: tuple[dict[str, Any], ...]
    explanation: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The release as JSON values, each row with its derived figures (days, RAI, occupancy)."""
        return {"kind": self.kind, "query": dict(self.query), "protocol": dict(self.protocol),
                "effort": [derived(r, self.kind) for r in self.effort],
                "counts": [derived(r, self.kind) for r in self.counts],
                "effort_totals": [derived(r, self.kind) for r in self.effort_totals],
                "totals": [derived(r, self.kind) for r in self.totals],
                "explanation": list(self.explanation)}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Released:
        """Read a release back (derived figures are dropped and recomputed on output).

        :raises ValueError: not a release document.
        """
        try:
            kind = str(document["kind"])
            if kind not in EFFORT_FIELDS:
                raise ValueError(f"unknown kind {kind!r}")
            keep = {"taxon", "cell", "period", "cells", "suppressed",
                    *EFFORT_FIELDS[kind], *COUNT_FIELDS[kind]}
            rows = {name: tuple({k: v for k, v in dict(r).items() if k in keep}
                                for r in document[name])
                    for name in ("effort", "counts", "effort_totals", "totals")}
            return cls(kind=kind, query=dict(document["query"]),
                       protocol=dict(document["protocol"]),
                       explanation=tuple(str(x) for x in document.get("explanation", ())),
                       **rows)
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"not a counts release: {e}") from e


def derived(row: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """``row`` with the figures computed from its integers (never summed, never averaged).

    Camera traps: ``camera_days``; ``rai`` (events per 100 camera-days) and
    ``occupancy`` (cameras detected / cameras) where the row has counts.
    """
    out = dict(row)
    if "suppressed" in out or kind != "camtrap":
        if kind == "birds" and "sites_detected" in out and out.get("sites"):
            out["occupancy"] = round(out["sites_detected"] / out["sites"], 4)
        return out
    seconds = out.get("camera_seconds")
    if seconds is not None:
        days = seconds / SECONDS_PER_DAY
        out["camera_days"] = round(days, 3)
        if "events" in out:
            out["rai"] = round(100 * out["events"] / days, 3) if days else None
    if "cameras_detected" in out and out.get("cameras"):
        out["occupancy"] = round(out["cameras_detected"] / out["cameras"], 4)
    return out


def release(tally: Tally, rules: Disclosure) -> Released:
    """Apply ``rules`` to ``tally``: the rows a node may sign and send.

    :raises QueryRefused: as :meth:`Disclosure.check`.
    """
    query = tally.query
    rules.check(query)
    kind = query.kind
    sites_field, effort_field = EFFORT_FIELDS[kind]
    event_field, site_threshold_field = THRESHOLD_FIELDS[kind]
    with_individuals = "individuals" in query.metrics
    lines: list[str] = [f"counted: {query.describe()}"]
    if kind == "camtrap":
        lines += query.protocol.describe()
    else:
        lines.append("bird counts: surveys per cell and period; per taxon, visits (surveys that "
                     "counted it, zero counts kept), sum and maximum of individualCount")

    effort_rows: dict[tuple[str, str], dict[str, Any]] = {}
    for (cell, period), effort in sorted(tally.effort.items()):
        effort_rows[(cell, period)] = {"cell": cell, "period": period,
                                       sites_field: len(effort.sites), effort_field: effort.seconds}

    # Effort: primary suppression on cameras, secondary within each period.
    effort_totals: list[dict[str, Any]] = []
    effort_suppressed: set[tuple[str, str]] = set()
    hidden_effort = 0
    for period in query.periods():
        cells = [(k, r) for k, r in effort_rows.items() if k[1] == period]
        group_e: list[tuple[Any, dict[str, Any]]] = list(cells)
        primary = {k for k, r in group_e if r[site_threshold_field] < rules.min_cameras}
        suppressed, total_ok = _protect(group_e, primary, site_threshold_field,
                                        rules.min_cameras, floor=1, free={effort_field: 1})
        hidden_effort += len(suppressed - primary)
        effort_suppressed |= suppressed
        if not group_e:
            continue
        sites = sum(r[site_threshold_field] for _, r in group_e)
        if not total_ok:
            effort_totals.append({"period": period, "cells": len(group_e),
                                  "suppressed": "protects suppressed cells"})
        elif sites < rules.min_cameras:  # a total is a cell too: the union of its cells
            effort_totals.append({"period": period, "cells": len(group_e),
                                  "suppressed": f"fewer than {rules.min_cameras} "
                                                f"{site_threshold_field} in all"})
        else:
            effort_totals.append({"period": period, "cells": len(group_e),
                                  sites_field: sum(r[sites_field] for _, r in group_e),
                                  effort_field: sum(r[effort_field] for _, r in group_e)})
    released_effort_totals = {t["period"] for t in effort_totals if "suppressed" not in t}

    count_rows: list[dict[str, Any]] = []
    totals: list[dict[str, Any]] = []
    primary_count = secondary_count = 0
    for taxon in query.taxa:
        for period in query.periods():
            blanket = _blanket_reason(rules, taxon, period, query.unit)
            group: list[tuple[Any, dict[str, Any]]] = []
            for (cell, p), effort_row in effort_rows.items():
                if p != period:
                    continue
                count = tally.counts.get((taxon, cell, period))
                row = {"taxon": taxon, "cell": cell, "period": period,
                       sites_field: effort_row[sites_field],
                       effort_field: effort_row[effort_field],
                       event_field: count.events if count else 0}
                if kind == "camtrap":
                    row["cameras_detected"] = len(count.detected) if count else 0
                    if with_individuals:
                        row["individuals"] = len(count.individuals) if count else 0
                else:
                    row["sites_detected"] = len(count.detected) if count else 0
                    row["sum"] = count.total if count else 0
                    row["max"] = count.largest if count else 0
                group.append(((taxon, cell, period), row))
            if not group:
                continue
            if blanket:
                count_rows += [_suppressed(r, blanket) for _, r in group]
                totals.append({"taxon": taxon, "period": period, "cells": len(group),
                               "suppressed": blanket})
                primary_count += len(group)
                continue
            reasons: dict[Any, str] = {}
            no_effort: set[Any] = set()
            for key, row in group:
                if (row["cell"], period) in effort_suppressed:
                    reasons[key] = f"fewer than {rules.min_cameras} {sites_field}, or protects one"
                    no_effort.add(key)
                elif row[event_field] < rules.min_events:
                    reasons[key] = f"fewer than {rules.min_events} {event_field}"
            suppressed, total_ok = _protect(group, set(reasons), event_field, rules.min_events,
                                            free={"sum": 0} if kind == "birds" else None,
                                            unbounded=no_effort)
            primary_count += len(reasons)
            secondary_count += len(suppressed) - len(reasons)
            for key, row in group:
                if key in suppressed:
                    count_rows.append(_suppressed(row, reasons.get(
                        key, "protects a suppressed cell from subtraction")))
                else:
                    count_rows.append(row)
            total_ok = total_ok and period in released_effort_totals
            total: dict[str, Any] = {"taxon": taxon, "period": period, "cells": len(group)}
            events = sum(r[event_field] for _, r in group)
            if not total_ok:
                total["suppressed"] = "protects suppressed cells"
            elif events < rules.min_events:  # a total is a cell too: the union of its cells
                total["suppressed"] = f"fewer than {rules.min_events} {event_field} in all"
            else:
                for name in (sites_field, effort_field, event_field,
                             *COUNT_FIELDS[kind][1:]):
                    if name == "individuals":
                        if with_individuals:
                            total[name] = len(tally.individuals.get((taxon, period), ()))
                    elif name == "max":
                        total[name] = max(r[name] for _, r in group)
                    elif name in ("cameras_detected", "sites_detected") and suppressed:
                        # protecting cells have one detected at least: the total minus the
                        # released cells would tell a small cell's "none detected", so 0 events
                        continue
                    elif name in group[0][1]:
                        total[name] = sum(r[name] for _, r in group)
            totals.append(total)

    lines.append(f"suppressed: cells with fewer than {rules.min_events} {event_field} or fewer "
                 f"than {rules.min_cameras} {sites_field} ({primary_count} count cells, "
                 f"{len(effort_suppressed) - hidden_effort} effort cells)")
    lines.append(f"secondary suppression: {secondary_count} more count cells and "
                 f"{hidden_effort} effort cells suppressed, and "
                 f"{sum(1 for t in totals + effort_totals if 'suppressed' in t)} totals, so "
                 "that no total minus the released cells reveals a suppressed one")
    for taxon, cutoff in sorted(rules.embargo.items()):
        if taxon in query.taxa:
            lines.append(f"embargo: {taxon} records after {cutoff:%Y-%m-%d} are not released;"
                         " periods ending later are suppressed")
    for taxon in sorted(rules.withheld & set(query.taxa)):
        lines.append(f"withheld: {taxon} records are never released (sensitivity category 1);"
                     " every cell is suppressed")
    effort_out = tuple(_suppressed(r, "fewer than "
                                   f"{rules.min_cameras} {sites_field}, or protects one")
                       if k in effort_suppressed else r for k, r in effort_rows.items())
    return Released(kind=kind, query=query.to_json(),
                    protocol=query.protocol.to_json() if kind == "camtrap"
                    else {"version": query.protocol.to_json()["version"], "unit": "survey"},
                    effort=effort_out, counts=tuple(count_rows),
                    effort_totals=tuple(effort_totals), totals=tuple(totals),
                    explanation=tuple(lines))


def _blanket_reason(rules: Disclosure, taxon: str, period: str, unit: str) -> str | None:
    if taxon in rules.withheld:
        return "withheld: sensitivity category 1"
    cutoff = rules.embargo.get(taxon)
    if cutoff is not None and period_bounds(period, unit)[1] > cutoff:
        return f"embargoed after {cutoff:%Y-%m-%d}"
    return None


def _suppressed(row: Mapping[str, Any], reason: str) -> dict[str, Any]:
    keys = {k: row[k] for k in ("taxon", "cell", "period") if k in row}
    return {**keys, "suppressed": reason}


#: A bound no count reaches: a suppressed cell's value has no known upper bound.
_UNBOUNDED = float("inf")


def _protect(group: Iterable[tuple[Any, Mapping[str, Any]]], primary: set[Any], field_name: str,
             threshold: int, *, floor: int = 0,
             free: Mapping[str, int] | None = None,
             unbounded: set[Any] | None = None) -> tuple[set[Any], bool]:
    """Secondary suppression in one group: the cells to suppress, and whether its total may go.

    An attacker who holds the released cells and the total knows the sum of
    the suppressed ones, for ``field_name`` and for each field in ``free``.
    Assume the worst: that they also know which cells were suppressed for
    being small (``field_name`` in ``[floor, threshold - 1]``) and which to
    protect them (at least ``threshold``); ``free`` fields are only known to
    be at least their given floor; ``unbounded`` primary cells (suppressed
    for another reason) are taken as known to be small or not, by their
    value. The group is safe when no suppressed cell's value is pinned down
    by those bounds and the sum (a cell whose own bounds already pin it, such
    as "fewer than 1", is not the total's doing). Released cells are added
    smallest first until it is safe; if none is left, only the primary cells
    are suppressed and the total is withheld instead.
    """
    free = free or {}
    cells = list(group)
    suppressed = set(primary)
    if not suppressed:
        return suppressed, True
    rows = dict(cells)

    def bounds(key: Any, name: str) -> tuple[float, float]:
        if name != field_name:
            return (free[name], _UNBOUNDED)
        if key in (unbounded or ()):
            # suppressed for another reason, but the worst case still knows if it is small
            small = rows[key][field_name] < threshold
            return (floor, threshold - 1) if small else (threshold, _UNBOUNDED)
        return (floor, threshold - 1) if key in primary else (threshold, _UNBOUNDED)

    def safe() -> bool:
        for name in (field_name, *free):
            limits = {k: bounds(k, name) for k in suppressed}
            total = sum(rows[k][name] for k in suppressed)
            low_sum = sum(lo for lo, _ in limits.values())
            # the others' highest sum, kept finite where it is: inf - inf would be nan
            finite_high = sum(hi for _, hi in limits.values() if hi != _UNBOUNDED)
            unbounded_count = sum(1 for _, hi in limits.values() if hi == _UNBOUNDED)
            for lo, hi in limits.values():
                if lo == hi:
                    continue  # known from its own bounds whatever the total says
                if unbounded_count > (hi == _UNBOUNDED):
                    others_high = _UNBOUNDED
                else:
                    others_high = finite_high - (hi if hi != _UNBOUNDED else 0)
                low = max(lo, total - others_high)
                high = min(hi, total - (low_sum - lo))
                if low >= high:
                    return False
        return True

    candidates = sorted((rows[k][field_name], str(k), k) for k, _ in cells
                        if k not in suppressed)
    while not safe():
        if not candidates:
            return set(primary), False
        suppressed.add(candidates.pop(0)[2])
    return suppressed, True
