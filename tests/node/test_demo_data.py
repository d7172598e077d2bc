"""Tests for node.data.demo_data: synthetic Camtrap DP packages and Darwin Core bird counts.

The camera-trap CSVs are checked with a small validator written here, driven by
the published Camtrap DP 1.0.2 table schemas bundled in ``node/data`` (types,
required, enum, minimum/maximum, pattern, unique and primary keys, foreign keys),
so the generator is not checked against its own idea of the format.
"""

from __future__ import annotations

import csv
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

import node
from node.data.demo_data import (
    CAMTRAP_SCHEMA_URLS,
    CENSUS_WINDOW,
    EVENT_FIELDS,
    OCCURRENCE_FIELDS,
    GeneratedPackage,
    Side,
    border_longitude,
    camera_count,
    cross_border_truth,
    generate_bird_counts,
    generate_camtrap,
    individual_registry,
)

SCHEMA_DIR = Path(node.__file__).parent / "data" / "camtrap-dp-1.0.2"
N = 5_000
OFFSETS = {"ru": "+10:00", "cn": "+08:00"}
UTC_HOURS = {"ru": 10, "cn": 8}
CATS = {"Panthera pardus orientalis", "Panthera tigris altaica"}
PREY = {"Capreolus pygargus", "Sus scrofa", "Cervus canadensis", "Cervus nippon",
        "Nyctereutes procyonoides", "Meles leucurus", "Lepus mandshuricus", "Martes zibellina"}
SIDES: tuple[Side, Side] = ("ru", "cn")


# ---------------------------------------------------------------- the validator


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _check_type(kind: str, spec: dict[str, Any], value: str) -> float | None:
    """Raise ValueError if ``value`` is not of the Table Schema ``kind``; return a number."""
    if kind == "string" or kind == "any":
        return None
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            raise ValueError(f"{value!r} is not an integer")
        return float(value)
    if kind == "number":
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        return number
    if kind == "boolean":
        if value not in ("true", "false"):  # stricter than Table Schema's default trueValues
            raise ValueError(f"{value!r} is not true/false")
        return None
    if kind == "datetime":
        fmt = spec.get("format", "%Y-%m-%dT%H:%M:%S%z")
        if fmt == "default":
            fmt = "%Y-%m-%dT%H:%M:%S%z"
        datetime.strptime(value, fmt)  # raises ValueError
        return None
    if kind == "date":
        date.fromisoformat(value)
        return None
    raise AssertionError(f"validator does not know type {kind!r}")


def validate_table(path: Path, schema: dict[str, Any],
                   foreign: dict[str, set[str]] | None = None) -> list[str]:
    """Every problem of ``path`` against a Frictionless Table Schema, as text.

    ``foreign`` maps a referenced resource name to the key values it holds.
    """
    header, rows = read_csv(path)
    fields = schema["fields"]
    problems = []
    if header != [f["name"] for f in fields]:
        problems.append(f"{path.name}: header {header} != schema fields")
    missing = set(schema.get("missingValues", [""]))
    seen: dict[str, set[str]] = {f["name"]: set() for f in fields}
    foreign_keys = [(fk["fields"], fk["reference"]["resource"])
                    for fk in schema.get("foreignKeys", [])]
    for line, row in enumerate(rows, start=2):
        for spec in fields:
            name, constraints = spec["name"], spec.get("constraints", {})
            value = row.get(name)
            where = f"{path.name}:{line}:{name}"
            if value is None:
                problems.append(f"{where}: column missing")
                continue
            if value in missing:
                if constraints.get("required"):
                    problems.append(f"{where}: required value missing")
                continue
            try:
                number = _check_type(spec["type"], spec, value)
            except ValueError as e:
                problems.append(f"{where}: {e}")
                continue
            if "enum" in constraints and value not in constraints["enum"]:
                problems.append(f"{where}: {value!r} not in enum")
            if "minimum" in constraints and number is not None and number < constraints["minimum"]:
                problems.append(f"{where}: {value} < minimum")
            if "maximum" in constraints and number is not None and number > constraints["maximum"]:
                problems.append(f"{where}: {value} > maximum")
            if "pattern" in constraints and not re.fullmatch(constraints["pattern"], value):
                problems.append(f"{where}: {value!r} does not match pattern")
            if constraints.get("unique") or schema.get("primaryKey") == name:
                if value in seen[name]:
                    problems.append(f"{where}: duplicate {value!r}")
                seen[name].add(value)
        for field_name, resource in foreign_keys:
            value = row.get(field_name, "")
            if value not in missing and value not in (foreign or {}).get(resource, set()):
                problems.append(f"{path.name}:{line}:{field_name}: {value!r} not in {resource}")
    return problems[:20]


