"""The closure of a release: every row of a package is reachable from what the terms release.

One property, checked on generated datasets and generated terms for both
profiles, independently of the code under test (the expected sets are
computed here from the source CSVs, not from the node's SQL):

* every observation / occurrence is inside the terms (taxa, time window,
  area) and not held back by the policy;
* every media row is reached by a released observation (made on it, or an
  event-level observation at its camera spanning its timestamp);
* every deployment / event is referenced by a released row, unless the plan
  releases effort (and then the explanation says so);
* every individual is named by a released observation;
* nothing released refers to a row that was not released.

Then the real data the issue was observed on: the Camtrap DP example
narrowed to *Mustela putorius* and A Rocha Kenya narrowed to *Platalea alba*.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corridor.db import make_engine
from corridor.keystore import load_signing_key
from node.cli import generate_and_import, init_node
from node.data.datasets import get_dataset, stored_taxa
from node.data.importer import Importer
from node.exchange.counts import count as count_release
from node.exchange.package import CAMTRAP_RESOURCES, exporter_for
from node.settings import NodeSettings
from policies.counts import Query
from policies.engine import compile as compile_plan
from policies.policy import load_policy
from policies.terms import load_terms
from tests.packages import assert_frictionless_valid

pytestmark = pytest.mark.storage

CAMTRAP_EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "camtrap-dp-example"
AROCHA = Path(__file__).resolve().parents[3] / "shared" / "data" / "arocha-kenya-waterbirds"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
KEY = b"c" * 32
#: Taxa of the Camtrap DP example (and '' for blanks), drawn from for generated datasets.
CAMTRAP_TAXA = ("Anas platyrhynchos", "Ardea cinerea", "Rattus norvegicus", "Mustela putorius",
                "Martes foina", "Vulpes vulpes", "")
BIRDS = ("Platalea alba", "Limosa lapponica", "Hydroprogne caspia", "Ardea cinerea")
_names = count()


def _policy(tier: dict[str, Any]) -> dict[str, Any]:
    return {"tiers": {"shared": tier}, "purposes": ["research"], "partners": ["*"],
            "sensitivity": {"Mustela putorius": 1, "Limosa lapponica": 1}}


def _export(settings: NodeSettings, name: str, policy: dict[str, Any],
            terms: dict[str, Any], out: Path, resources: tuple[str, ...]) -> Any:
    engine = make_engine(settings.database_url)
    try:
        with sa.orm.Session(engine) as session:
            dataset = get_dataset(session, name)
            present = stored_taxa(session, dataset)  # what the node's plan_for passes
        plan = compile_plan(load_policy(policy),
                            load_terms({"purpose": "research", "tier": "shared", **terms}),
                            "cn-ntlnp", NOW, pseudonym_key=KEY, resources=resources,
                            taxa_present=present)
        with out.open("wb") as fh:
            exporter_for(engine, dataset, plan, provider=settings.member_id,
                         key=load_signing_key(settings.keys_dir), now=NOW, cursor_key=KEY,
                         recipient="cn-ntlnp").write(fh)
        assert_frictionless_valid(out)  # every generated package is one outside tools accept
        return plan
    finally:
        engine.dispose()


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _package(path: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    with zipfile.ZipFile(path) as archive:
        descriptor = json.loads(archive.read("datapackage.json"))
        tables = {r["name"]: _csv(archive.read(r["path"]).decode())
                  for r in descriptor["resources"]}
    return descriptor, tables


def _source(directory: Path, name: str) -> list[dict[str, str]]:
    with (directory / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _extent(descriptor: dict[str, Any]) -> tuple[float, float, float, float]:
    """West, south, east, north of the descriptor's GeoJSON ``spatial`` polygon."""
    ring = descriptor["spatial"]["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return min(lons), min(lats), max(lons), max(lats)


def _inside(lon: float, lat: float, bbox: list[float] | None) -> bool:
    return bbox is None or (bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3])


def _in_window(moment: date, terms: dict[str, Any]) -> bool:
    start, end = terms.get("time_from"), terms.get("time_to")
    return (start is None or moment >= date.fromisoformat(start)) and \
        (end is None or moment <= date.fromisoformat(end))


