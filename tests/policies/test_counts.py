"""The counting protocol: effort, independent events, occupancy, individuals and bird counts."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import pytest

from policies.counts import (
    BirdRecord,
    Camera,
    Detection,
    Protocol,
    Query,
    Survey,
    Tally,
    as_mapping,
    tally_birds,
    tally_camtrap,
)
from policies.grid import GridError
from policies.suppression import Disclosure, derived, release
from policies.taxonomy import accepted_name

DAY = 86400
TIGER = "Panthera tigris altaica"
LEOPARD = "Panthera pardus orientalis"
SNOW_LEOPARD = "Panthera uncia"
# Two cells of the 0.1° grid.
IN_A = (43.15, 131.25)  # N43.1E131.2@0.1
IN_B = (43.05, 131.25)  # N43E131.2@0.1
CELL_A = "N43.1E131.2@0.1"
CELL_B = "N43E131.2@0.1"


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2021) -> datetime:
    """An instant in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def camtrap_query(first: str = "2021-01", last: str = "2021-03", *,
                  taxa: Iterable[str] = (TIGER,), protocol: Protocol | None = None,
                  metrics: Iterable[str] = ("effort", "events", "occupancy", "individuals"),
                  ) -> Query:
    """A monthly query on the 0.1° grid."""
    return Query.build(metrics=metrics, taxa=taxa, cell_size="0.1", unit="month", first=first,
                       last=last, protocol=protocol)


def camera(deployment: str, start: datetime, end: datetime, *, site: str | None = None,
           where: tuple[float, float] = IN_A) -> Camera:
    """A deployment in cell A (unless ``where`` says otherwise)."""
    return Camera(deployment, site or deployment, where[0], where[1], start, end)


def events_of(tally: Tally, taxon: str = TIGER, cell: str = CELL_A) -> dict[str, int]:
    """Independent events per period in one cell."""
    return {p: c.events for (t, k, p), c in tally.counts.items() if t == taxon and k == cell}


# --- effort ---------------------------------------------------------------------------------