def published_schema(resource: str) -> dict[str, Any]:
    """The bundled copy of a Camtrap DP 1.0.2 table schema."""
    schema: dict[str, Any] = json.loads(
        (SCHEMA_DIR / f"{resource}-table-schema.json").read_text(encoding="utf-8"))
    return schema


def column(path: Path, name: str) -> set[str]:
    """The set of values of one column."""
    return {row[name] for row in read_csv(path)[1]}


def parse(text: str) -> datetime:
    """A Camtrap DP datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")


def digest_dir(path: Path) -> dict[str, bytes]:
    """File name -> bytes for every file of a directory."""
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


# ------------------------------------------------------------------- fixtures


class Progress:
    """Records progress callbacks."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, n: int) -> None:
        self.calls.append(n)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GeneratedPackage]:
    """One N-observation package per side, default seed."""
    base = tmp_path_factory.mktemp("camtrap")
    return {side: generate_camtrap(base / side, side=side, observations=N) for side in SIDES}


@pytest.fixture(scope="module")
def observations(packages: dict[str, GeneratedPackage]) -> dict[str, list[dict[str, str]]]:
    """Observation rows per side."""
    return {side: read_csv(p.path / "observations.csv")[1] for side, p in packages.items()}


# ------------------------------------------------------- validity against schemas


def test_bundled_schemas_are_present() -> None:
    for resource in ("deployments", "media", "observations"):
        assert (SCHEMA_DIR / f"{resource}-table-schema.json").is_file()


@pytest.mark.parametrize("side", SIDES)
def test_csvs_validate_against_published_table_schemas(
        packages: dict[str, GeneratedPackage], side: Side) -> None:
    path = packages[side].path
    keys: dict[str, set[str]] = {}
    for resource, key in (("deployments", "deploymentID"), ("media", "mediaID"),
                          ("observations", "observationID")):
        problems = validate_table(path / f"{resource}.csv", published_schema(resource), keys)
        assert problems == []
        keys[resource] = column(path / f"{resource}.csv", key)


def test_validator_catches_broken_rows(packages: dict[str, GeneratedPackage],
                                       tmp_path: Path) -> None:
    """The validator is not vacuous: each kind of breakage is reported."""
    header, rows = read_csv(packages["ru"].path / "observations.csv")
    broken = [dict(row) for row in rows[:6]]
    broken[0]["observationType"] = "tiger"  # enum
    broken[1]["count"] = "0"  # minimum
    broken[2]["eventStart"] = "2023-05-01 22:00:00"  # datetime format, no offset
    broken[3]["observationID"] = broken[4]["observationID"]  # primary key
    broken[5]["deploymentID"] = "RU-D9999"  # foreign key
    target = tmp_path / "observations.csv"
    with target.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(broken)
    deployments = column(packages["ru"].path / "deployments.csv", "deploymentID")
    problems = validate_table(target, published_schema("observations"),
                              {"deployments": deployments, "media": set()})
    assert len(problems) == 5
    for needle in ("not in enum", "< minimum", "does not match format", "duplicate",
                   "not in deployments"):
        assert any(needle in p for p in problems), needle


@pytest.mark.parametrize("side", SIDES)
def test_individuals_validate_against_their_inline_schema(
        packages: dict[str, GeneratedPackage], side: Side) -> None:
    path = packages[side].path
    descriptor = json.loads((path / "datapackage.json").read_text(encoding="utf-8"))
    resource = next(r for r in descriptor["resources"] if r["name"] == "individuals")
    assert resource["path"] == "individuals.csv"
    assert validate_table(path / "individuals.csv", resource["schema"]) == []


