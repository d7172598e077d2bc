"""What of a tally may be released: thresholds, secondary suppression, agreement terms, merging."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.counts import (
    Camera,
    CountCell,
    Detection,
    EffortCell,
    Protocol,
    Query,
    Tally,
    tally_camtrap,
)
from policies.joint import MergeRefused, merge
from policies.suppression import Disclosure, QueryRefused, Released, derived, release

DAY = 86400
TIGER = "Panthera tigris altaica"
LEOPARD = "Panthera pardus orientalis"
JAN = "2021-01"
CELLS = tuple(f"N43.{i}E131.2@0.1" for i in range(1, 10))
Row = dict[str, Any]


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An instant of 2021 in UTC."""
    return datetime(2021, month, day, hour, minute, tzinfo=UTC)


def make_query(*, taxa: Iterable[str] = (TIGER,), first: str = JAN, last: str = JAN,
               unit: str = "month", cell_size: str = "0.1",
               protocol: Protocol | None = None) -> Query:
    """A camera-trap query of effort, events, occupancy and individuals."""
    return Query.build(metrics=["effort", "events", "occupancy", "individuals"], taxa=taxa,
                       cell_size=cell_size, unit=unit, first=first, last=last,
                       protocol=protocol)


def make_tally(query: Query, effort: Mapping[tuple[str, str], tuple[int, int]],
               events: Mapping[tuple[str, str, str], int]) -> Tally:
    """An exact tally: (cell, period) -> (cameras, camera-seconds); (taxon, cell, period) -> events.

    Each cell's events are spread over its cameras, one detected camera per event at most.
    """
    tally = Tally(query)
    for (cell, period), (cameras, seconds) in effort.items():
        tally.effort[(cell, period)] = EffortCell({f"{cell}/{i}" for i in range(cameras)},
                                                  seconds)
        for taxon in query.taxa:
            n = events.get((taxon, cell, period), 0)
            tally.counts[(taxon, cell, period)] = CountCell(
                events=n, detected={f"{cell}/{i}" for i in range(min(n, cameras))})
    return tally


def one_period(query: Query, cells: Mapping[str, tuple[int, int]], taxon: str = TIGER,
               period: str = JAN) -> Tally:
    """A tally of one taxon in one period: cell -> (cameras, events), a day per camera."""
    return make_tally(query, {(c, period): (n, n * DAY) for c, (n, _) in cells.items()},
                      {(taxon, c, period): e for c, (_, e) in cells.items()})


def by_cell(rows: Iterable[Row]) -> dict[str, Row]:
    """Rows keyed by their cell."""
    return {r["cell"]: r for r in rows}


# --- primary suppression --------------------------------------------------------------------


def test_a_small_cell_is_suppressed_never_shown_as_zero_and_another_protects_it() -> None:
    tally = one_period(make_query(), {CELLS[0]: (3, 2), CELLS[1]: (3, 10), CELLS[2]: (3, 12)})
    released = release(tally, Disclosure(min_events=3, min_cameras=1))
    rows = by_cell(released.counts)
    assert rows[CELLS[0]] == {"taxon": TIGER, "cell": CELLS[0], "period": JAN,
                              "suppressed": "fewer than 3 events"}
    # 2 alone would be the total minus the released cells: the smallest other cell goes too
    assert rows[CELLS[1]] == {"taxon": TIGER, "cell": CELLS[1], "period": JAN,
                              "suppressed": "protects a suppressed cell from subtraction"}
    assert rows[CELLS[2]]["events"] == 12
    (total,) = released.totals
    assert total["events"] == 24 and total["cells"] == 3
    assert "cameras_detected" not in total  # it would tell the small cell's cameras detected
    assert [r["cameras"] for r in released.effort] == [3, 3, 3]


