"""Packages and archives that outside tools accept: Frictionless and python-dwca-reader.

The expected figures are computed here from the source CSVs of the Camtrap DP
example, not from the code under test.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from dwca.read import DwCAReader

from tests.conftest import Federation, fail, ok, run_cli
from tests.packages import (
    assert_frictionless_valid,
    exported_package_problems,
    frictionless_errors,
    intact_descriptor,
)

DWC = "http://rs.tdwg.org/dwc/terms/"
LEOPARD = "Panthera pardus orientalis"
DEMO = "corridor-demo-cn-ntlnp"


def _source(example: Path, name: str) -> list[dict[str, str]]:
    with (example / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _expected_media(example: Path) -> Counter[tuple[str, str]]:
    """(observation, medium) pairs behind the example's event-level animal records."""
    media = _source(example, "media.csv")
    pairs: Counter[tuple[str, str]] = Counter()
    for o in _source(example, "observations.csv"):
        if o["observationType"] != "animal" or o["observationLevel"] != "event":
            continue
        start, end = _instant(o["eventStart"]), _instant(o["eventEnd"])
        for m in media:
            if m["deploymentID"] == o["deploymentID"] and start <= _instant(
                    m["timestamp"]) <= end:
                pairs[(o["observationID"], m["mediaID"])] += 1
    return pairs


@pytest.fixture
def example_node(tmp_path: Path, camtrap_example: Path) -> Path:
    node = tmp_path / "node"
    ok(run_cli("node", "--dir", node, "init", "--member-id", "ru-lotl", "--name", "LotL",
               "--country", "RU"))
    ok(run_cli("node", "--dir", node, "import", "camtrap-dp", camtrap_example))
    return node


@pytest.mark.storage
def test_the_archive_of_the_example_opens_in_dwca_reader(
        example_node: Path, camtrap_example: Path, tmp_path: Path) -> None:
    out = tmp_path / "example-dwca.zip"
    said = ok(run_cli("node", "--dir", example_node, "export-dwc",
                      "camtrap-dp-example-dataset", "--out", out))
    expected = _expected_media(camtrap_example)
    events = {o["observationID"] for o in _source(camtrap_example, "observations.csv")
              if o["observationType"] == "animal" and o["observationLevel"] == "event"}
    assert f"{len(events)} occurrences, {sum(expected.values())} media records" in said
    with DwCAReader(str(out)) as archive:
        assert archive.descriptor.core.type == DWC + "Occurrence"
        assert [e.type for e in archive.descriptor.extensions] == [
            "http://rs.tdwg.org/ac/terms/Multimedia"]
        rows = list(archive)
        assert {r.id for r in rows} == events
        got = Counter((r.id, m.data["http://purl.org/dc/terms/identifier"])
                      for r in rows for m in r.extensions)
        assert got == expected
        # Fields with commas and "|" survive the round trip.
        remarks = {r.data[DWC + "eventRemarks"] for r in rows}
        assert "camera trap without bait near game trail" in remarks
        assert archive.metadata is not None
        descriptor = json.loads((camtrap_example / "datapackage.json").read_text("utf-8"))
        assert archive.metadata.find("dataset/title").text == descriptor["title"]
    # The occurrence table alone, as before, when asked for a .csv.
    table = tmp_path / "occurrence.csv"
    ok(run_cli("node", "--dir", example_node, "export-dwc", "camtrap-dp-example-dataset",
               "--out", table))
    with zipfile.ZipFile(out) as zf:
        assert zf.read("occurrence.csv") == table.read_bytes()


def test_export_dwc_says_what_it_needs(example_node: Path, tmp_path: Path) -> None:
    assert "give either DATASET" in fail(run_cli(
        "node", "--dir", example_node, "export-dwc", "--out", tmp_path / "a.zip"))
    assert "end the name in .zip" in fail(run_cli(
        "node", "--dir", example_node, "export-dwc", "camtrap-dp-example-dataset",
        "--out", tmp_path / "a.txt"))
    assert "no trust list" in fail(run_cli(
        "node", "--dir", example_node, "export-dwc", "--package", __file__,
        "--out", tmp_path / "a.zip"))
    assert not list(tmp_path.glob("a.*"))


def _rewrite(package: Path, out: Path, name: str, change: Any) -> None:
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, change(data) if item.filename == name else data)


@pytest.fixture
def received(federation: Federation, tmp_path: Path) -> tuple[Federation, Path]:
    """ru-lotl's verified package of cn-ntlnp's leopards, generalized, with individuals."""
    fed = federation
    fed.join_and_admit()
    ok(fed.node("cn-ntlnp", "generate-demo", "--side", "cn", "--observations", "2000"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "tiers": {"generalized": {"default_precision": 0.1, "coarsen_time": "day"}},
        "purposes": ["joint-monitoring"], "partners": ["*"]}))
    agreement = fed.agreement(DEMO, "generalized", "--taxon", LEOPARD, policy=policy)
    out = tmp_path / "leopards.zip"
    ok(fed.node("ru-lotl", "fetch", agreement, "--out", out))
    return fed, out