def test_effort_is_clipped_to_each_period() -> None:
    # 30 Jan 12:00 to 2 Feb 06:00: 1.5 days in January, 1.25 days in February.
    cam = camera("d1", at(1, 30, 12), at(2, 2, 6))
    tally = tally_camtrap(camtrap_query(), [cam], [])
    assert tally.effort[(CELL_A, "2021-01")].seconds == (DAY + DAY // 2)
    assert tally.effort[(CELL_A, "2021-02")].seconds == DAY + DAY // 4
    assert (CELL_A, "2021-03") not in tally.effort  # no effort: no row, not a zero row
    assert tally.cells() == [CELL_A]


def test_effort_is_counted_in_utc() -> None:
    # 1 Feb 01:00 at UTC+2 is 31 Jan 23:00 UTC: one hour of January.
    plus_two = timezone(timedelta(hours=2))
    start = datetime(2021, 2, 1, 1, tzinfo=plus_two)
    tally = tally_camtrap(camtrap_query(), [camera("d1", start, at(2, 1, 1))], [])
    assert tally.effort[(CELL_A, "2021-01")].seconds == 3600
    assert tally.effort[(CELL_A, "2021-02")].seconds == 3600


def test_effort_outside_the_query_is_not_counted() -> None:
    # 20 Dec 2020 to 10 Jan 2021; the query starts in January: nine days count.
    cam = camera("d1", at(12, 20, year=2020), at(1, 10))
    before = camera("d0", at(11, 1, year=2020), at(12, 1, year=2020))
    tally = tally_camtrap(camtrap_query(), [cam, before], [])
    assert as_mapping(tally)["effort"] == {(CELL_A, "2021-01"): (1, 9 * DAY)}


def test_effort_adds_deployments_and_counts_sites_once() -> None:
    cams = [camera("d1", at(1, 1), at(1, 11), site="s1"),
            camera("d2", at(1, 11), at(1, 21), site="s1"),  # redeployed at the same site
            camera("d3", at(1, 1), at(1, 2), site="s2"),
            camera("d4", at(1, 1), at(1, 4), site="s3", where=IN_B)]
    tally = tally_camtrap(camtrap_query(last="2021-01"), cams, [])
    assert as_mapping(tally)["effort"] == {(CELL_A, "2021-01"): (2, 21 * DAY),
                                           (CELL_B, "2021-01"): (1, 3 * DAY)}


# --- independent events ---------------------------------------------------------------------


def _every_twenty_minutes(protocol: Protocol) -> Tally:
    cam = camera("d1", at(1, 1), at(1, 31))
    records = [Detection("d1", TIGER, at(1, 10, 8, 0) + timedelta(minutes=m))
               for m in (0, 20, 40, 60)]
    return tally_camtrap(camtrap_query(last="2021-01", protocol=protocol), [cam], records)


def test_independence_from_the_last_record_chains_a_run_into_one_event() -> None:
    assert events_of(_every_twenty_minutes(Protocol(30, "last"))) == {"2021-01": 1}


def test_independence_from_the_first_record_splits_a_long_run() -> None:
    # 0 starts an event; 20 is within 30 of 0; 40 is 40 after 0: a new event; 60 is 20 after 40.
    assert events_of(_every_twenty_minutes(Protocol(30, "first"))) == {"2021-01": 2}


def test_the_interval_is_at_least_not_more_than() -> None:
    cam = camera("d1", at(1, 1), at(1, 31))
    records = [Detection("d1", TIGER, at(1, 10, 8, 0)), Detection("d1", TIGER, at(1, 10, 8, 30)),
               Detection("d1", TIGER, at(1, 10, 8, 59))]
    tally = tally_camtrap(camtrap_query(last="2021-01"), [cam], records)
    assert events_of(tally) == {"2021-01": 2}  # 30 min apart: new; 29 min: same
    tally = tally_camtrap(camtrap_query(last="2021-01", protocol=Protocol(60)), [cam], records)
    assert events_of(tally) == {"2021-01": 1}


def test_events_are_per_camera_and_per_taxon() -> None:
    cams = [camera("d1", at(1, 1), at(1, 31), site="s1"),
            camera("d2", at(1, 1), at(1, 31), site="s2")]
    records = [Detection("d1", TIGER, at(1, 10, 8, 0)), Detection("d1", LEOPARD, at(1, 10, 8, 5)),
               Detection("d1", TIGER, at(1, 10, 8, 10)), Detection("d2", TIGER, at(1, 10, 8, 1))]
    tally = tally_camtrap(camtrap_query(last="2021-01", taxa=[TIGER, LEOPARD]), cams, records)
    tiger = tally.counts[(TIGER, CELL_A, "2021-01")]
    assert (tiger.events, tiger.detected) == (2, {"s1", "s2"})  # one event at each camera
    leopard = tally.counts[(LEOPARD, CELL_A, "2021-01")]
    assert (leopard.events, leopard.detected) == (1, {"s1"})


def test_synonyms_are_resolved_before_events_are_formed() -> None:
    assert accepted_name("Uncia uncia") == SNOW_LEOPARD
    query = camtrap_query(last="2021-01", taxa=["Uncia uncia"])
    assert query.taxa == (SNOW_LEOPARD,)
    cam = camera("d1", at(1, 1), at(1, 31))
    records = [Detection("d1", "Uncia uncia", at(1, 10, 8, 0)),
               Detection("d1", "Panthera uncia", at(1, 10, 8, 10)),  # same event
               Detection("d1", "felis  UNCIA", at(1, 10, 8, 20)),  # same event
               Detection("d1", "Felis uncia", at(1, 12, 8, 0)),  # a new one
               Detection("d1", TIGER, at(1, 12, 9, 0))]  # not asked for
    tally = tally_camtrap(query, [cam], records)
    assert as_mapping(tally)["counts"] == {(SNOW_LEOPARD, CELL_A, "2021-01"): (2, 1, 0, 0, 0)}


def test_records_at_unknown_deployments_are_ignored() -> None:
    cam = camera("d1", at(1, 1), at(1, 31))
    records = [Detection("elsewhere", TIGER, at(1, 10)), Detection("d1", TIGER, at(1, 11))]
    assert events_of(tally_camtrap(camtrap_query(last="2021-01"), [cam], records)) == {
        "2021-01": 1}


def test_records_out_of_time_order_are_refused() -> None:
    cam = camera("d1", at(1, 1), at(1, 31))
    records = [Detection("d1", TIGER, at(1, 11)), Detection("d1", TIGER, at(1, 10))]
    with pytest.raises(ValueError, match="not in time order"):
        tally_camtrap(camtrap_query(last="2021-01"), [cam], records)


def _across_the_month_end() -> tuple[list[Camera], list[Detection]]:
    cams = [camera("d1", at(1, 15), at(3, 15))]
    records = [Detection("d1", TIGER, at(1, 31, 23, 50), "T1"),
               Detection("d1", TIGER, at(2, 1, 0, 10), "T1"),  # 20 min after: same event
               Detection("d1", TIGER, at(2, 1, 0, 35), "T1"),  # 25 min after: same event
               Detection("d1", TIGER, at(2, 20, 4, 0), "T2"),  # a February event
               Detection("d1", TIGER, at(3, 2, 4, 0))]  # a March event
    return cams, records


def test_an_event_is_counted_in_the_period_where_it_starts() -> None:
    cams, records = _across_the_month_end()
    tally = tally_camtrap(camtrap_query(), cams, records)
    assert events_of(tally) == {"2021-01": 1, "2021-02": 1, "2021-03": 1}
    # individuals are counted where they were recorded
    assert tally.counts[(TIGER, CELL_A, "2021-02")].individuals == {"T1", "T2"}
    assert tally.individuals == {(TIGER, "2021-01"): {"T1"}, (TIGER, "2021-02"): {"T1", "T2"}}


def test_a_months_counts_do_not_depend_on_the_months_asked_for() -> None:
    cams, records = _across_the_month_end()
    wide = as_mapping(tally_camtrap(camtrap_query("2021-01", "2021-03"), cams, records))
    narrow = as_mapping(tally_camtrap(camtrap_query("2021-02", "2021-03"), cams, records))
    only = as_mapping(tally_camtrap(camtrap_query("2021-02", "2021-02"), cams, records))
    february = {k: v for k, v in wide["counts"].items() if k[2] == "2021-02"}
    assert february == {(TIGER, CELL_A, "2021-02"): (1, 1, 2, 0, 0)}
    assert {k: v for k, v in narrow["counts"].items() if k[2] == "2021-02"} == february
    assert only["counts"] == february
    assert only["effort"] == {(CELL_A, "2021-02"): (1, 28 * DAY)}


# --- occupancy, RAI, individuals ------------------------------------------------------------


def test_occupancy_rai_and_individuals_of_a_cell() -> None:
    cams = [camera(f"d{i}", at(1, 1), at(1, 11), site=f"s{i}") for i in (1, 2, 3)]
    cams.append(camera("d4", at(1, 1), at(1, 11), site="s4", where=IN_B))
    records = [Detection("d1", TIGER, at(1, 2), "T1"), Detection("d1", TIGER, at(1, 3), "T1"),
               Detection("d2", TIGER, at(1, 2), "T2"), Detection("d2", TIGER, at(1, 2, 0, 5)),
               Detection("d4", TIGER, at(1, 5), "T1")]  # T1 walked into the next cell
    tally = tally_camtrap(camtrap_query(last="2021-01"), cams, records)
    released = release(tally, Disclosure(min_events=1, min_cameras=1))
    rows = {r["cell"]: derived(r, "camtrap") for r in released.counts}
    assert rows[CELL_A] == {"taxon": TIGER, "cell": CELL_A, "period": "2021-01", "cameras": 3,
                            "camera_seconds": 30 * DAY, "events": 3, "cameras_detected": 2,
                            "individuals": 2, "camera_days": 30.0, "rai": 10.0,
                            "occupancy": 0.6667}
    assert rows[CELL_B]["rai"] == 10.0 and rows[CELL_B]["occupancy"] == 1.0
    (total,) = released.totals
    # distinct individuals over the period, not the sum of the cells (2 + 1)
    assert (total["events"], total["cameras_detected"], total["individuals"]) == (4, 3, 2)
    assert total["camera_seconds"] == 40 * DAY


def test_individuals_are_released_only_when_asked_for() -> None:
    cams = [camera("d1", at(1, 1), at(1, 11))]
    records = [Detection("d1", TIGER, at(1, 2), "T1")]
    query = camtrap_query(last="2021-01", metrics=("effort", "events"))
    released = release(tally_camtrap(query, cams, records), Disclosure(min_events=1,
                                                                       min_cameras=1))
    (row,), (total,) = released.counts, released.totals
    assert row["events"] == total["events"] == 1
    assert "individuals" not in row and "individuals" not in total


# --- the protocol and the query -------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"independence_minutes": 0}, {"independence_minutes": 1441},
    {"independence_minutes": True}, {"independence_minutes": 30.0},
    {"independence_from": "middle"}, {"observation_level": "frame"},
])
def test_protocol_refuses_parameters_outside_it(kwargs: dict[str, object]) -> None:
    with pytest.raises(GridError):
        Protocol(**kwargs)  # type: ignore[arg-type]