def test_zero_event_cells_are_suppressed_not_dropped() -> None:
    query = make_query(taxa=[TIGER, LEOPARD], last="2021-02")
    effort = {(CELLS[0], JAN): (3, 3 * DAY), (CELLS[1], JAN): (4, 4 * DAY),
              (CELLS[0], "2021-02"): (3, 3 * DAY), (CELLS[2], "2021-02"): (5, 5 * DAY)}
    tally = make_tally(query, effort, {(TIGER, CELLS[0], JAN): 7, (TIGER, CELLS[2], "2021-02"): 9})
    released = release(tally, Disclosure(min_events=3, min_cameras=3))
    keys = [(r["taxon"], r["cell"], r["period"]) for r in released.counts]
    assert sorted(keys) == sorted((t, c, p) for t in (TIGER, LEOPARD) for c, p in effort)
    assert all(r.get("events") != 0 for r in released.counts)
    leopard = [r for r in released.counts if r["taxon"] == LEOPARD]
    assert {r["suppressed"] for r in leopard} == {"fewer than 3 events"}
    # each of the leopard's totals would be 0 and pin its cells at 0
    assert [t["suppressed"] for t in released.totals if t["taxon"] == LEOPARD] == [
        "protects suppressed cells"] * 2


def test_zero_cells_at_min_events_one_need_no_protection() -> None:
    tally = one_period(make_query(), {CELLS[0]: (1, 0), CELLS[1]: (1, 4), CELLS[2]: (2, 5)})
    released = release(tally, Disclosure(min_events=1, min_cameras=1))
    rows = by_cell(released.counts)
    assert rows[CELLS[0]]["suppressed"] == "fewer than 1 events"
    assert rows[CELLS[1]]["events"] == 4 and rows[CELLS[2]]["events"] == 5
    assert released.totals[0]["events"] == 9  # "fewer than 1" is 0 whatever the total says


def test_few_cameras_suppress_effort_and_counts_and_protect_with_another_cell() -> None:
    cells = {CELLS[0]: (2, 10), CELLS[1]: (5, 10), CELLS[2]: (8, 10)}
    released = release(one_period(make_query(), cells), Disclosure(min_events=3, min_cameras=3))
    effort = by_cell(released.effort)
    assert effort[CELLS[0]] == {"cell": CELLS[0], "period": JAN,
                                "suppressed": "fewer than 3 cameras, or protects one"}
    assert "cameras" not in effort[CELLS[1]]  # 2 cameras would be the total minus the rest
    assert effort[CELLS[2]] == {"cell": CELLS[2], "period": JAN, "cameras": 8,
                                "camera_seconds": 8 * DAY}
    assert released.effort_totals == ({"period": JAN, "cells": 3, "cameras": 15,
                                       "camera_seconds": 15 * DAY},)
    counts = by_cell(released.counts)
    # events at cameras whose camera-days are hidden are hidden too, whatever their number
    assert counts[CELLS[0]]["suppressed"] == counts[CELLS[1]]["suppressed"] == (
        "fewer than 3 cameras, or protects one")
    assert counts[CELLS[2]]["events"] == 10
    assert released.totals[0]["events"] == 30


def test_a_group_of_small_cells_that_pins_them_suppresses_the_total() -> None:
    tally = one_period(make_query(), {CELLS[0]: (3, 2), CELLS[1]: (3, 2)})
    released = release(tally, Disclosure(min_events=3, min_cameras=1))
    assert all("suppressed" in r for r in released.counts)
    # 4 = 2 + 2 with both at most 2: the total would give both away
    assert released.totals == ({"taxon": TIGER, "period": JAN, "cells": 2,
                                "suppressed": "protects suppressed cells"},)


def test_a_group_of_small_cells_that_does_not_pin_them_keeps_its_total() -> None:
    tally = one_period(make_query(), {CELLS[0]: (3, 1), CELLS[1]: (3, 2), CELLS[2]: (3, 0)})
    released = release(tally, Disclosure(min_events=3, min_cameras=1))
    assert all("suppressed" in r for r in released.counts)
    # 3 over three cells of 0 to 2 each: every cell could still be 0, 1 or 2
    assert released.totals[0]["events"] == 3


