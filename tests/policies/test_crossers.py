"""Counting border crossers once: a node's crossers section and the joint count of individuals.

The section is computed from a real tally (cameras and detections by hand),
the joint count from hand-written sections, and a property checks that with
every crosser linked the total is the size of the union of what both sides saw.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from policies.counts import Camera, Detection, Query, tally_camtrap
from policies.crossers import crossers_section, joint_individuals
from policies.suppression import Disclosure, release

TIGER = "Panthera tigris altaica"
A, B = "ru-lotl", "cn-ntlnp"


def _query() -> Query:
    return Query.build(metrics=["effort", "events", "individuals"], taxa=[TIGER],
                       cell_size="0.1", unit="month", first="2024-01", last="2024-01")


def _tally() -> Any:
    """Camera c1 (N43.1E131.2) saw T1 four times, c2 (N43.3E131.2) saw T2 four times."""
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    cameras = [Camera("c1", "s1", 43.15, 131.25, start, end),
               Camera("c2", "s2", 43.35, 131.25, start, end)]
    detections = [Detection(camera, TIGER, start + timedelta(days=day), animal)
                  for camera, animal in (("c1", "T1"), ("c2", "T2")) for day in (1, 3, 5, 7)]
    return tally_camtrap(_query(), cameras, detections)


def test_the_section_names_links_and_released_cells_never_animals() -> None:
    tally = _tally()
    released = release(tally, Disclosure(min_events=1, min_cameras=1))
    [row] = crossers_section(tally, released, {"T1": ["link-1"]})
    assert row == {"taxon": TIGER, "period": "2024-01", "individuals": 2,
                   "links": ["link-1"], "cells": ["N43.1E131.2@0.1"]}
    assert "T1" not in repr(row) and "T2" not in repr(row)
    [unlinked] = crossers_section(tally, released, {})
    assert unlinked["links"] == [] and unlinked["cells"] == []


def test_a_suppressed_total_releases_no_links() -> None:
    tally = _tally()
    released = release(tally, Disclosure(min_events=20, min_cameras=1))
    [row] = crossers_section(tally, released, {"T1": ["link-1"]})
    assert set(row) == {"taxon", "period", "suppressed"}


def _row(n: int, links: list[str], period: str = "2024") -> dict[str, Any]:
    return {"taxon": TIGER, "period": period, "individuals": n, "links": links, "cells": []}


def test_the_joint_total_subtracts_links_seen_on_both_sides_only() -> None:
    sections = {A: [_row(5, ["L1", "L2", "LX"])], B: [_row(4, ["L1", "L3"])]}
    confirmed = {k: frozenset({A, B}) for k in ("L1", "L2", "L3")}
    result = joint_individuals(sections, confirmed)
    [row] = result.rows
    assert (row[A], row[B], row["both"], row["total"]) == (5, 4, 1, 8)
    assert (row[f"only {A}"], row[f"only {B}"]) == (4, 3)
    assert row["links"] == ["L1"]
    [unused] = result.unused
    assert unused.startswith("LX") and "not a confirmed link" in unused


def test_a_link_between_other_members_is_not_used() -> None:
    sections = {A: [_row(3, ["L1"])], B: [_row(3, ["L1"])]}
    result = joint_individuals(sections, {"L1": frozenset({A, "mn-other"})})
    assert result.rows[0]["both"] == 0 and result.rows[0]["total"] == 6
    assert len(result.unused) == 1


def test_a_figure_suppressed_or_missing_at_one_source_suppresses_the_joint_row() -> None:
    hidden = {"taxon": TIGER, "period": "2024", "suppressed": "fewer than 3 events in all"}
    result = joint_individuals({A: [_row(3, [])], B: [hidden]}, {})
    assert result.rows[0]["suppressed"] == f"{B}: fewer than 3 events in all"
    result = joint_individuals({A: [_row(3, [])], B: [_row(2, [], period="2023")]}, {})
    assert [r.get("suppressed") for r in result.rows] == [f"{A}: no figure", f"{B}: no figure"]


@given(st.sets(st.integers(0, 60)), st.sets(st.integers(0, 60)))
def test_with_every_crosser_linked_the_total_is_the_union(seen_a: set[int],
                                                          seen_b: set[int]) -> None:
    crossers = seen_a & seen_b
    sections = {A: [_row(len(seen_a), [f"L{i}" for i in sorted(seen_a) if i in crossers])],
                B: [_row(len(seen_b), [f"L{i}" for i in sorted(seen_b) if i in crossers])]}
    every_link = {f"L{i}": frozenset({A, B}) for i in range(61)}
    [row] = joint_individuals(sections, every_link).rows
    assert row["total"] == len(seen_a | seen_b)
    assert row["both"] == len(crossers)
    assert row[f"only {A}"] == len(seen_a - seen_b)
