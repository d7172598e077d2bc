"""Counting animals once across a border: per-node link sections and their joint count.

A node's counts result can carry a **crossers section** (:func:`crossers_section`):
per taxon and period, its distinct individuals (the released total, so the
same thresholds hold), the ids of the confirmed cross-border links whose
animal on this side was seen then, and the released cells in which such an
animal was seen. Link ids are shared by the two linked nodes only; no
individual id ever leaves.

:func:`joint_individuals` combines several nodes' sections with the caller's
own ledger: an animal is seen on both sides in a period when its link is
listed by both nodes, so the distinct total is |A| + |B| - both. A link
listed by only one node (the animal was not seen on the other side in that
period) joins nothing; a link the caller does not hold as confirmed between
those two nodes is not used, and is named.

Pure: no IO, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.counts import Tally
from policies.suppression import Released

__all__ = ["JointIndividuals", "crossers_section", "joint_individuals"]


def crossers_section(tally: Tally, released: Released,
                     linked: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """The crossers section of one node's result.

    :param tally: the exact counts the release was made from.
    :param released: what the node releases (its thresholds already applied).
    :param linked: this node's individual id -> its confirmed link ids, for
        the links the section may name (those with the recipient).
    """
    open_cells = {(r["taxon"], r["cell"], r["period"]) for r in released.counts
                  if "suppressed" not in r}
    rows: list[dict[str, Any]] = []
    for total in released.totals:
        taxon, period = total["taxon"], total["period"]
        if "suppressed" in total or "individuals" not in total:
            rows.append({"taxon": taxon, "period": period,
                         "suppressed": total.get("suppressed", "individuals not counted")})
            continue
        seen = tally.individuals.get((taxon, period), set())
        mine = {i for i in seen if i in linked}
        cells = sorted(cell for (t, cell, p), count in tally.counts.items()
                       if t == taxon and p == period and count.individuals & mine
                       and (t, cell, p) in open_cells)
        rows.append({"taxon": taxon, "period": period, "individuals": total["individuals"],
                     "links": sorted(link for i in mine for link in linked[i]),
                     "cells": cells})
    return rows


@dataclass
class JointIndividuals:
    """The joint count of individuals: one row per taxon and period, and what was not used."""

    sources: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)  # why a listed link was not used


def joint_individuals(sections: Mapping[str, Sequence[Mapping[str, Any]]],
                      confirmed: Mapping[str, frozenset[str]]) -> JointIndividuals:
    """Distinct individuals across ``sections`` (source name -> its crossers section).

    :param confirmed: link id -> the two sources it joins, for the links the
        caller holds as confirmed (both signatures).

    Each row: ``taxon``, ``period``, per source ``<source>`` (its distinct
    individuals) and ``only <source>`` (those not matched to another source
    in that period), ``both`` (animals seen by two sources), ``total``
    (distinct: the sum minus ``both``), ``links`` (the links used) and
    ``cells`` (released cells where a linked animal was seen, any source).
    A row is ``suppressed`` if any source suppressed it.
    """
    names = tuple(sections)
    result = JointIndividuals(names)
    by_key: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for name, rows in sections.items():
        for row in rows:
            by_key.setdefault((row["taxon"], row["period"]), {})[name] = row
    for (taxon, period), per_source in sorted(by_key.items()):
        out: dict[str, Any] = {"taxon": taxon, "period": period}
        missing = [n for n in names if n not in per_source]
        hidden = [f"{n}: {r['suppressed']}" for n, r in per_source.items() if "suppressed" in r]
        if missing or hidden:
            out["suppressed"] = "; ".join(hidden + [f"{n}: no figure" for n in missing])
            result.rows.append(out)
            continue
        listed: dict[str, set[str]] = {}
        for name, row in per_source.items():
            for link in row["links"]:
                listed.setdefault(link, set()).add(name)
        used: list[str] = []
        matched = dict.fromkeys(names, 0)
        for link, holders in sorted(listed.items()):
            pair = confirmed.get(link)
            if pair is None or not pair <= set(names):
                result.unused.append(f"{link} ({taxon}, {period}): listed by "
                                     f"{', '.join(sorted(holders))}, not a confirmed link "
                                     "between these sources in this node's ledger")
                continue
            if pair <= holders:
                used.append(link)
                for name in pair:
                    matched[name] += 1
        for name in names:
            out[name] = int(per_source[name]["individuals"])
            out[f"only {name}"] = out[name] - matched[name]
        out["both"] = len(used)
        out["total"] = sum(out[n] for n in names) - len(used)
        out["links"] = used
        out["cells"] = sorted({c for r in per_source.values() for c in r["cells"]})
        result.rows.append(out)
    return result