def test_protocol_is_recorded_with_its_version() -> None:
    assert Protocol(45, "first").to_json() == {
        "version": 1, "independence_minutes": 45, "independence_from": "first",
        "observation_level": "event", "effort_unit": "camera-day", "time_zone": "UTC"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"metrics": ["events", "abundance"]}, "unknown metric 'abundance'"),
    ({"metrics": []}, "at least one metric"),
    ({"taxa": []}, "at least one taxon"),
    ({"taxa": ["  "]}, "at least one taxon"),
    ({"taxa": [f"Genus species{i}" for i in range(51)]}, "at most 50 taxa"),
    ({"cell_size": "0.2"}, "cell size"),
    ({"first": "2021-03", "last": "2021-02"}, "before it starts"),
    ({"unit": "week"}, "period unit"),
])
def test_query_build_refuses_what_is_off_the_protocol(kwargs: dict[str, object],
                                                      message: str) -> None:
    args: dict[str, object] = {"metrics": ["events"], "taxa": [TIGER], "cell_size": "0.1",
                               "unit": "month", "first": "2021-01", "last": "2021-02", **kwargs}
    with pytest.raises(GridError, match=message):
        Query.build(**args)  # type: ignore[arg-type]


def test_query_build_resolves_and_sorts_taxa_and_knows_its_kind() -> None:
    query = Query.build(metrics=["visits", "sum", "visits"], taxa=["Grus vipio", "Platalea minor",
                                                                    "Antigone vipio"],
                        cell_size="1", unit="quarter", first="2021-Q1", last="2021-Q2")
    assert query.taxa == ("Antigone vipio", "Platalea minor")
    assert query.metrics == ("visits", "sum")
    assert query.kind == "birds" and camtrap_query().kind == "camtrap"
    assert query.periods() == ["2021-Q1", "2021-Q2"]
    assert query.span() == (at(1, 1), at(7, 1))