@pytest.mark.parametrize("side", SIDES)
def test_datapackage_descriptor_follows_the_camtrap_profile(
        packages: dict[str, GeneratedPackage], side: Side) -> None:
    path = packages[side].path
    descriptor = json.loads((path / "datapackage.json").read_text(encoding="utf-8"))
    assert descriptor["profile"] == (
        "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json")
    for required in ("resources", "profile", "created", "contributors", "project", "spatial",
                     "temporal", "taxonomic"):
        assert required in descriptor
    by_name = {r["name"]: r for r in descriptor["resources"]}
    for name in ("deployments", "media", "observations"):
        assert by_name[name]["path"] == f"{name}.csv"
        assert by_name[name]["profile"] == "tabular-data-resource"
        assert by_name[name]["schema"] == (
            f"https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/{name}-table-schema.json")
        assert by_name[name]["schema"] == CAMTRAP_SCHEMA_URLS[name]
    for resource in descriptor["resources"]:
        assert (path / resource["path"]).is_file()
    assert re.fullmatch(r"[a-z0-9._-]+", descriptor["name"])
    assert uuid.UUID(descriptor["id"]).version == 5
    roles = {c["role"] for c in descriptor["contributors"]}
    assert {"rightsHolder", "publisher"} <= roles
    assert roles <= {"contact", "principalInvestigator", "rightsHolder", "publisher",
                     "contributor"}
    assert len(descriptor["licenses"]) >= 2
    assert {lic["scope"] for lic in descriptor["licenses"]} == {"data", "media"}
    project = descriptor["project"]
    for key in ("title", "samplingDesign", "captureMethod", "individualAnimals",
                "observationLevel"):
        assert key in project
    assert project["individualAnimals"] is True
    assert project["observationLevel"] == ["event"]
    assert descriptor["coordinatePrecision"] == 0.0001
    for taxon in descriptor["taxonomic"]:
        assert taxon["taxonRank"] in ("species", "subspecies")
        assert all(re.fullmatch(r"[a-z]{3}", k) for k in taxon["vernacularNames"])
        assert set(taxon["vernacularNames"]) == {"eng", "rus" if side == "ru" else "zho"}
    names = {t["scientificName"] for t in descriptor["taxonomic"]}
    assert {n for row in read_csv(path / "observations.csv")[1]
            if (n := row["scientificName"])} <= names


@pytest.mark.parametrize("side", SIDES)
def test_spatial_and_temporal_cover_the_deployments(
        packages: dict[str, GeneratedPackage], side: Side) -> None:
    path = packages[side].path
    descriptor = json.loads((path / "datapackage.json").read_text(encoding="utf-8"))
    ring = descriptor["spatial"]["coordinates"][0]
    assert descriptor["spatial"]["type"] == "Polygon" and ring[0] == ring[-1]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    deployments = read_csv(path / "deployments.csv")[1]
    for dep in deployments:
        assert min(lats) <= float(dep["latitude"]) <= max(lats)
        assert min(lons) <= float(dep["longitude"]) <= max(lons)
    start = date.fromisoformat(descriptor["temporal"]["start"])
    end = date.fromisoformat(descriptor["temporal"]["end"])
    assert start == min(date.fromisoformat(d["deploymentStart"][:10]) for d in deployments)
    assert end == max(date.fromisoformat(d["deploymentEnd"][:10]) for d in deployments)
    assert date(2023, 1, 1) <= start and end <= date(2024, 12, 31)


# ------------------------------------------------------------- content and realism


@pytest.mark.parametrize("side", SIDES)
def test_every_datetime_carries_the_side_offset(
        packages: dict[str, GeneratedPackage], side: Side) -> None:
    path = packages[side].path
    datetime_fields = {
        "deployments": ("deploymentStart", "deploymentEnd"),
        "media": ("timestamp",),
        "observations": ("eventStart", "eventEnd", "classificationTimestamp"),
        "individuals": ("firstSeen", "lastSeen"),
    }
    pattern = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}" + re.escape(OFFSETS[side]))
    for resource, names in datetime_fields.items():
        for row in read_csv(path / f"{resource}.csv")[1]:
            for name in names:
                assert pattern.fullmatch(row[name]), (resource, name, row[name])