# --- generated terms ---------------------------------------------------------------------

_days = st.integers(min_value=0, max_value=330)


@st.composite
def _window(draw: st.DrawFn, first: date) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        a, b = sorted((draw(_days), draw(_days)))
        out = {"time_from": (first + timedelta(days=a)).isoformat(),
               "time_to": (first + timedelta(days=b)).isoformat()}
    return out


@st.composite
def _tier(draw: st.DrawFn) -> dict[str, Any]:
    tier: dict[str, Any] = {"release_effort": draw(st.booleans()),
                            "apply_sensitivity": draw(st.booleans())}
    if draw(st.booleans()):
        tier["default_precision"] = draw(st.sampled_from([0.001, 0.01, 0.1]))
        tier["coarsen_time"] = draw(st.sampled_from(["none", "day", "month"]))
    return tier


def _bbox(draw: st.DrawFn, west: float, south: float, east: float, north: float
          ) -> list[float] | None:
    if not draw(st.booleans()):
        return None
    lon = sorted(draw(st.floats(west, east)) for _ in range(2))
    lat = sorted(draw(st.floats(south, north)) for _ in range(2))
    return [round(lon[0], 3), round(lat[0], 3), round(lon[1], 3) + 0.001,
            round(lat[1], 3) + 0.001]


# --- camera traps --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def camtrap_node(tmp_path_factory: pytest.TempPathFactory) -> NodeSettings:
    if not CAMTRAP_EXAMPLE.exists():
        pytest.skip("reference data not found: ../shared/data/camtrap-dp-example")
    return init_node(tmp_path_factory.mktemp("closure") / "n", "ru-lotl", "A", "RU")


