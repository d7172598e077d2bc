"""Tests for node.data.dwc: Camtrap DP 1.0.2 -> Darwin Core Occurrence.

The golden file is camtrapdp's own ``write_dwc()`` snapshot for the official
Camtrap DP example package (see SOURCE.txt next to the data).
"""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from node.data.dwc import DWC_OCCURRENCE_FIELDS, camtrap_to_dwc, write_dwc_csv

# The shared reference data sits beside the repository (../shared/data).
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "camtrap-dp-example"
if not DATA.exists():
    pytest.skip(f"reference data not found at {DATA}", allow_module_level=True)
GOLDEN = DATA / "dwc_expected" / "occurrence.csv"
MISSING = {"", "NA", "NaN", "nan"}

Row = dict[str, Any]


# --- Test-local loader: CSV text -> typed rows, by the table schema -----------


def _convert(raw: str, kind: str) -> Any:
    if raw in MISSING:
        return None
    if kind == "integer":
        return int(raw)
    if kind == "number":
        return float(raw)
    if kind == "boolean":
        return {"true": True, "false": False}[raw]
    return raw  # string, datetime (verbatim ISO 8601 text), any


def load_table(name: str) -> list[Row]:
    """Read ``<name>.csv`` converting each field by its schema ``type``."""
    schema = json.loads((DATA / "schemas_1.0.2" / f"{name}-table-schema.json").read_text())
    types = {f["name"]: f["type"] for f in schema["fields"]}
    with (DATA / f"{name}.csv").open(newline="", encoding="utf-8") as f:
        return [
            {key: _convert(raw, types[key]) for key, raw in row.items()}
            for row in csv.DictReader(f)
        ]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def caller_order(observations: list[Row]) -> list[Row]:
    """What the caller's ORDER BY supplies: deploymentID, eventStart (UTC), row order."""
    return sorted(observations, key=lambda o: (o["deploymentID"], _utc(o["eventStart"])))


@cache
def _example() -> tuple[Row, list[Row], list[Row], list[Row]]:
    package = json.loads((DATA / "datapackage.json").read_text(encoding="utf-8"))
    return package, load_table("deployments"), load_table("media"), load_table("observations")


@pytest.fixture
def example() -> tuple[Row, list[Row], list[Row], list[Row]]:
    """A fresh deep copy of the example package, so tests may edit it."""
    return copy.deepcopy(_example())


@pytest.fixture
def golden() -> tuple[list[str], list[dict[str, str]]]:
    with GOLDEN.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def convert(
    package: Row,
    deployments: list[Row],
    media: list[Row],
    observations: list[Row],
) -> list[dict[str, str]]:
    return list(camtrap_to_dwc(package, deployments, media, caller_order(observations)))


def _diff(actual: Mapping[str, str], expected: Mapping[str, str]) -> str:
    keys = list(expected) + [k for k in actual if k not in expected]
    return "\n".join(
        f"  {k}: got {actual.get(k)!r}, want {expected.get(k)!r}"
        for k in keys
        if actual.get(k) != expected.get(k)
    )


def _event_animal(observations: list[Row]) -> Row:
    """A copy of the first event-level animal observation of the example."""
    return dict(
        next(
            o
            for o in observations
            if o["observationLevel"] == "event" and o["observationType"] == "animal"
        )
    )


# --- The golden file -----------------------------------------------------------


def test_fields_match_golden_header(golden: tuple[list[str], list[dict[str, str]]]) -> None:
    header, _ = golden
    assert list(DWC_OCCURRENCE_FIELDS) == header


def test_example_matches_write_dwc_golden_file(
    example: tuple[Row, list[Row], list[Row], list[Row]],
    golden: tuple[list[str], list[dict[str, str]]],
) -> None:
    header, expected = golden
    actual = convert(*example)

    assert len(expected) == 29
    assert [r["occurrenceID"] for r in actual] == [r["occurrenceID"] for r in expected]
    for position, (got, want) in enumerate(zip(actual, expected, strict=True)):
        assert list(got) == header, f"row {position}: columns out of order"
        assert got == want, f"row {position} ({want['occurrenceID']}):\n{_diff(got, want)}"