@pytest.mark.parametrize("side", SIDES)
def test_counts_ids_and_namespacing(packages: dict[str, GeneratedPackage], side: Side) -> None:
    package = packages[side]
    prefix = side.upper() + "-"
    deployments = read_csv(package.path / "deployments.csv")[1]
    media = read_csv(package.path / "media.csv")[1]
    observations = read_csv(package.path / "observations.csv")[1]
    assert package.observations == len(observations) == N
    assert package.deployments == len(deployments)
    assert package.media == len(media)
    assert package.individuals == len(read_csv(package.path / "individuals.csv")[1])
    assert len({d["locationID"] for d in deployments}) == camera_count(N)
    for row in deployments:
        assert row["deploymentID"].startswith(prefix + "D")
        assert row["locationID"].startswith(prefix + "L")
    for row in media:
        assert row["mediaID"].startswith(prefix + "M")
        assert row["filePath"] == f"media/{row['deploymentID']}/{row['fileName']}"
        assert row["fileName"].endswith(".JPG") and row["fileMediatype"] == "image/jpeg"
    for row in observations:
        assert row["observationID"].startswith(prefix + "O")
        assert row["eventID"].startswith(prefix + "E")
        assert row["observationLevel"] == "event" and row["mediaID"] == ""
        if row["classificationMethod"] == "machine":
            assert 0 < float(row["classificationProbability"]) <= 1
        else:
            assert row["classificationProbability"] == ""


@pytest.mark.parametrize("side", SIDES)
def test_cameras_stand_on_their_own_side_of_the_border(
        packages: dict[str, GeneratedPackage], side: Side) -> None:
    for dep in read_csv(packages[side].path / "deployments.csv")[1]:
        lat, lon = float(dep["latitude"]), float(dep["longitude"])
        assert 42.7 <= lat <= 43.7 and 130.3 <= lon <= 131.5
        assert re.fullmatch(r"\d+\.\d{4,5}", dep["latitude"])
        if side == "ru":
            assert lon > border_longitude(lat)
        else:
            assert lon < border_longitude(lat)


@pytest.mark.parametrize("side", SIDES)
def test_timestamps_fall_inside_their_deployment(
        packages: dict[str, GeneratedPackage], side: Side,
        observations: dict[str, list[dict[str, str]]]) -> None:
    path = packages[side].path
    periods = {d["deploymentID"]: (parse(d["deploymentStart"]), parse(d["deploymentEnd"]))
               for d in read_csv(path / "deployments.csv")[1]}
    for start, end in periods.values():
        assert 59 <= (end - start).days <= 122  # 2-4 months
    for row in read_csv(path / "media.csv")[1]:
        start, end = periods[row["deploymentID"]]
        assert start <= parse(row["timestamp"]) <= end
    for row in observations[side]:
        start, end = periods[row["deploymentID"]]
        event_start, event_end = parse(row["eventStart"]), parse(row["eventEnd"])
        assert start <= event_start <= event_end <= end
        if row["classificationTimestamp"]:
            assert parse(row["classificationTimestamp"]) > end


@pytest.mark.parametrize("side", SIDES)
def test_every_event_has_one_to_three_images_inside_it(
        packages: dict[str, GeneratedPackage], side: Side,
        observations: dict[str, list[dict[str, str]]]) -> None:
    """Media and events line up, and tiger/leopard images are never public."""
    media_by_deployment: dict[str, list[tuple[datetime, str]]] = {}
    for row in read_csv(packages[side].path / "media.csv")[1]:
        media_by_deployment.setdefault(row["deploymentID"], []).append(
            (parse(row["timestamp"]), row["filePublic"]))
    events: dict[str, dict[str, str]] = {}
    for row in observations[side]:
        events.setdefault(row["eventID"], row)
    for event in events.values():
        start, end = parse(event["eventStart"]), parse(event["eventEnd"])
        images = [public for ts, public in media_by_deployment[event["deploymentID"]]
                  if start <= ts <= end]
        assert len(images) >= 1
        if event["scientificName"] in CATS:
            assert set(images) == {"false"}
    total_media = sum(len(v) for v in media_by_deployment.values())
    assert len(events) <= total_media <= 3 * len(events)


def test_species_mix_is_sensible(observations: dict[str, list[dict[str, str]]]) -> None:
    for rows in observations.values():
        names = Counter(row["scientificName"] for row in rows if row["observationType"] == "animal")
        types = Counter(row["observationType"] for row in rows)
        assert set(names) >= PREY | CATS
        cats, prey = sum(names[n] for n in CATS), sum(names[n] for n in PREY)
        assert 0 < cats < prey / 3
        assert names["Capreolus pygargus"] > max(names[n] for n in CATS)
        assert names["Sus scrofa"] > max(names[n] for n in CATS)
        assert {"human", "vehicle", "blank"} <= set(types)
        assert types["animal"] > len(rows) / 2
        for row in rows:
            if row["count"]:
                assert int(row["count"]) >= 1
            if row["observationType"] == "blank":
                assert row["scientificName"] == "" and row["count"] == ""