def _generated_camtrap(root: Path, taxa: list[str], kept: list[bool],
                       types: tuple[str, ...] = ("animal",)) -> Path:
    """The example with its observations' taxa redrawn and some observations dropped.

    Named observations take their ``observationType`` from ``types`` in turn: a
    tentative identification filed as ``unknown`` is still that taxon.
    """
    out = root / f"gen-{next(_names)}"
    shutil.copytree(CAMTRAP_EXAMPLE, out)
    rows = _source(CAMTRAP_EXAMPLE, "observations.csv")
    with (out / "observations.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for i, row in enumerate(rows):
            if kept[i % len(kept)]:
                name = taxa[i % len(taxa)]
                row["scientificName"] = name
                row["observationType"] = types[i % len(types)] if name else "blank"
                writer.writerow(row)
    return out


@st.composite
def _camtrap_case(draw: st.DrawFn) -> dict[str, Any]:
    terms: dict[str, Any] = draw(_window(date(2020, 5, 30)))
    if draw(st.booleans()):
        terms["taxa"] = sorted(draw(st.sets(st.sampled_from(CAMTRAP_TAXA[:-1]), min_size=1,
                                            max_size=3)))
    bbox = _bbox(draw, 4.0, 50.6, 5.7, 51.5)
    if bbox is not None:
        terms["bbox"] = bbox
    return {"terms": terms, "tier": draw(_tier()),
            "taxa": draw(st.lists(st.sampled_from(CAMTRAP_TAXA), min_size=5, max_size=40)),
            "kept": draw(st.lists(st.booleans(), min_size=3, max_size=12).filter(any)),
            "types": tuple(draw(st.lists(st.sampled_from(("animal", "unknown", "unclassified")),
                                         min_size=1, max_size=3)))}


def _check_camtrap(source: Path, terms: dict[str, Any], tier: dict[str, Any],
                   descriptor: dict[str, Any], tables: dict[str, list[dict[str, str]]]) -> None:
    deployments = {d["deploymentID"]: d for d in _source(source, "deployments.csv")}
    media = {m["mediaID"]: m for m in _source(source, "media.csv")}
    observations = {o["observationID"]: o for o in _source(source, "observations.csv")}
    out_obs, out_media = tables["observations"], tables["media"]
    out_deps = tables["deployments"]
    # 1. Every released observation is inside the terms.
    for row in out_obs:
        stored = observations[row["observationID"]]
        if "taxa" in terms:
            assert stored["scientificName"] in terms["taxa"], stored
        assert _in_window(_utc(stored["eventStart"]).date(), terms), stored
        camera = deployments[stored["deploymentID"]]
        assert _inside(float(camera["longitude"]), float(camera["latitude"]),
                       terms.get("bbox")), stored
        if tier["apply_sensitivity"]:
            assert stored["scientificName"] != "Mustela putorius"  # category 1: withheld
    released = [observations[r["observationID"]] for r in out_obs]
    # 2. Every media row is reached by a released observation.
    for row in out_media:
        image = media[row["mediaID"]]
        moment = _utc(image["timestamp"])
        assert any(o["mediaID"] == image["mediaID"] or (
            o["observationLevel"] == "event" and o["deploymentID"] == image["deploymentID"]
            and _utc(o["eventStart"]) <= moment <= _utc(o["eventEnd"])) for o in released), image
    # 3. Every camera is referenced, unless the plan releases effort (and says so).
    referenced = {o["deploymentID"] for o in released} | {media[m["mediaID"]]["deploymentID"]
                                                          for m in out_media}
    ids = {d["deploymentID"] for d in out_deps}
    if tier["release_effort"]:
        assert "effort" in json.dumps(descriptor["corridor"]["plan"])
    else:
        assert ids <= referenced, ids - referenced
    # Every released camera stood inside the area, whatever its rounding shows.
    for d in out_deps:
        stored_camera = deployments[d["deploymentID"]]
        assert _inside(float(stored_camera["longitude"]), float(stored_camera["latitude"]),
                       terms.get("bbox")), stored_camera
    # 4. Nothing refers to a row that was not released.
    assert {r["deploymentID"] for r in out_obs + out_media} <= ids
    assert {r["mediaID"] for r in out_obs if r.get("mediaID")} <= {m["mediaID"]
                                                                    for m in out_media}
    assert tables.get("individuals", []) == [] or {
        i["individualID"] for i in tables["individuals"]} <= {
        o.get("individualID") for o in out_obs}
    # 5. The descriptor names only released taxa, and its extent contains every camera.
    names = {t["scientificName"] for t in descriptor.get("taxonomic", [])}
    assert names <= {o["scientificName"] for o in released}
    if out_deps and "latitude" in out_deps[0]:
        west, south, east, north = _extent(descriptor)
        for d in out_deps:
            if d["latitude"]:
                assert west <= float(d["longitude"]) <= east
                assert south <= float(d["latitude"]) <= north


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=_camtrap_case())
def test_every_camera_trap_row_is_reachable_from_a_released_observation(
        camtrap_node: NodeSettings, tmp_path_factory: pytest.TempPathFactory,
        case: dict[str, Any]) -> None:
    root = tmp_path_factory.mktemp("case")
    source = _generated_camtrap(root, case["taxa"], case["kept"], case["types"])
    name = f"gen-{next(_names)}"
    Importer(make_engine(camtrap_node.database_url)).import_camtrap(source, name=name)
    out = root / "package.zip"
    _export(camtrap_node, name, _policy(case["tier"]), case["terms"], out, CAMTRAP_RESOURCES)
    descriptor, tables = _package(out)
    _check_camtrap(source, case["terms"], case["tier"], descriptor, tables)


def test_a_withheld_taxon_filed_as_unknown_is_still_withheld(
        camtrap_node: NodeSettings, tmp_path: Path) -> None:
    # Tentative identifications are often typed "unknown": the taxon's rules still hold.
    rows = _source(CAMTRAP_EXAMPLE, "observations.csv")
    polecats = sum(r["scientificName"] == "Mustela putorius" for r in rows)
    source = tmp_path / "src"
    shutil.copytree(CAMTRAP_EXAMPLE, source)
    for row in rows:
        if row["scientificName"] == "Mustela putorius":
            row["observationType"] = "unknown"
    _write(source / "observations.csv", rows, list(rows[0]))
    name = f"unknown-{next(_names)}"
    Importer(make_engine(camtrap_node.database_url)).import_camtrap(source, name=name)
    tier = {"apply_sensitivity": True, "release_effort": False}
    plan = _export(camtrap_node, name, _policy(tier), {}, tmp_path / "p.zip", CAMTRAP_RESOURCES)
    _, tables = _package(tmp_path / "p.zip")
    assert polecats == 12
    assert "Mustela putorius" in plan.drop_taxa
    assert not [o for o in tables["observations"] if o["scientificName"] == "Mustela putorius"]


