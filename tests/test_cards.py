"""Catalogue cards travel in a signed package, and say no more than the package does.

cn-ntlnp offers a ``cards`` tier (generalized, with catalogue cards) of its
demo data; ru-lotl asks for the leopards, is approved, fetches and checks
every card against the package's own observations, media and deployments.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from corridor.package_reader import verify_package
from deploy.federation import stored_trust_list
from node.settings import load_settings
from policies.grid import cell_of
from tests.conftest import fail, ok
from tests.packages import assert_frictionless_valid

pytestmark = pytest.mark.storage

Federation = Any  # the fixture's class lives in tests/conftest.py

LEOPARD = "Panthera pardus orientalis"
DATASET = "corridor-demo-cn-ntlnp"
POLICY = {
    "tiers": {"generalized": {"default_precision": 0.1, "coarsen_time": "day",
                        "catalogue_cards": True}},
    "purposes": ["joint-monitoring"],
    "partners": ["*"],
    "max_duration_days": 365,
}


def _read(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))


@pytest.fixture
def cards_package(federation: Federation, tmp_path: Path) -> Path:
    """ru-lotl's verified package of cn-ntlnp's leopards under the cards tier."""
    fed = federation
    fed.join_and_admit()
    ok(fed.node("cn-ntlnp", "generate-demo", "--side", "cn", "--observations", "3000"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    agreement = fed.agreement(DATASET, "generalized", "--taxon", LEOPARD, policy=policy)
    out = tmp_path / "cards.zip"
    fetched = ok(fed.node("ru-lotl", "fetch", agreement, "--out", out))
    assert "cards" in fetched
    report = verify_package(out, stored_trust_list(load_settings(fed.nodes["ru-lotl"])))
    assert report.ok, report.failure
    assert_frictionless_valid(out)  # cards and individuals carry Table Schemas
    return out


def test_each_released_leopard_has_a_card_that_the_package_bears_out(
        cards_package: Path) -> None:
    with zipfile.ZipFile(cards_package) as archive:
        cards = _read(archive, "cards.csv")
        observations = _read(archive, "observations.csv")
        media = {m["mediaID"]: m for m in _read(archive, "media.csv")}
        deployments = {d["deploymentID"]: d for d in _read(archive, "deployments.csv")}
        individuals = {i["individualID"] for i in _read(archive, "individuals.csv")}
    assert len(cards) >= 3
    assert {c["individualID"] for c in cards} == individuals
    seen: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in observations:
        if row["individualID"]:
            seen[row["individualID"]].append(row)
    for card in cards:
        rows = seen[card["individualID"]]
        assert re.fullmatch(r"CN-L\d\d", card["individualID"])  # the catalogue id, in clear
        assert card["scientificName"] == LEOPARD and card["sex"] in ("female", "male")
        months = sorted(r["eventStart"][:7] for r in rows)
        assert (card["firstMonth"], card["lastMonth"]) == (months[0], months[-1])
        assert int(card["detections"]) == len({r["eventID"] for r in rows})
        cells = {cell_of(float(deployments[r["deploymentID"]]["latitude"]),
                         float(deployments[r["deploymentID"]]["longitude"]), "0.1").name
                 for r in rows}
        assert set(card["cells"].split(";")) == cells
        references = card["referenceMedia"].split(";")
        assert 1 <= len(references) <= 3
        for media_id in references:
            image = media[media_id]  # a row of this very package
            assert any(image["deploymentID"] == r["deploymentID"]
                       and r["eventStart"] <= image["timestamp"] <= r["eventEnd"]
                       for r in rows), (card, image)


def test_a_card_tier_cannot_pseudonymize(federation: Federation, tmp_path: Path) -> None:
    fed = federation
    ok(fed.node("cn-ntlnp", "generate-demo", "--side", "cn", "--observations", "500"))
    policy = tmp_path / "policy.yaml"
    tiers = {"generalized": {"catalogue_cards": True, "pseudonymize_individuals": True}}
    policy.write_text(yaml.safe_dump({**POLICY, "tiers": tiers}))
    refused = fail(fed.node("cn-ntlnp", "policy", DATASET, "--set", policy))
    assert "catalogue_cards" in refused and "pseudonymize_individuals" in refused
    tiers = {"generalized": {"catalogue_cards": True, "aggregate_only": True}}
    policy.write_text(yaml.safe_dump({**POLICY, "tiers": tiers}))
    assert "aggregate_only" in fail(fed.node("cn-ntlnp", "policy", DATASET, "--set", policy))