def test_domestic_cattle_mostly_on_the_chinese_side(
        observations: dict[str, list[dict[str, str]]]) -> None:
    cattle = {side: sum(r["scientificName"] == "Bos taurus" for r in rows)
              for side, rows in observations.items()}
    assert cattle["cn"] > 3 * cattle["ru"]


def test_cats_are_mostly_nocturnal_and_people_diurnal(
        observations: dict[str, list[dict[str, str]]]) -> None:
    for side, rows in observations.items():
        def night_share(keep: Callable[[dict[str, str]], bool], rows: Iterable[dict[str, str]]
                        = rows, side: str = side) -> float:
            # Local solar hour at ~131°E is UTC+8.7: shift the clock time to solar time.
            hours = [(parse(r["eventStart"]).hour - UTC_HOURS[side] + 8.7) % 24
                     for r in rows if keep(r)]
            return sum(h >= 19 or h < 5 for h in hours) / len(hours)

        assert night_share(lambda r: r["scientificName"] in CATS) > 0.5
        assert night_share(lambda r: r["observationType"] in ("human", "vehicle")) < 0.1


def test_each_park_names_the_same_animals_in_its_own_scheme() -> None:
    registry = individual_registry(2024)
    assert registry == individual_registry(2024)
    assert registry != individual_registry(7)
    assert len({i.individual_id for i in registry}) == 40
    ru = [i.ru_id for i in registry if i.ru_id]
    cn = [i.cn_id for i in registry if i.cn_id]
    assert len(ru) == len(set(ru)) and len(cn) == len(set(cn))
    assert all(re.fullmatch(r"(PPO|PTA)-RU-\d{3}", i) for i in ru)
    assert all(re.fullmatch(r"CN-[LT]\d{2}", i) for i in cn)
    for ind in registry:
        assert (ind.ru_id is not None) == ind.ranges_on("ru")
        assert (ind.cn_id is not None) == ind.ranges_on("cn")
        letter = "L" if ind.scientific_name == "Panthera pardus orientalis" else "T"
        if ind.cn_id:
            assert ind.cn_id.startswith(f"CN-{letter}")
    truth = cross_border_truth(2024)
    assert set(truth) == {i.individual_id for i in registry if i.transboundary}
    assert 0 < len(truth) < len(registry)
    # Unrelated numbering: the two names of one animal do not share a number.
    assert sum(r[-2:] == c[-2:] for r, c in truth.values()) < len(truth) // 2
    assert {i.home_range for i in registry} == {"ru", "cn", "both"}


def test_border_crossers_appear_on_both_sides_under_two_names(
        packages: dict[str, GeneratedPackage],
        observations: dict[str, list[dict[str, str]]]) -> None:
    registry = individual_registry(2024)
    by_local = {side: {i.local_id(side): i for i in registry if i.ranges_on(side)}
                for side in SIDES}
    seen = {side: {r["individualID"] for r in rows if r["individualID"]}
            for side, rows in observations.items()}
    assert not seen["ru"] & seen["cn"]  # no name is shared across the border
    animals = {side: {by_local[side][i].individual_id for i in seen[side]} for side in SIDES}
    on_both = animals["ru"] & animals["cn"]
    crossers = set(cross_border_truth(2024))
    assert on_both <= crossers  # nobody else crosses
    assert len(on_both) >= len(crossers) * 3 // 4
    assert any(i.startswith("PPO-") for i in on_both)
    assert any(i.startswith("PTA-") for i in on_both)
    for side in SIDES:
        assert seen[side] <= set(by_local[side])
        rows = read_csv(packages[side].path / "individuals.csv")[1]
        assert {r["individualID"] for r in rows} == seen[side]
        detections = Counter(r["individualID"] for r in observations[side] if r["individualID"])
        for row in rows:
            ind = by_local[side][row["individualID"]]
            assert int(row["detections"]) == detections[row["individualID"]]
            assert (row["scientificName"], row["sex"]) == (ind.scientific_name, ind.sex)
        flagged = {by_local[side][r["individualID"]].individual_id for r in rows
                   if r["transboundary"] == "true"}
        assert flagged & on_both  # the border cameras flag crossers for matching