# --- bird counts ----------------------------------------------------------------------------


def test_bird_counts_keep_zero_counts_as_visits_and_add_and_compare_counts() -> None:
    crane = "Antigone vipio"
    query = Query.build(metrics=["surveys", "visits", "sum", "max"], taxa=[crane, "Platalea minor"],
                        cell_size="0.1", unit="month", first="2021-01", last="2021-02")
    surveys = [Survey("e1", "lake", *IN_A, at(1, 5)), Survey("e2", "lake", *IN_A, at(1, 20)),
               Survey("e3", "marsh", *IN_A, at(1, 21)), Survey("e4", "marsh", *IN_A, at(2, 3)),
               Survey("e5", "bay", *IN_B, at(2, 3)),
               Survey("e0", "lake", *IN_A, at(3, 1))]  # outside the query
    records = [BirdRecord("e1", "Grus vipio", 0),  # counted, none seen: a visit
               BirdRecord("e2", crane, 5), BirdRecord("e2", "Grus vipio", 3),  # one visit, 8
               BirdRecord("e3", crane, None),  # present, not counted: a visit, adds nothing
               BirdRecord("e4", crane, 7), BirdRecord("e4", "Platalea minor", 2),
               BirdRecord("e0", crane, 100), BirdRecord("e5", "Grus japonensis", 4)]
    tally = tally_birds(query, surveys, records)
    mapping = as_mapping(tally)
    assert mapping["effort"] == {(CELL_A, "2021-01"): (2, 3), (CELL_A, "2021-02"): (1, 1),
                                 (CELL_B, "2021-02"): (1, 1)}
    # (visits, sites visited, individuals, sum, max)
    assert mapping["counts"] == {
        (crane, CELL_A, "2021-01"): (3, 2, 0, 8, 5), (crane, CELL_A, "2021-02"): (1, 1, 0, 7, 7),
        (crane, CELL_B, "2021-02"): (0, 0, 0, 0, 0),
        ("Platalea minor", CELL_A, "2021-01"): (0, 0, 0, 0, 0),
        ("Platalea minor", CELL_A, "2021-02"): (1, 1, 0, 2, 2),
        ("Platalea minor", CELL_B, "2021-02"): (0, 0, 0, 0, 0)}
    released = release(tally, Disclosure(min_events=1, min_cameras=1))
    row = next(r for r in released.counts
               if (r["taxon"], r["cell"], r["period"]) == (crane, CELL_A, "2021-01"))
    assert derived(row, "birds") == {"taxon": crane, "cell": CELL_A, "period": "2021-01",
                                     "sites": 2, "surveys": 3, "visits": 3, "sites_detected": 2,
                                     "sum": 8, "max": 5, "occupancy": 1.0}
    assert released.protocol == {"version": 1, "unit": "survey"}