def test_one_small_effort_cell_is_not_alone() -> None:
    cells = {CELLS[0]: (1, 5), CELLS[1]: (4, 5), CELLS[2]: (9, 5), CELLS[3]: (7, 5)}
    released = release(one_period(make_query(), cells), Disclosure(min_events=1, min_cameras=3))
    suppressed = {r["cell"] for r in released.effort if "suppressed" in r}
    assert suppressed == {CELLS[0], CELLS[1]}  # the smallest other cell protects it
    assert released.effort_totals[0]["cameras"] == 21


def test_derived_figures_come_from_the_released_integers() -> None:
    row = {"taxon": TIGER, "cell": CELLS[0], "period": JAN, "cameras": 4,
           "camera_seconds": 50 * DAY, "events": 5, "cameras_detected": 3}
    assert derived(row, "camtrap") == {**row, "camera_days": 50.0, "rai": 10.0,
                                       "occupancy": 0.75}
    assert derived({**row, "camera_seconds": 0}, "camtrap")["rai"] is None
    hidden = {"taxon": TIGER, "cell": CELLS[0], "period": JAN, "suppressed": "x"}
    assert derived(hidden, "camtrap") == hidden


# --- what the agreement allows --------------------------------------------------------------


@pytest.mark.parametrize(("rules", "query", "field", "message"), [
    (Disclosure(periods=("quarter", "year")), make_query(), "period.unit",
     "per quarter, year only, not per month"),
    (Disclosure(min_cell_degrees={TIGER: 0.5}), make_query(cell_size="0.25"), "cell_size",
     "at least 0.5°"),
    (Disclosure(min_cell_degrees={TIGER: 0.25}), make_query(cell_size="0.1"), "cell_size",
     "at least 0.25°"),
    (Disclosure(taxa=frozenset({LEOPARD})), make_query(taxa=[TIGER, LEOPARD]), "taxa",
     "outside the agreement's taxa"),
    (Disclosure(not_before=at(1, 1), not_after=at(7, 1)),
     make_query(first="2020-12", last="2021-01"), "period", "2021-01-01 to 2021-06-30"),
    (Disclosure(not_before=at(1, 1), not_after=at(7, 1)),
     make_query(first="2021-06", last="2021-07"), "period", "whole months inside it"),
    (Disclosure(not_before=at(1, 15)), make_query(), "period", "2021-01-15 to now"),
])
def test_queries_outside_the_rules_are_refused(rules: Disclosure, query: Query, field: str,
                                               message: str) -> None:
    with pytest.raises(QueryRefused, match=message) as refused:
        rules.check(query)
    assert refused.value.field == field and refused.value.status == 422
    with pytest.raises(QueryRefused):
        release(Tally(query), rules)


@pytest.mark.parametrize(("rules", "query"), [
    (Disclosure(periods=("quarter",)), make_query(unit="quarter", first="2021-Q1",
                                                  last="2021-Q2")),
    (Disclosure(min_cell_degrees={TIGER: 0.5}), make_query(cell_size="0.5")),
    (Disclosure(min_cell_degrees={TIGER: 0.5}), make_query(cell_size="1")),
    (Disclosure(min_cell_degrees={LEOPARD: 1.0}), make_query(cell_size="0.1")),
    (Disclosure(taxa=frozenset({TIGER})), make_query()),
    (Disclosure(not_before=at(1, 1), not_after=at(7, 1)),
     make_query(first="2021-01", last="2021-06")),
])
def test_queries_inside_the_rules_are_answered(rules: Disclosure, query: Query) -> None:
    rules.check(query)  # does not raise


def test_an_embargo_suppresses_every_period_ending_after_it() -> None:
    query = make_query(taxa=[TIGER, LEOPARD], last="2021-03")
    effort = {(CELLS[0], p): (5, 5 * DAY) for p in query.periods()}
    events = {(t, CELLS[0], p): 9 for t in (TIGER, LEOPARD) for p in query.periods()}
    rules = Disclosure(min_events=3, min_cameras=3, embargo={TIGER: at(2, 15)})
    released = release(make_tally(query, effort, events), rules)
    tiger = {r["period"]: r for r in released.counts if r["taxon"] == TIGER}
    assert tiger["2021-01"]["events"] == 9  # January ends before 15 February
    for period in ("2021-02", "2021-03"):
        assert tiger[period] == {"taxon": TIGER, "cell": CELLS[0], "period": period,
                                 "suppressed": "embargoed after 2021-02-15"}
    tiger_totals = {t["period"]: t for t in released.totals if t["taxon"] == TIGER}
    assert tiger_totals["2021-02"]["suppressed"] == "embargoed after 2021-02-15"
    assert tiger_totals["2021-01"]["events"] == 9
    assert all(r["events"] == 9 for r in released.counts if r["taxon"] == LEOPARD)
    assert all("suppressed" not in r for r in released.effort)
    assert any(line.startswith(f"embargo: {TIGER}") for line in released.explanation)