def test_identified_cats_carry_their_registry_attributes(
        observations: dict[str, list[dict[str, str]]]) -> None:
    registry = individual_registry(2024)
    for side, rows in observations.items():
        by_local = {i.local_id(side): i for i in registry if i.ranges_on(side)}
        cats = [r for r in rows if r["scientificName"] in CATS and r["lifeStage"] != "juvenile"]
        identified = [r for r in cats if r["individualID"]]
        assert len(identified) > 0.7 * len(cats)
        for row in identified:
            ind = by_local[row["individualID"]]
            assert row["scientificName"] == ind.scientific_name
            assert row["sex"] == ind.sex and row["lifeStage"] == ind.life_stage
            assert row["classificationMethod"] == "human"
        assert all(not r["individualID"] for r in rows if r["scientificName"] not in CATS)


# ------------------------------------------------------------ determinism, progress


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    for side in SIDES:
        first = generate_camtrap(tmp_path / f"a-{side}", side=side, observations=2_000)
        second = generate_camtrap(tmp_path / f"b-{side}", side=side, observations=2_000)
        assert first.observations == second.observations == 2_000
        assert digest_dir(first.path) == digest_dir(second.path)
    birds_a = generate_bird_counts(tmp_path / "birds-a")
    birds_b = generate_bird_counts(tmp_path / "birds-b")
    assert [p.read_bytes() for p in birds_a] == [p.read_bytes() for p in birds_b]


def test_a_different_seed_gives_different_data(tmp_path: Path) -> None:
    a = generate_camtrap(tmp_path / "a", side="ru", observations=2_000, seed=1)
    b = generate_camtrap(tmp_path / "b", side="ru", observations=2_000, seed=2)
    for name in ("deployments.csv", "media.csv", "observations.csv", "datapackage.json"):
        assert (a.path / name).read_bytes() != (b.path / name).read_bytes()
    birds_a = generate_bird_counts(tmp_path / "birds-a", seed=1)
    birds_b = generate_bird_counts(tmp_path / "birds-b", seed=2)
    assert birds_a[1].read_bytes() != birds_b[1].read_bytes()


def test_package_ids_are_deterministic_per_side_and_seed(tmp_path: Path) -> None:
    def package_id(side: Side, seed: int, name: str) -> str:
        package = generate_camtrap(tmp_path / name, side=side, observations=10, seed=seed)
        descriptor = json.loads((package.path / "datapackage.json").read_text(encoding="utf-8"))
        return str(descriptor["id"])

    assert package_id("ru", 5, "a") == package_id("ru", 5, "b")
    assert package_id("ru", 5, "c") != package_id("cn", 5, "d")
    assert package_id("ru", 5, "e") != package_id("ru", 6, "f")


def test_progress_is_reported_about_every_ten_thousand_rows(tmp_path: Path) -> None:
    progress = Progress()
    package = generate_camtrap(tmp_path / "p", side="cn", observations=25_000,
                               progress=progress)
    assert package.observations == 25_000
    assert progress.calls == sorted(progress.calls)
    assert progress.calls[-1] == 25_000
    assert len(progress.calls) == 3
    assert 10_000 <= progress.calls[0] <= 10_001 and 20_000 <= progress.calls[1] <= 20_001


def test_small_and_empty_packages(tmp_path: Path) -> None:
    progress = Progress()
    empty = generate_camtrap(tmp_path / "empty", side="ru", observations=0, progress=progress)
    assert (empty.observations, empty.media, empty.individuals) == (0, 0, 0)
    assert empty.deployments > 0
    assert progress.calls == [0]
    keys = {"deployments": column(empty.path / "deployments.csv", "deploymentID")}
    for resource in ("deployments", "media", "observations"):
        assert validate_table(empty.path / f"{resource}.csv", published_schema(resource),
                              keys | {"media": set()}) == []
    assert generate_camtrap(tmp_path / "one", side="cn", observations=1).observations == 1


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="side"):
        generate_camtrap(tmp_path / "x", side="kp", observations=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="observations"):
        generate_camtrap(tmp_path / "y", side="ru", observations=-1)


def test_camera_count_scales_modestly() -> None:
    assert camera_count(5_000) == 60
    assert camera_count(20_000) == 60
    assert 60 < camera_count(100_000) < 400
    assert camera_count(1_000_000) == 400