def _released_cameras(settings: NodeSettings, name: str, south: float, tmp_path: Path
                      ) -> set[str]:
    """Cameras of the example released at 0.1° (with effort) under a box with this south edge."""
    out = tmp_path / f"edge-{next(_names)}.zip"
    tier = {"default_precision": 0.1, "release_effort": True, "apply_sensitivity": False}
    _export(settings, name, _policy(tier), {"bbox": [4.0, south, 6.0, 51.6]}, out,
            CAMTRAP_RESOURCES)
    _, tables = _package(out)
    assert {o["deploymentID"] for o in tables["observations"]} <= {
        d["deploymentID"] for d in tables["deployments"]}
    return {d["deploymentID"] for d in tables["deployments"]}


def test_a_camera_outside_the_area_stays_home_though_its_rounding_falls_inside(
        camtrap_node: NodeSettings, tmp_path: Path) -> None:
    # 29b7d356 stands at 51.181 N and 577b543a at 51.184 N; at 0.1° both show 51.2 N.
    # A box from 51.19 N leaves both outside where they stand, inside where they are shown.
    name = f"edge-{next(_names)}"
    Importer(make_engine(camtrap_node.database_url)).import_camtrap(CAMTRAP_EXAMPLE, name=name)
    assert _released_cameras(camtrap_node, name, 51.19, tmp_path) == {"00a2c20d"}


def test_an_edge_through_a_cell_does_not_tell_where_in_the_cell_a_camera_stands(
        camtrap_node: NodeSettings, tmp_path: Path) -> None:
    # The 0.1° cell shown as 51.2 N spans 51.15 .. 51.25 N. An edge at 51.182 N falls
    # between the two cameras' true latitudes; if it split them, comparing packages under
    # two boxes would place each camera to the metre's side of the edge.
    name = f"edge-{next(_names)}"
    Importer(make_engine(camtrap_node.database_url)).import_camtrap(CAMTRAP_EXAMPLE, name=name)
    cell = {"00a2c20d", "29b7d356", "577b543a"}
    assert _released_cameras(camtrap_node, name, 51.15, tmp_path) == cell  # edge on the cell
    for south in (51.151, 51.182, 51.183, 51.2):
        assert _released_cameras(camtrap_node, name, south, tmp_path) == {"00a2c20d"}, south


def test_counts_leave_out_a_grid_cell_the_area_edge_cuts(
        camtrap_node: NodeSettings) -> None:
    # 29b7d356 and 577b543a stand in cell N51.1E5.6@0.1 (51.1 .. 51.2 N), both north of
    # 51.12 N. An edge at 51.12 N cuts the cell: counting the cameras north of it would
    # let two agreements' counts be differenced into a strip finer than the grid.
    name = f"edge-{next(_names)}"
    engine = make_engine(camtrap_node.database_url)
    Importer(engine).import_camtrap(CAMTRAP_EXAMPLE, name=name)
    policy = load_policy({"tiers": {"aggregate": {"aggregate_only": True}},
                          "purposes": ["research"], "partners": ["*"]})
    query = Query.build(metrics=["effort"], taxa=["Vulpes vulpes"], cell_size="0.1",
                        unit="year", first="2020", last="2020")

    def cells(south: float) -> list[str]:
        terms = load_terms({"purpose": "research", "tier": "aggregate",
                            "bbox": [4.0, south, 6.0, 51.6]})
        plan = compile_plan(policy, terms, "cn-ntlnp", NOW, resources=CAMTRAP_RESOURCES)
        with sa.orm.Session(engine) as session:
            dataset = get_dataset(session, name)
        answer = count_release(engine, dataset, plan, policy.tiers["aggregate"], query)
        assert answer.tally is not None
        return answer.tally.cells()

    try:
        assert cells(51.1) == ["N51.1E5.6@0.1", "N51.4E4.7@0.1"]  # the edge on the cell
        assert cells(51.12) == cells(51.183) == ["N51.4E4.7@0.1"]
    finally:
        engine.dispose()