def test_withheld_taxa_are_suppressed_everywhere() -> None:
    query = make_query(taxa=[TIGER, LEOPARD], last="2021-02")
    effort = {(c, p): (5, 5 * DAY) for c in CELLS[:3] for p in query.periods()}
    events = {(t, c, p): 20 for t in (TIGER, LEOPARD) for c, p in effort}
    released = release(make_tally(query, effort, events),
                       Disclosure(withheld=frozenset({LEOPARD})))
    leopard = [r for r in released.counts + released.totals if r["taxon"] == LEOPARD]
    assert len(leopard) == 6 + 2
    assert {r["suppressed"] for r in leopard} == {"withheld: sensitivity category 1"}
    assert all("events" not in r for r in leopard)
    assert sum(r["events"] for r in released.counts if r["taxon"] == TIGER) == 120


# --- merging --------------------------------------------------------------------------------


def test_merge_adds_rows_and_keeps_suppression() -> None:
    query = make_query()
    a = release(one_period(query, {CELLS[0]: (3, 5), CELLS[1]: (4, 6)}), Disclosure())
    b = release(one_period(query, {CELLS[0]: (2, 7), CELLS[2]: (5, 4)}),
                Disclosure(min_cameras=1))
    merged = merge([a, b])
    rows = by_cell(merged.counts)
    assert (rows[CELLS[0]]["events"], rows[CELLS[0]]["cameras"]) == (12, 5)
    assert rows[CELLS[1]]["events"] == 6 and rows[CELLS[2]]["events"] == 4
    assert derived(rows[CELLS[0]], "camtrap")["rai"] == round(100 * 12 / 5, 3)
    c = release(one_period(query, {CELLS[1]: (3, 1)}), Disclosure())
    merged = merge([a, b, c])
    assert by_cell(merged.counts)[CELLS[1]] == {"taxon": TIGER, "cell": CELLS[1],
                                                "period": JAN, "suppressed": "fewer than 3 events"}
    assert "suppressed" in merged.totals[0]  # c's total is suppressed: no partial joint total


def test_merge_drops_a_figure_one_source_did_not_release() -> None:
    query = make_query()
    whole = release(one_period(query, {CELLS[0]: (3, 5), CELLS[1]: (3, 6)}), Disclosure())
    partial = release(one_period(query, {CELLS[2]: (3, 1), CELLS[3]: (3, 4),
                                         CELLS[4]: (3, 9)}), Disclosure())
    assert "cameras_detected" in whole.totals[0] and "cameras_detected" not in partial.totals[0]
    (total,) = merge([whole, partial]).totals
    assert total["events"] == 25 and "cameras_detected" not in total


def test_merge_refuses_nothing_and_different_groupings() -> None:
    with pytest.raises(MergeRefused, match="nothing to merge"):
        merge([])
    a = release(one_period(make_query(), {CELLS[0]: (3, 5)}), Disclosure())
    b = release(one_period(make_query(cell_size="0.5"), {"N43E131@0.5": (3, 5)}), Disclosure())
    with pytest.raises(MergeRefused, match=r"cell_size is '0\.1' in one result and '0\.5'"):
        merge([a, b])
    c = release(one_period(make_query(last="2021-02"), {CELLS[0]: (3, 5)}), Disclosure())
    with pytest.raises(MergeRefused, match="different grouping: period"):
        merge([a, c])