def test_a_received_package_converts_to_an_archive_of_what_was_released(
        received: tuple[Federation, Path], tmp_path: Path) -> None:
    fed, package = received
    assert_frictionless_valid(package)
    with zipfile.ZipFile(package) as zf:
        observations = list(csv.DictReader(io.StringIO(zf.read("observations.csv").decode())))
        deployments = {d["deploymentID"]: d for d in csv.DictReader(
            io.StringIO(zf.read("deployments.csv").decode()))}
    released = {o["observationID"] for o in observations
                if o["observationType"] == "animal" and o["observationLevel"] == "event"}
    out = tmp_path / "leopards-dwca.zip"
    ok(fed.node("ru-lotl", "export-dwc", "--package", package, "--out", out))
    with DwCAReader(str(out)) as archive:
        rows = list(archive)
    assert rows and {r.id for r in rows} == released
    assert {r.data[DWC + "scientificName"] for r in rows} == {LEOPARD}
    for r in rows:  # the generalized coordinates, not finer ones
        camera = deployments[r.data[DWC + "parentEventID"]]
        assert r.data[DWC + "decimalLatitude"] == camera["latitude"].rstrip("0").rstrip(".")
        assert len(r.data[DWC + "decimalLatitude"].partition(".")[2]) <= 1


def test_a_tampered_package_is_neither_converted_nor_valid(
        received: tuple[Federation, Path], tmp_path: Path) -> None:
    fed, package = received
    tampered = tmp_path / "tampered.zip"
    _rewrite(package, tampered, "observations.csv",
             lambda data: data.replace(b"Panthera pardus orientalis", b"Panthera pardus xxxxxxxx",
                                       1))
    out = tmp_path / "tampered-dwca.zip"
    assert "does not verify" in fail(fed.node("ru-lotl", "export-dwc", "--package", tampered,
                                              "--out", out))
    assert not out.exists()
    # And the offline validator finds a row that breaks its table's schema.
    broken = tmp_path / "broken.zip"

    def bad_count(data: bytes) -> bytes:
        lines = data.decode().splitlines(keepends=True)
        header = lines[0].rstrip("\r\n").split(",")
        cells = next(csv.reader([lines[1]]))
        cells[header.index("count")] = "many"
        text = io.StringIO()
        csv.writer(text).writerow(cells)
        return (lines[0] + text.getvalue() + "".join(lines[2:])).encode()

    _rewrite(package, broken, "observations.csv", bad_count)
    problems = frictionless_errors(broken)
    assert any("type-error" in p and "many" in p for p in problems), problems


def test_the_partner_sees_what_a_package_holds_and_where(
        received: tuple[Federation, Path], tmp_path: Path) -> None:
    fed, package = received
    picture = tmp_path / "released.png"
    said = " ".join(ok(fed.node("ru-lotl", "packages", "show", package, "--map",
                                picture)).split())
    with zipfile.ZipFile(package) as zf:
        cameras = list(csv.DictReader(io.StringIO(zf.read("deployments.csv").decode())))
    places = {(c["latitude"], c["longitude"]) for c in cameras}
    assert "verified: signed by cn-ntlnp" in said and "tier generalized" in said
    assert f"positions rounded to 0.1°, {len(places)} distinct" in said
    lats = [float(c["latitude"]) for c in cameras]
    assert f"area {min(lats):.3f} .. {max(lats):.3f} N" in said
    png = picture.read_bytes()
    assert png.startswith(b"\x89PNG") and int.from_bytes(png[16:20], "big") == 700
    tampered = tmp_path / "tampered.zip"
    _rewrite(package, tampered, "deployments.csv", lambda data: data.replace(b"43.", b"44.", 1))
    assert "does not verify" in fail(fed.node("ru-lotl", "packages", "show", tampered))



def _reseal(package: Path, out: Path, changes: dict[str, Any],
            incremental: bool | None = None) -> None:
    """A copy of ``package`` with some files changed and its descriptor made to match them."""
    with zipfile.ZipFile(package) as src:
        files = {item.filename: src.read(item.filename) for item in src.infolist()}
    for name, change in changes.items():
        files[name] = change(files[name])
    descriptor = json.loads(files["datapackage.json"])
    for resource in descriptor["resources"]:
        data = files[resource["path"]]
        resource.update(bytes=len(data), hash="sha256:" + hashlib.sha256(data).hexdigest())
    if incremental is not None:
        descriptor["corridor"]["incremental"] = incremental
    files["datapackage.json"] = json.dumps(descriptor).encode()
    with zipfile.ZipFile(out, "w") as dst:
        for name, data in files.items():
            dst.writestr(name, data)


def test_the_session_check_validates_every_intact_export_and_only_those(
        received: tuple[Federation, Path]) -> None:
    _, package = received
    # Outside the session's temporary directory: the session check must not see these.
    with tempfile.TemporaryDirectory() as tmp:
        _check_the_session_check(package, Path(tmp))


def _check_the_session_check(package: Path, root: Path) -> None:
    shutil.copy(package, root / "as-exported.zip")
    _rewrite(package, root / "tampered.zip", "observations.csv",  # not what was exported
             lambda data: data + b"x")
    _reseal(package, root / "invalid.zip",
            {"deployments.csv": lambda data: data.replace(b",false,", b",maybe,", 1)})

    def header_only(data: bytes) -> bytes:  # as if the cameras had come in an earlier package
        return data.split(b"\n", 1)[0] + b"\n"

    _reseal(package, root / "orphans.zip", {"deployments.csv": header_only}, incremental=False)
    _reseal(package, root / "increment.zip", {"deployments.csv": header_only}, incremental=True)

    checked, found = exported_package_problems(root)
    assert intact_descriptor(root / "tampered.zip") is None
    assert checked == 4
    assert set(found) == {root / "invalid.zip", root / "orphans.zip"}, found
    assert any("type-error" in p and "maybe" in p for p in found[root / "invalid.zip"])
    assert all(": foreign-key: " in p for p in found[root / "orphans.zip"])