# --- bird surveys (Darwin Core) -----------------------------------------------------------


@pytest.fixture(scope="module")
def survey_node(tmp_path_factory: pytest.TempPathFactory) -> NodeSettings:
    return init_node(tmp_path_factory.mktemp("surveys") / "n", "ke-arocha", "A Rocha", "KE")


_site = st.tuples(st.floats(-4.0, -2.0), st.floats(39.0, 41.0))


@st.composite
def _survey_case(draw: st.DrawFn) -> dict[str, Any]:
    sites = draw(st.lists(_site, min_size=1, max_size=4))
    events = []
    for i in range(draw(st.integers(1, 12))):
        lat, lon = draw(st.sampled_from(sites))
        day = date(2020, 1, 1) + timedelta(days=draw(_days))
        initials = draw(st.sampled_from(["DT, CJ", "", "AB"]))
        events.append({"eventID": f"ev{i}", "eventDate": day.isoformat(),
                       "decimalLatitude": f"{lat:.5f}", "decimalLongitude": f"{lon:.5f}",
                       "dynamicProperties": f'{{water: "high", participants: "{initials}", }}'})
    occurrences = []
    for i, event in enumerate(events):
        for j, bird in enumerate(draw(st.sets(st.sampled_from(BIRDS), max_size=3))):
            occurrences.append({"occurrenceID": f"oc{i}-{j}", "eventID": event["eventID"],
                                "basisOfRecord": "HumanObservation", "scientificName": bird,
                                "individualCount": str(draw(st.integers(0, 40))),
                                "recordedBy": "D. Turner"})
    terms: dict[str, Any] = draw(_window(date(2020, 1, 1)))
    if draw(st.booleans()):
        terms["taxa"] = sorted(draw(st.sets(st.sampled_from(BIRDS), min_size=1, max_size=2)))
    bbox = _bbox(draw, 39.0, -4.0, 41.0, -2.0)
    if bbox is not None:
        terms["bbox"] = bbox
    tier = draw(_tier())
    if draw(st.booleans()):
        tier["withhold_fields"] = {"occurrence": ["recordedBy"]}
    return {"events": events, "occurrences": occurrences, "terms": terms, "tier": tier}


def _write(path: Path, rows: list[dict[str, str]], header: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=_survey_case())
def test_every_survey_event_is_reachable_from_a_released_occurrence(
        survey_node: NodeSettings, tmp_path_factory: pytest.TempPathFactory,
        case: dict[str, Any]) -> None:
    if not case["occurrences"]:
        return  # a survey with no records at all is refused at import
    root = tmp_path_factory.mktemp("survey")
    _write(root / "events.csv", case["events"], ["eventID", "eventDate", "decimalLatitude",
                                                 "decimalLongitude", "dynamicProperties"])
    _write(root / "occurrences.csv", case["occurrences"],
           ["occurrenceID", "eventID", "basisOfRecord", "scientificName", "individualCount",
            "recordedBy"])
    name = f"survey-{next(_names)}"
    Importer(make_engine(survey_node.database_url)).import_dwc(
        root / "events.csv", root / "occurrences.csv", name=name)
    out = root / "package.zip"
    terms, tier = case["terms"], case["tier"]
    _export(survey_node, name, _policy(tier), terms, out, ("event", "occurrence"))
    descriptor, tables = _package(out)
    events = {e["eventID"]: e for e in case["events"]}
    occurrences = {o["occurrenceID"]: o for o in case["occurrences"]}
    out_events, out_occ = tables["event"], tables["occurrence"]
    for row in out_occ:
        stored = occurrences[row["occurrenceID"]]
        event = events[stored["eventID"]]
        if "taxa" in terms:
            assert stored["scientificName"] in terms["taxa"]
        assert _in_window(date.fromisoformat(event["eventDate"]), terms)
        assert _inside(float(event["decimalLongitude"]), float(event["decimalLatitude"]),
                       terms.get("bbox"))
        if tier["apply_sensitivity"]:
            assert stored["scientificName"] != "Limosa lapponica"
        if "withhold_fields" in tier:
            assert not row.get("recordedBy")
    ids = {e["eventID"] for e in out_events}
    for event_id in ids:  # effort too: every released event was inside the area
        stored_event = events[event_id]
        assert _inside(float(stored_event["decimalLongitude"]),
                       float(stored_event["decimalLatitude"]), terms.get("bbox"))
    assert {o["eventID"] for o in out_occ} <= ids  # nothing dangles
    if not tier["release_effort"]:
        assert ids <= {occurrences[o["occurrenceID"]]["eventID"] for o in out_occ}
    else:
        assert "zero counts" in json.dumps(descriptor["corridor"]["plan"])
    for event in out_events:  # the initials go where recordedBy goes
        if "withhold_fields" in tier:
            assert "participants" not in (event.get("dynamicProperties") or "")
    names = {t["scientificName"] for t in descriptor.get("taxonomic", [])}
    assert names <= {occurrences[o["occurrenceID"]]["scientificName"] for o in out_occ}