# ----------------------------------------------------------------- bird counts


@pytest.fixture(scope="module")
def birds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The default bird-count dataset."""
    return generate_bird_counts(tmp_path_factory.mktemp("birds"))


def test_bird_counts_are_a_darwin_core_sampling_event_dataset(birds: tuple[Path, Path]) -> None:
    events_path, occurrences_path = birds
    assert events_path.name == "events.csv" and occurrences_path.name == "occurrences.csv"
    header, events = read_csv(events_path)
    assert tuple(header) == EVENT_FIELDS
    header, occurrences = read_csv(occurrences_path)
    assert tuple(header) == OCCURRENCE_FIELDS
    assert 200 <= len(events) <= 500
    event_ids = [e["eventID"] for e in events]
    assert len(set(event_ids)) == len(event_ids)
    for event in events:
        day = date.fromisoformat(event["eventDate"])
        assert date(2022, 1, 1) <= day <= date(2024, 12, 31)
        assert -90 <= float(event["decimalLatitude"]) <= 90
        assert -180 <= float(event["decimalLongitude"]) <= 180
        assert re.fullmatch(r"[A-Z]{2}", event["countryCode"])
        assert event["geodeticDatum"] == "EPSG:4326"
        assert int(event["coordinateUncertaintyInMeters"]) >= 1
        assert int(event["sampleSizeValue"]) > 0 and event["sampleSizeUnit"] == "minutes"
    assert {e["countryCode"] for e in events} == {"RU", "CN", "JP", "KR", "MN", "TW", "HK"}
    occurrence_ids = [o["occurrenceID"] for o in occurrences]
    assert len(set(occurrence_ids)) == len(occurrence_ids)
    for occ in occurrences:
        assert occ["eventID"] in set(event_ids)
        count = int(occ["individualCount"])
        assert count >= 0
        assert occ["occurrenceStatus"] == ("present" if count else "absent")
        assert occ["basisOfRecord"] == "HumanObservation"
        assert (occ["taxonRank"], occ["kingdom"]) == ("species", "Animalia")


def test_bird_counts_use_both_names_of_the_white_naped_crane(birds: tuple[Path, Path]) -> None:
    occurrences = read_csv(birds[1])[1]
    names = Counter(o["scientificName"] for o in occurrences if o["occurrenceStatus"] == "present")
    assert {"Platalea minor", "Grus monacha", "Antigone vipio", "Grus vipio"} <= set(names)
    vernacular = {o["scientificName"]: o["vernacularName"] for o in occurrences}
    assert vernacular["Grus vipio"] == vernacular["Antigone vipio"] == "White-naped Crane"


def test_bird_counts_follow_the_seasons(birds: tuple[Path, Path]) -> None:
    """Hooded Cranes winter at Izumi in thousands; nobody counts them there in summer."""
    events = {e["eventID"]: e for e in read_csv(birds[0])[1]}
    izumi = [int(o["individualCount"]) for o in read_csv(birds[1])[1]
             if o["scientificName"] == "Grus monacha"
             and events[o["eventID"]]["locationID"] == "IZUMI"
             and events[o["eventID"]]["eventDate"][5:7] in ("01", "12")]
    assert izumi and min(izumi) > 1_000
    months = {e["eventDate"][5:7] for e in events.values() if e["locationID"] == "IZUMI"}
    assert months.isdisjoint({"05", "06", "07", "08"})


def test_every_wintering_site_is_counted_in_the_census_window(birds: tuple[Path, Path]) -> None:
    month, first, last = CENSUS_WINDOW
    events = read_csv(birds[0])[1]
    census = [e for e in events if e["samplingProtocol"].startswith("Coordinated winter census")]
    for year in (2022, 2023, 2024):
        inside = {e["locationID"] for e in census
                  if date.fromisoformat(e["eventDate"]) in
                  {date(year, month, d) for d in range(first, last + 1)}}
        assert {"YANCHENG", "IZUMI", "CHEORWON", "ZENGWEN", "MAIPO", "HADO"} <= inside
    days = Counter((e["locationID"], e["eventDate"][:4]) for e in census
                   if first <= int(e["eventDate"][8:]) <= last)
    assert max(days.values()) == 2  # some sites twice in the window: the census takes the max
    assert any(int(e["eventDate"][8:]) > last for e in census)  # and some after it