@given(st.integers(1, 1440), st.integers(1, 1440))
@settings(max_examples=50, deadline=None)
def test_merge_refuses_different_independence_intervals(one: int, other: int) -> None:
    a = release(one_period(make_query(protocol=Protocol(one)), {CELLS[0]: (3, 5)}), Disclosure())
    b = release(one_period(make_query(protocol=Protocol(other)), {CELLS[0]: (3, 5)}),
                Disclosure())
    if one == other:
        assert merge([a, b]).counts[0]["events"] == 10
        return
    with pytest.raises(MergeRefused, match=f"independence_minutes is {one} in one result and "
                                           f"{other} in another"):
        merge([a, b])
    with pytest.raises(MergeRefused, match="independence_minutes"):
        merge([b, a])


def test_merge_refuses_a_different_independence_origin() -> None:
    a = release(one_period(make_query(), {CELLS[0]: (3, 5)}), Disclosure())
    c = release(one_period(make_query(protocol=Protocol(independence_from="first")),
                           {CELLS[0]: (3, 5)}), Disclosure())
    with pytest.raises(MergeRefused, match="independence_from"):
        merge([a, c])


# --- properties -----------------------------------------------------------------------------

PERIOD_CHOICES = ((JAN, JAN), (JAN, "2021-02"))
TAXA_CHOICES = ((TIGER,), (TIGER, LEOPARD))


@st.composite
def tallies(draw: st.DrawFn, query: Query | None = None) -> Tally:
    """A random exact tally: up to six cells per period, small and large values mixed."""
    if query is None:
        first, last = draw(st.sampled_from(PERIOD_CHOICES))
        query = make_query(taxa=draw(st.sampled_from(TAXA_CHOICES)), first=first, last=last)
    effort: dict[tuple[str, str], tuple[int, int]] = {}
    cells = draw(st.lists(st.sampled_from(CELLS), min_size=1, max_size=6, unique=True))
    for period in query.periods():
        for cell in cells:
            if draw(st.integers(0, 5)):  # now and then a cell has no effort in a period
                seconds = draw(st.one_of(st.integers(1, 4), st.integers(1, 30 * DAY)))
                effort[(cell, period)] = (draw(st.integers(1, 6)), seconds)
    events = {(t, c, p): draw(st.one_of(st.integers(0, 4), st.integers(0, 40)))
              for t in query.taxa for c, p in effort}
    return make_tally(query, effort, events)


rules_strategy = st.builds(Disclosure, min_events=st.integers(1, 4),
                           min_cameras=st.integers(1, 4))


@given(tallies(), rules_strategy)
@settings(max_examples=200, deadline=None)
def test_no_released_row_is_below_the_thresholds(tally: Tally, rules: Disclosure) -> None:
    released = release(tally, rules)
    for row in released.counts:
        exact = tally.counts[(row["taxon"], row["cell"], row["period"])]
        if "suppressed" in row:
            assert set(row) == {"taxon", "cell", "period", "suppressed"}
            continue
        assert row["events"] >= rules.min_events and row["cameras"] >= rules.min_cameras
        assert (row["events"], row["cameras_detected"]) == (exact.events, len(exact.detected))
    for total in released.totals:  # a total is the union of its cells: the same thresholds
        if "suppressed" not in total:
            assert total["events"] >= rules.min_events and total["cameras"] >= rules.min_cameras
    for row in released.effort:
        if "suppressed" in row:
            assert set(row) == {"cell", "period", "suppressed"}
            continue
        assert row["cameras"] >= rules.min_cameras
        exact_effort = tally.effort[(row["cell"], row["period"])]
        assert (row["cameras"], row["camera_seconds"]) == (len(exact_effort.sites),
                                                           exact_effort.seconds)


def _feasible(total: int, bounds: Mapping[Any, tuple[float, float]]
              ) -> dict[Any, tuple[float, float]]:
    """Each cell's interval given the others' bounds and that all of them add up to ``total``."""
    out = {}
    for key, (lo, hi) in bounds.items():
        others = [b for k, b in bounds.items() if k != key]  # summed apart: no inf - inf
        out[key] = (max(lo, total - sum(h for _, h in others)),
                    min(hi, total - sum(low for low, _ in others)))
    return out