# --- the real data the issue was observed on ------------------------------------------------


@pytest.fixture
def example_package(camtrap_node: NodeSettings, tmp_path: Path) -> Iterator[Path]:
    name = f"example-{next(_names)}"
    Importer(make_engine(camtrap_node.database_url)).import_camtrap(CAMTRAP_EXAMPLE, name=name)
    out = tmp_path / "polecats.zip"
    policy = {"tiers": {"shared": {"default_precision": 0.1, "coarsen_time": "day",
                                   "withhold_fields": {"deployments": ["setupBy"]}}},
              "purposes": ["research"], "partners": ["*"]}
    _export(camtrap_node, name, policy, {"taxa": ["Mustela putorius"]}, out, CAMTRAP_RESOURCES)
    yield out


def test_the_camtrap_example_narrowed_to_polecats_releases_polecats_only(
        example_package: Path) -> None:
    descriptor, tables = _package(example_package)
    observations = tables["observations"]
    assert len(observations) == 12 and {o["scientificName"] for o in observations} == {
        "Mustela putorius"}
    # Computed here from the source: the cameras and images the 12 polecat records reach.
    source = {o["observationID"]: o for o in _source(CAMTRAP_EXAMPLE, "observations.csv")}
    polecats = [source[o["observationID"]] for o in observations]
    cameras = {o["deploymentID"] for o in polecats}
    events = [o for o in polecats if o["observationLevel"] == "event"]
    images = {o["mediaID"] for o in polecats if o["mediaID"]} | {
        m["mediaID"] for m in _source(CAMTRAP_EXAMPLE, "media.csv")
        if any(o["deploymentID"] == m["deploymentID"]
               and _utc(o["eventStart"]) <= _utc(m["timestamp"]) <= _utc(o["eventEnd"])
               for o in events)}
    assert {d["deploymentID"] for d in tables["deployments"]} == cameras
    assert {m["mediaID"] for m in tables["media"]} == images  # not 414 unrelated images
    assert not tables.get("individuals")  # no Vulpes vulpes
    assert [t["scientificName"] for t in descriptor["taxonomic"]] == ["Mustela putorius"]
    west, south, east, north = _extent(descriptor)
    for value in (west, south, east, north):
        assert round(value * 10, 9) == round(value * 10)  # multiples of 0.1
    # The extent is drawn around the cameras as released (generalized to 0.1°), not their
    # true positions: a box around those, rounded differently, would narrow them down again.
    for camera in tables["deployments"]:
        assert west <= float(camera["longitude"]) <= east
        assert south <= float(camera["latitude"]) <= north
    corners = {str(v) for v in (west, south, east, north)}
    assert not corners & {"4.013", "50.699", "5.659", "51.496"}  # not the source's exact box
    text = json.dumps(descriptor)
    assert "@" not in json.dumps(descriptor["contributors"])  # setupBy withheld: no e-mails
    assert "Vulpes" not in text and "Anas platyrhynchos" not in text


