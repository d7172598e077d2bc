"""Merging released counts from several nodes on the common grid (DESIGN.md §9).

Merging adds; it never averages. Events, camera-days, cameras and
detections are summed per cell, period and taxon (a border cell can hold
cameras of both sides); RAI and occupancy are recomputed from the sums by
:func:`policies.suppression.derived`. A row suppressed at any source is
suppressed in the merge, and so is a total any source suppressed: a joint
figure is never a partial one presented as whole.

Results merge only if they were computed the same way: same protocol (every
parameter), same kind, same cell size and periods. :func:`merge` names the
first difference otherwise. It is associative: merging merged results gives
what merging all sources at once gives.

Distinct individuals are summed too, so an animal recorded on both sides is
counted once per side (:data:`INDIVIDUALS_BASIS`; matching animals across the
border is the match ledger's job).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from policies.suppression import COUNT_FIELDS, EFFORT_FIELDS, Released

__all__ = ["MergeRefused", "merge"]

#: What a merged count of individuals is: each source's distinct animals, added.
INDIVIDUALS_BASIS = "sum over sources of distinct individuals (an animal seen by two sources "
"counts twice until cross-border matches are used)"


class MergeRefused(ValueError):
    """Results computed with different protocols or groupings cannot be added."""


def merge(results: Sequence[Released]) -> Released:
    """One release from several, summed row by row on the common grid.

    :raises MergeRefused: no results, or two computed differently (the
        message names the parameter and both values).
    """
    if not results:
        raise MergeRefused("nothing to merge")
    first = results[0]
    for other in results[1:]:
        _same(first, other)
    kind = first.kind
    effort = _sum_rows([r.effort for r in results], ("cell", "period"), kind)
    counts = _sum_rows([r.counts for r in results], ("taxon", "cell", "period"), kind)
    return Released(
        kind=kind, query=dict(first.query), protocol=dict(first.protocol),
        effort=effort, counts=counts,
        effort_totals=_recount(_sum_rows([r.effort_totals for r in results], ("period",), kind),
                               effort, ("period",)),
        totals=_recount(_sum_rows([r.totals for r in results], ("taxon", "period"), kind),
                        counts, ("taxon", "period")),
        explanation=(f"merged from {len(results)} results: events, effort and detections summed "
                     "per cell, period and taxon; RAI and occupancy recomputed from the sums; "
                     "suppressed at any source stays suppressed",))


def _same(a: Released, b: Released) -> None:
    if a.kind != b.kind:
        raise MergeRefused(f"one result counts {a.kind}, another {b.kind}")
    for name in sorted(set(a.protocol) | set(b.protocol)):
        if a.protocol.get(name) != b.protocol.get(name):
            raise MergeRefused(f"different protocols: {name} is {a.protocol.get(name)!r} in one "
                               f"result and {b.protocol.get(name)!r} in another")
    for name in ("cell_size", "period"):
        if a.query.get(name) != b.query.get(name):
            raise MergeRefused(f"different grouping: {name} is {a.query.get(name)!r} in one "
                               f"result and {b.query.get(name)!r} in another")


def _sum_rows(sources: Sequence[Sequence[Mapping[str, Any]]], keys: tuple[str, ...],
              kind: str) -> tuple[dict[str, Any], ...]:
    """Rows with the same key added up (``max`` compared); suppressed anywhere wins."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    additive = (*EFFORT_FIELDS[kind], *COUNT_FIELDS[kind], "cells")
    for rows in sources:
        for row in rows:
            key = tuple(row.get(k) for k in keys)
            held = merged.get(key)
            if held is None:
                merged[key] = dict(row)
                continue
            if "suppressed" in held:
                continue
            if "suppressed" in row:
                merged[key] = {**{k: row[k] for k in keys}, "suppressed": row["suppressed"]}
                continue
            for name in additive:
                if name == "max":
                    held[name] = max(held.get(name, 0), row.get(name, 0))
                elif name in row and name in held:
                    held[name] += row[name]
                else:  # a figure some source did not release: a partial sum is no joint figure
                    held.pop(name, None)
    return tuple(merged[k] for k in sorted(merged, key=_sort_key))


def _recount(totals: Sequence[dict[str, Any]], rows: Sequence[Mapping[str, Any]],
             keys: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """Totals with ``cells`` counted on the merged grid: a border cell of two sources is one."""
    cells = Counter(tuple(r[k] for k in keys) for r in rows)
    return tuple({**t, "cells": cells[tuple(t[k] for k in keys)]} if "cells" in t else t
                 for t in totals)


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if k is None else str(k) for k in key)