def _assert_unrecoverable(total: int, released: int, truth: Mapping[Any, int],
                          bounds: Mapping[Any, tuple[float, float]]) -> None:
    """No cell in ``truth`` is pinned by the total unless its own bounds already pin it."""
    for key, (low, high) in _feasible(total - released, bounds).items():
        assert low <= truth[key] <= high  # the attacker's model is sound
        if bounds[key][0] == bounds[key][1]:
            continue
        assert math.floor(high) - math.ceil(low) >= 1, (key, truth, bounds)


def _threshold_bounds(value: int, threshold: int, floor: int) -> tuple[float, float]:
    return (floor, threshold - 1) if value < threshold else (threshold, math.inf)


@given(tallies(), rules_strategy)
@settings(max_examples=200, deadline=None)
def test_no_suppressed_cell_is_recoverable_from_a_total(tally: Tally, rules: Disclosure) -> None:
    released = release(tally, rules)
    for total in released.totals:
        if "suppressed" in total:
            continue
        group = [r for r in released.counts
                 if (r["taxon"], r["period"]) == (total["taxon"], total["period"])]
        hidden = {r["cell"]: tally.counts[(r["taxon"], r["cell"], r["period"])].events
                  for r in group if "suppressed" in r}
        _assert_unrecoverable(total["events"], sum(r.get("events", 0) for r in group), hidden,
                              {c: _threshold_bounds(v, rules.min_events, 0)
                               for c, v in hidden.items()})
    for effort_total in released.effort_totals:
        if "suppressed" in effort_total:
            continue
        rows = [r for r in released.effort if r["period"] == effort_total["period"]]
        keys = [(r["cell"], r["period"]) for r in rows if "suppressed" in r]
        cameras = {k: len(tally.effort[k].sites) for k in keys}
        _assert_unrecoverable(effort_total["cameras"], sum(r.get("cameras", 0) for r in rows),
                              cameras, {k: _threshold_bounds(v, rules.min_cameras, 1)
                                        for k, v in cameras.items()})
        seconds = {k: tally.effort[k].seconds for k in keys}
        _assert_unrecoverable(effort_total["camera_seconds"],
                              sum(r.get("camera_seconds", 0) for r in rows), seconds,
                              {k: (1, math.inf) for k in keys})


def _rows(released: Released) -> tuple[tuple[Row, ...], ...]:
    return released.effort, released.counts, released.effort_totals, released.totals


@st.composite
def three_releases(draw: st.DrawFn) -> tuple[Released, Released, Released]:
    """Three sources' releases of one query, each under its own rules."""
    first, last = draw(st.sampled_from(PERIOD_CHOICES))
    query = make_query(taxa=draw(st.sampled_from(TAXA_CHOICES)), first=first, last=last)
    a, b, c = (release(draw(tallies(query)), draw(rules_strategy)) for _ in range(3))
    return a, b, c


@given(three_releases())
@settings(max_examples=200, deadline=None)
def test_merging_is_associative(sources: tuple[Released, Released, Released]) -> None:
    a, b, c = sources
    at_once = _rows(merge([a, b, c]))
    assert _rows(merge([merge([a, b]), c])) == at_once
    assert _rows(merge([a, merge([b, c])])) == at_once
    for merged_rows, rows in zip(_rows(merge([a])), _rows(a), strict=True):
        assert sorted(map(repr, merged_rows)) == sorted(map(repr, rows))


@dataclass(frozen=True)
class Source:
    """One node's raw records."""

    cameras: tuple[Camera, ...]
    detections: tuple[Detection, ...]


# Positions shared by every source, so that border cells hold cameras of several.
POSITIONS = ((43.15, 131.25), (43.25, 131.25), (43.35, 131.25))