def test_a_rocha_narrowed_to_spoonbills_releases_spoonbill_counts_only(tmp_path: Path) -> None:
    if not AROCHA.exists():
        pytest.skip("reference data not found: ../shared/data/arocha-kenya-waterbirds")
    settings_ = init_node(tmp_path / "ke", "ke-arocha", "A Rocha Kenya", "KE")
    Importer(make_engine(settings_.database_url)).import_dwc(
        AROCHA / "events.csv", AROCHA / "occurrences.csv", name="waterbirds")
    policy = {"tiers": {"shared": {"coarsen_time": "month",
                                   "withhold_fields": {"occurrence": ["recordedBy"]}}},
              "purposes": ["research"], "partners": ["*"]}
    out = tmp_path / "spoonbills.zip"
    _export(settings_, "waterbirds", policy, {"taxa": ["Platalea alba"]}, out,
            ("event", "occurrence"))
    descriptor, tables = _package(out)
    source = _source(AROCHA, "occurrences.csv")
    spoonbill_events = {o["eventID"] for o in source if o["scientificName"] == "Platalea alba"}
    assert {o["scientificName"] for o in tables["occurrence"]} == {"Platalea alba"}
    assert {e["eventID"] for e in tables["event"]} == spoonbill_events  # no event without one
    assert all("participants" not in (e.get("dynamicProperties") or "")
               for e in tables["event"])
    assert {t["scientificName"] for t in descriptor.get("taxonomic", [])} <= {"Platalea alba"}
    assert "Limosa" not in json.dumps(descriptor) and "@" not in json.dumps(descriptor)


def test_an_occurrence_that_repeats_its_place_carries_it_no_finer_than_its_event(
        tmp_path: Path) -> None:
    if not AROCHA.exists():
        pytest.skip("reference data not found: ../shared/data/arocha-kenya-waterbirds")
    events = {e["eventID"]: e for e in _source(AROCHA, "events.csv")}
    rows = [o for o in _source(AROCHA, "occurrences.csv") if o["scientificName"] == "Platalea alba"]
    extra = {"decimalLatitude": "", "decimalLongitude": "", "coordinateUncertaintyInMeters": "5",
             "locality": "", "verbatimLocality": "nest tree 14", "locationRemarks": "by the jetty"}
    for o in rows:  # the event's exact position, repeated on the occurrence row
        o.update(extra, decimalLatitude=events[o["eventID"]]["decimalLatitude"],
                 decimalLongitude=events[o["eventID"]]["decimalLongitude"],
                 locality="Mida Creek, nest tree 14")
    _write(tmp_path / "occurrences.csv", rows, list(rows[0]))
    settings_ = init_node(tmp_path / "ke", "ke-arocha", "A Rocha Kenya", "KE")
    Importer(make_engine(settings_.database_url)).import_dwc(
        AROCHA / "events.csv", tmp_path / "occurrences.csv", name="waterbirds")
    policy = {"tiers": {"shared": {}}, "purposes": ["research"], "partners": ["*"],
              "sensitivity": {"Platalea alba": 2}}  # 0.1 degree
    out = tmp_path / "spoonbills.zip"
    _export(settings_, "waterbirds", policy, {}, out, ("event", "occurrence"))
    _, tables = _package(out)
    assert tables["occurrence"] and tables["event"]
    for event in tables["event"]:
        assert len(event["decimalLatitude"].partition(".")[2]) <= 1, event
    for row in tables["occurrence"]:
        assert all(row.get(term, "") == "" for term in extra), row
        assert "nest tree" not in json.dumps(row)


def test_an_individual_travels_only_with_an_observation_that_names_it(
        tmp_path: Path) -> None:
    settings_ = init_node(tmp_path / "ru", "ru-lotl", "Land of the Leopard", "RU")
    generate_and_import(settings_, tmp_path / "gen", side="ru", observations=3000, seed=11,
                        bird_counts=False)
    policy = {"tiers": {"shared": {"pseudonymize_individuals": True}}, "purposes": ["research"],
              "partners": ["*"]}
    out = tmp_path / "tigers.zip"
    _export(settings_, "corridor-demo-ru-lotl", policy, {"taxa": ["Panthera tigris altaica"]},
            out, CAMTRAP_RESOURCES)
    _, tables = _package(out)
    named = {o["individualID"] for o in tables["observations"] if o["individualID"]}
    released = {i["individualID"] for i in tables["individuals"]}
    assert released and released == named
    assert {i["scientificName"] for i in tables["individuals"]} == {"Panthera tigris altaica"}
