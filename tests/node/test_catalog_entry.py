"""Catalog entries built on the node: coarse, signed, and free of rows and identifiers."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.canonical import canonical_json
from crypto.errors import InvalidSignature
from crypto.jws import verify_compact
from crypto.keys import KeySet, SigningKey
from node.data.catalog import CATALOG_TYP, catalog_entry, rounded_bbox, sign_entry
from node.data.datasets import get_dataset
from node.data.importer import Importer
from node.models import Dataset

NOW = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _dataset(**overrides: Any) -> Dataset:
    values: dict[str, Any] = {
        "name": "cranes", "version": 3, "profile": "dwc-event", "title": "Crane counts",
        "description": "Monthly counts.", "licenses": [], "taxa": [], "counts": {},
        "temporal_start": "2020-01-01", "temporal_end": "2020-12-31",
        "bbox_west": 130.2, "bbox_south": 42.6, "bbox_east": 131.9, "bbox_north": 43.4,
    }
    values.update(overrides)
    return Dataset(**values)


def _entry(dataset: Dataset, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"member_id": "ru-lotl", "country": "RU",
                              "contact": "science@leopard-land.ru",
                              "tiers": ["aggregate", "generalized"], "now": NOW}
    kwargs.update(overrides)
    return catalog_entry(dataset, **kwargs)


def _ids(path: Path, column: str) -> set[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {row[column] for row in csv.DictReader(fh) if row[column]}


@pytest.mark.storage
def test_camtrap_example_entry(engine: sa.Engine, camtrap_example: Path) -> None:
    Importer(engine).import_camtrap(camtrap_example)
    with Session(engine) as session:
        dataset = get_dataset(session, "camtrap-dp-example-dataset")
        entry = _entry(dataset)
    assert entry == {
        "id": "ru-lotl/camtrap-dp-example-dataset",
        "member_id": "ru-lotl",
        "dataset": "camtrap-dp-example-dataset",
        "country": "RU",
        "title": dataset.title,
        "description": dataset.description,
        "profile": "camtrap-dp",
        # Accepted names: the example's Anas strepera is the IOC list's Mareca strepera.
        "taxa": ["Anas platyrhynchos", "Ardea", "Ardea cinerea", "Aves", "Mareca strepera",
                 "Martes foina", "Mustela putorius", "Rattus norvegicus", "Vulpes vulpes"],
        "temporal": {"start": "2020-05-30", "end": "2021-04-18"},
        # [4.013, 50.699, 5.659, 51.496] rounded outward.
        "spatial": {"bbox": [4, 50, 6, 52]},
        "counts": {"deployments": 4, "individuals": 1, "media": 423, "observations": 549},
        "licence": "CC0-1.0",  # the licence with scope "data", not the media one
        "contact": "science@leopard-land.ru",
        "tiers": ["aggregate", "generalized"],
        "version": 1,
        "published_at": "2025-03-01T09:30:15Z",
        "iat": int(NOW.timestamp()),
    }


@pytest.mark.storage
def test_entries_carry_no_identifier_and_no_fine_coordinate(
        engine: sa.Engine, camtrap_example: Path, arocha: Path) -> None:
    importer = Importer(engine)
    importer.import_camtrap(camtrap_example)
    importer.import_dwc(arocha / "events.csv", arocha / "occurrences.csv", name="arocha")
    identifiers = (
        _ids(camtrap_example / "deployments.csv", "deploymentID")
        | _ids(camtrap_example / "deployments.csv", "locationID")
        | _ids(camtrap_example / "media.csv", "mediaID")
        | _ids(camtrap_example / "observations.csv", "observationID")
        | _ids(camtrap_example / "observations.csv", "eventID")
        | _ids(arocha / "events.csv", "eventID")
        | _ids(arocha / "occurrences.csv", "occurrenceID")
        | {"Reinaert"}  # the example's one named individual (inline resource)
    )
    assert len(identifiers) > 8000
    with Session(engine) as session:
        entries = [_entry(get_dataset(session, name))
                   for name in ("camtrap-dp-example-dataset", "arocha")]
    for entry in entries:
        text = canonical_json(entry).decode()
        leaked = [i for i in identifiers if i in text]
        assert not leaked
        assert "latitude" not in text and "decimalLatitude" not in text
        assert not re.search(r"(?<![\w./:-])-?\d{1,3}\.\d+", text.replace(
            "http://creativecommons.org/publicdomain/zero/1.0/legalcode", ""))
        assert all(isinstance(v, int) for v in entry["spatial"]["bbox"])
    arocha_entry = entries[1]
    # Sabaki and Mida Creek, Kenya: -3.33..-3.17 S, 39.97..40.14 E.
    assert arocha_entry["spatial"]["bbox"] == [39, -4, 41, -3]
    assert arocha_entry["profile"] == "dwc-event"
    assert arocha_entry["counts"] == {"events": 257, "occurrences": 7644}
    assert arocha_entry["licence"] == "http://creativecommons.org/publicdomain/zero/1.0/legalcode"
    assert arocha_entry["description"] is None


def test_sign_entry_is_a_verifiable_jws_of_canonical_json() -> None:
    key = SigningKey.generate()
    entry = _entry(_dataset())
    token = sign_entry(entry, key)
    verified = verify_compact(token, KeySet([key.public_key]), expected_typ=CATALOG_TYP)
    assert verified.payload == canonical_json(entry)
    assert verified.header == {"alg": "Ed25519", "kid": key.kid, "typ": CATALOG_TYP}
    assert json.loads(verified.payload) == entry


def test_signed_entry_fails_with_another_key_or_typ() -> None:
    token = sign_entry(_entry(_dataset()), SigningKey.generate())
    with pytest.raises(InvalidSignature):
        verify_compact(token, KeySet([SigningKey.generate().public_key]),
                       expected_typ=CATALOG_TYP)
    key = SigningKey.generate()
    with pytest.raises(InvalidSignature):
        verify_compact(sign_entry(_entry(_dataset()), key), KeySet([key.public_key]),
                       expected_typ="corridor-trust-list+jwt")


def test_taxa_are_accepted_names_sorted_and_unique() -> None:
    entry = _entry(_dataset(taxa=["Grus vipio", "Antigone vipio", "uncia uncia",
                                  "Platalea minor", "Grus monacha", " "]))
    assert entry["taxa"] == ["Antigone vipio", "Grus monacha", "Panthera uncia",
                             "Platalea minor"]


def test_published_at_is_utc_and_iat_whole_seconds() -> None:
    vladivostok = timezone(timedelta(hours=10))
    entry = _entry(_dataset(), now=datetime(2025, 3, 1, 19, 30, 15, tzinfo=vladivostok))
    assert entry["published_at"] == "2025-03-01T09:30:15Z"
    assert entry["iat"] == int(datetime(2025, 3, 1, 9, 30, 15, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(("box", "expected"), [
    ((130.2, 42.6, 131.9, 43.4), (130, 42, 132, 44)),
    ((-3.9, -10.1, -3.1, -10.01), (-4, -11, -3, -10)),
    ((131.0, 43.0, 132.0, 44.0), (131, 43, 132, 44)),       # already whole degrees
    ((131.25, 43.5, 131.25, 43.5), (131, 43, 132, 44)),     # one camera
    ((131.0, 43.0, 131.0, 43.0), (131, 43, 132, 44)),       # a point on a whole degree
    ((180.0, 90.0, 180.0, 90.0), (179, 89, 180, 90)),       # the corner of the map
    ((-180.0, -90.0, -179.5, -89.5), (-180, -90, -179, -89)),
    ((-179.99, -89.99, 179.99, 89.99), (-180, -90, 180, 90)),
])
def test_bbox_is_rounded_outward_to_whole_degrees(
        box: tuple[float, float, float, float], expected: tuple[int, int, int, int]) -> None:
    got = rounded_bbox(*box)
    assert got == expected
    assert all(type(v) is int for v in got)
    west, south, east, north = got
    assert west <= box[0] and south <= box[1] and east >= box[2] and north >= box[3]
    assert east - west >= 1 and north - south >= 1


def test_dataset_without_coordinates_or_dates() -> None:
    entry = _entry(_dataset(bbox_west=None, bbox_south=None, bbox_east=None, bbox_north=None,
                            temporal_start=None, temporal_end=None))
    assert entry["spatial"] == {"bbox": None}
    assert entry["temporal"] == {"start": None, "end": None}


@pytest.mark.parametrize(("licenses", "expected"), [
    ([{"name": "CC-BY-4.0", "scope": "media"}, {"name": "CC0-1.0", "scope": "data"}], "CC0-1.0"),
    ([{"path": "https://example.org/licence", "scope": "media"}], "https://example.org/licence"),
    ([{"title": "Internal use"}], "Internal use"),
    ([], None),
    (["not an object"], None),
])
def test_licence_prefers_the_data_scope(licenses: list[Any], expected: str | None) -> None:
    assert _entry(_dataset(licenses=licenses))["licence"] == expected


def test_tiers_keep_a_fixed_order() -> None:
    assert _entry(_dataset(), tiers=["full", "aggregate"])["tiers"] == ["aggregate", "full"]
    assert _entry(_dataset(), tiers=[])["tiers"] == []


@pytest.mark.parametrize("kwargs", [
    {"tiers": ["raw"]},
    {"tiers": ["full", "full"]},
    {"now": datetime(2025, 3, 1, 9, 30)},  # naive
    {"contact": "x" * 201},
])
def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"tiers|timezone|contact"):
        _entry(_dataset(), **kwargs)


def test_long_description_is_shortened_for_the_registry() -> None:
    entry = _entry(_dataset(description="word " * 2000, title="T" * 400))
    assert len(entry["description"]) == 4000 and entry["description"].endswith("…")
    assert len(entry["title"]) == 300