@st.composite
def sources(draw: st.DrawFn) -> list[Source]:
    """Two or three sources, with their own deployments, sites and individuals."""
    out = []
    for s in range(draw(st.integers(2, 3))):
        cameras = []
        detections = []
        for d in range(draw(st.integers(1, 4))):
            deployment = f"src{s}-dep{d}"
            lat, lon = draw(st.sampled_from(POSITIONS))
            start = at(1, 1) + timedelta(hours=draw(st.integers(0, 24 * 40)))
            end = start + timedelta(hours=draw(st.integers(1, 24 * 30)))
            site = f"src{s}-site{draw(st.integers(0, 2))}"
            cameras.append(Camera(deployment, site, lat, lon, start, end))
            offsets = sorted(draw(st.lists(st.integers(0, int((end - start).total_seconds()) - 1),
                                           max_size=8)))
            for offset in offsets:
                taxon = draw(st.sampled_from((TIGER, LEOPARD)))
                individual = draw(st.sampled_from((None, f"src{s}-ind0", f"src{s}-ind1")))
                detections.append(Detection(deployment, taxon, start + timedelta(seconds=offset),
                                            individual))
        out.append(Source(tuple(cameras), tuple(detections)))
    return out


@given(sources())
@settings(max_examples=200, deadline=None)
def test_merging_equals_counting_the_union(nodes: list[Source]) -> None:
    query = make_query(taxa=[TIGER, LEOPARD], first=JAN, last="2021-03")
    rules = Disclosure(min_events=1, min_cameras=1)
    parts = [release(tally_camtrap(query, n.cameras, n.detections), rules) for n in nodes]
    union = release(tally_camtrap(query, [c for n in nodes for c in n.cameras],
                                  [d for n in nodes for d in n.detections]), rules)
    merged = merge(parts)
    assert merged.effort == union.effort  # min_cameras 1 suppresses no effort
    union_counts = {(r["taxon"], r["cell"], r["period"]): r for r in union.counts}
    suppressed_somewhere = {(r["taxon"], r["cell"], r["period"])
                            for p in parts for r in p.counts if "suppressed" in r}
    assert {(r["taxon"], r["cell"], r["period"]) for r in merged.counts} == set(union_counts)
    for row in merged.counts:
        key = (row["taxon"], row["cell"], row["period"])
        if key in suppressed_somewhere:
            assert "suppressed" in row
        else:
            assert row == union_counts[key]
    # totals: every figure the merge releases is the union's, border cells counted once
    union_totals = {(t["taxon"], t["period"]): t for t in union.totals}
    assert set(union_totals) == {(t["taxon"], t["period"]) for t in merged.totals}
    held_back = {(t["taxon"], t["period"]) for p in parts for t in p.totals if "suppressed" in t}
    for total in merged.totals:
        expected = union_totals[(total["taxon"], total["period"])]
        if (total["taxon"], total["period"]) in held_back:  # a source saw none: 0 < 1
            assert "suppressed" in total
            continue
        assert "suppressed" not in total  # at min_events 1 no total pins a cell
        assert {k: expected[k] for k in total} == total
        assert set(expected) - set(total) <= {"cameras_detected"}
    assert merged.effort_totals == union.effort_totals


def test_a_border_cell_is_one_cell_of_the_merged_total() -> None:
    query = make_query()
    a = release(one_period(query, {CELLS[0]: (3, 5), CELLS[1]: (3, 6)}), Disclosure())
    b = release(one_period(query, {CELLS[0]: (3, 7)}), Disclosure())
    merged = merge([a, b])
    assert len(merged.counts) == 2
    assert merged.totals[0]["cells"] == 2 and merged.totals[0]["events"] == 18
    assert merged.effort_totals[0]["cells"] == 2



def test_a_total_over_too_few_cameras_is_suppressed_like_a_cell() -> None:
    """Found by Hypothesis: cells of 1 and 2 cameras under min_cameras=4 summed to a
    total of 3 cameras that was released."""
    cells = {"N43.1E131.2@0.1": (1, 0), "N43.2E131.2@0.1": (2, 3)}
    released = release(one_period(make_query(), cells), Disclosure(min_events=2, min_cameras=4))
    [effort_total] = released.effort_totals
    assert effort_total["suppressed"] == "fewer than 4 cameras in all"
    assert all("suppressed" in t for t in released.totals)
    assert all("suppressed" in r for r in released.counts)