# --- the Camtrap DP example, counted by hand ------------------------------------------------


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _month_starts(start: datetime, end: datetime) -> list[datetime]:
    """The first instant of every UTC month that ``[start, end)`` touches, and the one after."""
    months = [datetime(start.year, start.month, 1, tzinfo=UTC)]
    while months[-1] < end:
        last = months[-1]
        months.append(datetime(last.year + last.month // 12, last.month % 12 + 1, 1, tzinfo=UTC))
    return months


def _degree_cell(latitude: float, longitude: float) -> str:
    south, west = math.floor(latitude), math.floor(longitude)
    return f"{'N' if south >= 0 else 'S'}{abs(south)}{'E' if west >= 0 else 'W'}{abs(west)}@1"


def test_the_camtrap_dp_example_matches_a_count_by_hand(camtrap_example: Path) -> None:
    with (camtrap_example / "deployments.csv").open(newline="", encoding="utf-8") as f:
        deployments = list(csv.DictReader(f))
    with (camtrap_example / "observations.csv").open(newline="", encoding="utf-8") as f:
        observations = list(csv.DictReader(f))
    animals = sorted((o for o in observations
                      if o["observationLevel"] == "event" and o["observationType"] == "animal"),
                     key=lambda o: (o["deploymentID"], _utc(o["eventStart"])))
    assert len(animals) == 29  # the example's event-level animal observations

    # Effort by hand: seconds of each deployment in each UTC month, per 1° cell.
    cell_of_deployment: dict[str, str] = {}
    site_of: dict[str, str] = {}
    seconds: dict[tuple[str, str], int] = defaultdict(int)
    sites: dict[tuple[str, str], set[str]] = defaultdict(set)
    for d in deployments:
        cell = cell_of_deployment[d["deploymentID"]] = _degree_cell(float(d["latitude"]),
                                                                    float(d["longitude"]))
        site_of[d["deploymentID"]] = d["locationID"] or d["deploymentID"]
        start, end = _utc(d["deploymentStart"]), _utc(d["deploymentEnd"])
        months = _month_starts(start, end)
        for low, high in pairwise(months):
            overlap = int((min(end, high) - max(start, low)).total_seconds())
            if overlap > 0:
                key = (cell, f"{low.year:04d}-{low.month:02d}")
                seconds[key] += overlap
                sites[key].add(site_of[d["deploymentID"]])

    # Independent events by hand: 30 minutes since the last record of the taxon there.
    taxa = sorted({accepted_name(o["scientificName"]) for o in animals})
    events: dict[tuple[str, str, str], int] = defaultdict(int)
    detected: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    last_seen: dict[tuple[str, str], datetime] = {}
    for o in animals:
        taxon, moment = accepted_name(o["scientificName"]), _utc(o["eventStart"])
        previous = last_seen.get((o["deploymentID"], taxon))
        last_seen[(o["deploymentID"], taxon)] = moment
        if previous is None or moment - previous >= timedelta(minutes=30):
            key = (taxon, cell_of_deployment[o["deploymentID"]],
                   f"{moment.year:04d}-{moment.month:02d}")
            events[key] += 1
            detected[key].add(site_of[o["deploymentID"]])

    starts = [_utc(d["deploymentStart"]) for d in deployments]
    ends = [_utc(d["deploymentEnd"]) for d in deployments]
    first, last = min(starts), max(ends)
    query = Query.build(metrics=["effort", "events", "occupancy"], taxa=taxa, cell_size="1",
                        unit="month", first=f"{first.year:04d}-{first.month:02d}",
                        last=f"{last.year:04d}-{last.month:02d}")
    cameras = [Camera(d["deploymentID"], site_of[d["deploymentID"]], float(d["latitude"]),
                      float(d["longitude"]), _utc(d["deploymentStart"]), _utc(d["deploymentEnd"]))
               for d in deployments]
    detections = [Detection(o["deploymentID"], o["scientificName"], _utc(o["eventStart"]))
                  for o in animals]
    released = release(tally_camtrap(query, cameras, detections),
                       Disclosure(min_events=1, min_cameras=1))

    assert {(r["cell"], r["period"]): (r["cameras"], r["camera_seconds"])
            for r in released.effort} == {k: (len(sites[k]), v) for k, v in seconds.items()}
    assert sum(seconds.values()) == sum(
        int((e - s).total_seconds()) for s, e in zip(starts, ends, strict=True))
    expected_rows = {(t, c, p) for t in taxa for c, p in seconds}
    assert {(r["taxon"], r["cell"], r["period"]) for r in released.counts} == expected_rows
    assert set(events) <= expected_rows  # every event falls in a deployment's time
    for row in released.counts:
        key = (row["taxon"], row["cell"], row["period"])
        if key not in events:
            assert row == {"taxon": key[0], "cell": key[1], "period": key[2],
                           "suppressed": "fewer than 1 events"}
            continue
        assert (row["events"], row["cameras_detected"]) == (events[key], len(detected[key]))
        assert row["camera_seconds"] == seconds[(key[1], key[2])]
    totals = {(t["taxon"], t["period"]): t.get("events", t.get("suppressed"))
              for t in released.totals}
    by_hand: dict[tuple[str, str], int] = defaultdict(int)
    for (taxon, _, period), n in events.items():
        by_hand[(taxon, period)] += n
    assert {k: v for k, v in totals.items() if k in by_hand} == dict(by_hand)
    # a taxon seen nowhere in a period: its total is a cell below the threshold too
    assert {v for k, v in totals.items() if k not in by_hand} <= {"fewer than 1 events in all"}
    assert sum(by_hand.values()) == sum(events.values()) > 0