def test_written_csv_is_byte_identical_to_golden_file(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    out = io.StringIO(newline="")
    count = write_dwc_csv(convert(*example), out)

    assert count == 29
    assert out.getvalue() == GOLDEN.read_text(encoding="utf-8")


# --- Which observations are published --------------------------------------------


def test_media_level_and_non_animal_observations_are_excluded(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, deployments, media, observations = example
    base = _event_animal(observations)
    media_level = {**base, "observationID": "m1", "observationLevel": "media"}
    others = [
        {**base, "observationID": f"t-{kind}", "observationType": kind}
        for kind in ("human", "vehicle", "blank", "unknown", "unclassified")
    ]

    rows = convert(package, deployments, media, [base, media_level, *others])

    assert [r["occurrenceID"] for r in rows] == [base["observationID"]]
    # The example itself has many media-level and non-animal rows: only 29 survive.
    assert sum(1 for o in observations if o["observationLevel"] == "media") > 0
    assert len(convert(*example)) == 29


def test_gbif_ingestion_can_select_media_level_instead(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, deployments, media, observations = example
    package["gbifIngestion"] = {"observationLevel": "media"}
    expected = {
        o["observationID"]
        for o in observations
        if o["observationLevel"] == "media" and o["observationType"] == "animal"
    }

    rows = convert(package, deployments, media, observations)

    assert {r["occurrenceID"] for r in rows} == expected
    assert len(rows) == len(expected) > 29


def test_empty_observations_yield_nothing_and_csv_has_only_header(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, deployments, media, _ = example
    rows = list(camtrap_to_dwc(package, deployments, media, iter(())))
    out = io.StringIO(newline="")

    assert rows == []
    assert write_dwc_csv(rows, out) == 0
    assert out.getvalue() == ",".join(DWC_OCCURRENCE_FIELDS) + "\n"


# --- Streaming -------------------------------------------------------------------------


def test_observations_are_consumed_lazily(
    example: tuple[Row, list[Row], list[Row], list[Row]],
    golden: tuple[list[str], list[dict[str, str]]],
) -> None:
    package, deployments, media, observations = example
    ordered = caller_order(observations)
    pulled: list[str] = []

    def exploding(limit: int) -> Iterator[Row]:
        for observation in ordered[:limit]:
            pulled.append(observation["observationID"])
            yield observation
        raise RuntimeError("stream consumed past the first rows")

    stream = camtrap_to_dwc(package, deployments, media, exploding(1))
    assert pulled == []  # nothing read before the first row is asked for

    first = next(stream)

    assert first == golden[1][0]
    assert pulled == [ordered[0]["observationID"]]
    with pytest.raises(RuntimeError, match="consumed past"):
        next(stream)


def test_media_is_not_consumed(example: tuple[Row, list[Row], list[Row], list[Row]]) -> None:
    package, deployments, _, observations = example

    def untouchable() -> Iterator[Row]:
        raise AssertionError("media must not be read")
        yield {}  # pragma: no cover

    rows = list(camtrap_to_dwc(package, deployments, untouchable(), caller_order(observations)))

    assert len(rows) == 29


# --- Errors -------------------------------------------------------------------------------


def test_unknown_deployment_raises(example: tuple[Row, list[Row], list[Row], list[Row]]) -> None:
    package, deployments, media, observations = example
    orphan = {**_event_animal(observations), "observationID": "orphan", "deploymentID": "nope"}

    with pytest.raises(ValueError, match=r"observation 'orphan' references unknown deployment"):
        list(camtrap_to_dwc(package, deployments, media, [orphan]))


def test_excluded_observation_with_unknown_deployment_is_ignored(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, deployments, media, observations = example
    blank = {
        **_event_animal(observations),
        "observationType": "blank",
        "deploymentID": "nope",
    }

    assert list(camtrap_to_dwc(package, deployments, media, [blank])) == []


def test_out_of_order_observations_raise(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, deployments, media, observations = example
    ordered = caller_order(observations)

    with pytest.raises(ValueError, match="out of order"):
        list(camtrap_to_dwc(package, deployments, media, reversed(ordered)))


def test_order_compares_event_start_as_instant_not_text(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, deployments, media, observations = example
    base = _event_animal(observations)
    # 04:00+02:00 is 02:00Z, earlier than 03:00Z although its text sorts later.
    early = {
        **base,
        "observationID": "a",
        "eventStart": "2020-06-01T04:00:00+02:00",
        "eventEnd": "2020-06-01T04:00:05+02:00",
    }
    late = {
        **base,
        "observationID": "b",
        "eventStart": "2020-06-01T03:00:00Z",
        "eventEnd": "2020-06-01T03:00:05Z",
    }

    rows = list(camtrap_to_dwc(package, deployments, media, [early, late]))

    assert [r["eventDate"] for r in rows] == [
        "2020-06-01T02:00:00Z/2020-06-01T02:00:05Z",
        "2020-06-01T03:00:00Z/2020-06-01T03:00:05Z",
    ]
    with pytest.raises(ValueError, match="out of order"):
        list(camtrap_to_dwc(package, deployments, media, [late, early]))


def test_duplicate_deployment_raises(example: tuple[Row, list[Row], list[Row], list[Row]]) -> None:
    package, deployments, media, observations = example

    with pytest.raises(ValueError, match="duplicate deploymentID '00a2c20d'"):
        camtrap_to_dwc(package, [*deployments, deployments[0]], media, observations)


def test_deployment_without_end_raises(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, deployments, media, observations = example
    deployments[0]["deploymentEnd"] = None

    with pytest.raises(ValueError, match="has no deploymentStart or deploymentEnd"):
        camtrap_to_dwc(package, deployments, media, observations)


def test_unknown_feature_type_raises(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, deployments, media, observations = example
    deployments[0]["featureType"] = "volcano"

    with pytest.raises(ValueError, match="unknown featureType 'volcano'"):
        camtrap_to_dwc(package, deployments, media, observations)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30/05/2020 02:57", "is not an ISO 8601 datetime"),
        ("2020-05-30T02:57:37", "has no UTC offset"),
    ],
)
def test_bad_event_start_raises(
    example: tuple[Row, list[Row], list[Row], list[Row]],
    value: str,
    message: str,
) -> None:
    package, deployments, media, observations = example
    observation = {**_event_animal(observations), "eventStart": value}

    with pytest.raises(ValueError, match=message):
        list(camtrap_to_dwc(package, deployments, media, [observation]))


def test_missing_event_start_raises(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, deployments, media, observations = example
    observation = {**_event_animal(observations), "eventStart": None}

    with pytest.raises(ValueError, match="has no eventStart"):
        list(camtrap_to_dwc(package, deployments, media, [observation]))


# --- Mapping details beyond the example --------------------------------------------------


def _one_row(
    example: tuple[Row, list[Row], list[Row], list[Row]],
    **changes: Any,
) -> dict[str, str]:
    package, deployments, media, observations = example
    observation = {**_event_animal(observations), **changes}
    (row,) = camtrap_to_dwc(package, deployments, media, [observation])
    return row


def test_event_without_duration_is_a_single_instant(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    row = _one_row(example, eventStart="2020-06-01T04:00:00+02:00", eventEnd="2020-06-01T02:00:00Z")

    assert row["eventDate"] == "2020-06-01T02:00:00Z"


def test_human_classification_with_full_certainty_is_verified(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    verified = _one_row(example, classificationMethod="human", classificationProbability=1.0)
    machine = _one_row(example, classificationMethod="machine", classificationProbability=1.0)
    unknown = _one_row(example, classificationMethod=None, classificationProbability=0.57)

    assert verified["identificationVerificationStatus"] == "verified using recorded media"
    assert verified["identificationRemarks"] == "classified by a human with 100% certainty"
    assert machine["identificationVerificationStatus"] == ""
    assert unknown["identificationRemarks"] == "classified with 57% certainty"


def test_event_remarks_combine_setup_tags_and_comments(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, deployments, media, observations = example
    deployment = deployments[0]
    deployment.update(baitUse=True, featureType=None, deploymentComments="moved once")
    observation = {**_event_animal(observations), "observationTags": "a:b | c"}

    (row,) = camtrap_to_dwc(package, deployments, media, [observation])
    deployment.update(baitUse=None, featureType=None, deploymentComments=None)
    (bare,) = camtrap_to_dwc(package, deployments, media, [observation])
    deployment.update(baitUse=None, featureType="burrow")
    (feature_only,) = camtrap_to_dwc(
        package, deployments, media, [{**observation, "observationTags": None}]
    )

    assert row["eventRemarks"] == "camera trap with bait | tags: a:b | c | moved once"
    assert bare["eventRemarks"] == " | tags: a:b | c"  # as R's paste0() builds it
    assert feature_only["eventRemarks"] == "camera trap near burrow"


def test_taxon_id_first_taxonomic_entry_wins_and_unknown_is_empty(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, _, _, _ = example
    package["taxonomic"].insert(0, {"scientificName": "Anas platyrhynchos", "taxonID": "first"})

    first = _one_row(example, scientificName="Anas platyrhynchos")
    unknown = _one_row(example, scientificName="Castor fiber")

    assert first["taxonID"] == "first"
    assert (unknown["taxonID"], unknown["scientificName"]) == ("", "Castor fiber")


def test_missing_metadata_gives_empty_record_terms(
    example: tuple[Row, list[Row], list[Row], list[Row]],
) -> None:
    package, _, _, _ = example
    for key in ("coordinatePrecision", "licenses", "contributors", "sources", "id", "title"):
        del package[key]

    row = _one_row(example)

    for term in (
        "dataGeneralizations",
        "coordinatePrecision",
        "license",
        "rightsHolder",
        "collectionCode",
        "datasetID",
        "datasetName",
    ):
        assert row[term] == "", term
    assert row["type"] == "Image"
    assert row["kingdom"] == "Animalia"


@pytest.mark.parametrize(
    ("precision", "generalization", "column"),
    [
        (0.001, "coordinates rounded to 0.001 degree", "0.001"),
        (0.01, "coordinates rounded to 0.01 degree", "0.01"),
        # R's paste() and readr's writer disagree below 0.001; both are reproduced.
        (0.0001, "coordinates rounded to 1e-04 degree", "1e-4"),
        (1, "coordinates rounded to 1 degree", "1"),
        (1.0, "coordinates rounded to 1 degree", "1"),
    ],
)
def test_coordinate_precision_prints_as_r_does(
    example: tuple[Row, list[Row], list[Row], list[Row]],
    precision: float,
    generalization: str,
    column: str,
) -> None:
    example[0]["coordinatePrecision"] = precision

    row = _one_row(example)

    assert (row["dataGeneralizations"], row["coordinatePrecision"]) == (generalization, column)


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (1.3, "1.3"),
        (1.0, "1"),
        (0.7, "0.7"),
        (51.496, "51.496"),
        (-4.5, "-4.5"),
        (0.0, "0"),
        (12.25, "12.25"),
        (0.05, "0.05"),
        (0.00012, "1.2e-4"),
        (100000.0, "100000"),
        (1e20, "1e20"),
        (None, ""),
    ],
)
def test_numeric_columns_print_as_readr_does(
    example: tuple[Row, list[Row], list[Row], list[Row]],
    value: float | None,
    printed: str,
) -> None:
    package, deployments, media, observations = example
    deployments[0]["cameraHeight"] = value

    (row,) = camtrap_to_dwc(package, deployments, media, [_event_animal(observations)])

    assert row["minimumDistanceAboveSurfaceInMeters"] == printed
    assert row["maximumDistanceAboveSurfaceInMeters"] == printed


def test_csv_quotes_only_when_needed() -> None:
    row = dict.fromkeys(DWC_OCCURRENCE_FIELDS, "")
    row.update(occurrenceID="a,b", occurrenceRemarks='say "hi"', behavior="line\nbreak")
    out = io.StringIO(newline="")

    write_dwc_csv([row], out)

    (parsed,) = csv.DictReader(io.StringIO(out.getvalue(), newline=""))
    assert parsed == row
    assert '"a,b"' in out.getvalue()
    assert '"say ""hi"""' in out.getvalue()


def test_csv_rejects_unknown_columns() -> None:
    with pytest.raises(ValueError):
        write_dwc_csv([{"notATerm": "x"}], io.StringIO())
