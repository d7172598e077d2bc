"""Hostile or broken inputs: each is refused cleanly, with nothing written (review findings)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from node.data.importer import Importer, ImportRefused, check_dataset_name
from node.data.sources import SourceError
from node.data.validation import FieldProblem, parse_integer, parse_number
from node.models import Dataset, Individual

pytestmark = pytest.mark.storage




def _datasets(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(Dataset)) or 0)


def _zip(pkg: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(pkg.iterdir()):
            zf.write(path, path.name)
    return archive


def test_one_enormous_line_is_a_problem_not_a_memory_blowup(
    engine: sa.Engine, camtrap_example: Path, tmp_path: Path, example_copy: Callable[[str], Path]
) -> None:
    pkg = example_copy("long")
    with (pkg / "deployments.csv").open("a") as fh:
        fh.write("x" * (3 << 20))  # 3 MiB without a newline
    with pytest.raises(ImportRefused) as refused:
        Importer(engine).import_camtrap(_zip(pkg, tmp_path / "long.zip"))
    assert any("line longer than" in p.reason for p in refused.value.problems)
    assert _datasets(engine) == 0


def test_package_larger_than_the_limit_is_refused_before_reading(
    engine: sa.Engine, camtrap_example: Path, tmp_path: Path
) -> None:
    with pytest.raises(SourceError, match="more than the 10,000 bytes"):
        Importer(engine, max_bytes=10_000).import_camtrap(camtrap_example)
    assert _datasets(engine) == 0


def test_corrupt_zip_member_is_a_source_error(
    engine: sa.Engine, camtrap_example: Path, tmp_path: Path, example_copy: Callable[[str], Path]
) -> None:
    archive = _zip(example_copy("p"), tmp_path / "p.zip")
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("observations.csv")
    start = info.header_offset + 30 + len(info.filename) + 20
    data[start:start + 8] = b"\x00" * 8  # corrupt compressed bytes of observations.csv
    archive.write_bytes(bytes(data))
    with pytest.raises(SourceError):
        Importer(engine).import_camtrap(archive)
    assert _datasets(engine) == 0


@pytest.mark.parametrize("descriptor", [
    {"resources": 5},
    {"name": "x", "resources": [], "contributors": 5},
])
def test_descriptor_with_wrong_types_is_a_source_error(
    engine: sa.Engine, example_copy: Callable[[str], Path], descriptor: dict[str, object]
) -> None:
    pkg = example_copy("types")
    original = json.loads((pkg / "datapackage.json").read_text())
    if descriptor.get("resources") == []:
        descriptor["resources"] = original["resources"]
    (pkg / "datapackage.json").write_text(json.dumps({**original, **descriptor}))
    with pytest.raises(SourceError, match="must be a list"):
        Importer(engine).import_camtrap(pkg)


def test_deeply_nested_descriptor_is_a_source_error(engine: sa.Engine, tmp_path: Path) -> None:
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "datapackage.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SourceError, match="not valid JSON"):
        Importer(engine).import_camtrap(tmp_path / "deep")


@pytest.mark.parametrize("name", ["demo\n", "Demo", "", "a" * 65, "../x"])
def test_dataset_names_are_matched_whole(name: str) -> None:
    with pytest.raises(SourceError):
        check_dataset_name(name)


ARABIC_INDIC_12 = "\u0661\u0662"  # int() would read this as 12


@pytest.mark.parametrize(
    "raw", ["9" * 30, "9" * 5000, "1.0", ARABIC_INDIC_12, " 1", "1_000", "0x10"])
def test_integers_are_plain_ascii_and_64_bit(raw: str) -> None:
    with pytest.raises(FieldProblem):
        parse_integer(raw)


@pytest.mark.parametrize(
    "raw", ["1_000.5", "\u0661\u066b\u0665", "infinity", "nan", " 2.5", "1e999", ""])
def test_numbers_are_plain_ascii_and_finite(raw: str) -> None:
    with pytest.raises(FieldProblem):
        parse_number(raw)


def test_overlong_count_is_reported_as_a_problem(
    engine: sa.Engine, camtrap_example: Path, tmp_path: Path, example_copy: Callable[[str], Path]
) -> None:
    pkg = example_copy("count")
    text = (pkg / "observations.csv").read_text()
    header, first, *rest = text.splitlines(keepends=True)
    fields = first.split(",")
    fields[10] = "9" * 30  # count
    (pkg / "observations.csv").write_text(header + ",".join(fields) + "".join(rest))
    with pytest.raises(ImportRefused) as refused:
        Importer(engine).import_camtrap(pkg)
    assert refused.value.problems[0].field == "count"


def test_individuals_csv_is_streamed_and_validated(
    engine: sa.Engine, camtrap_example: Path, tmp_path: Path, example_copy: Callable[[str], Path]
) -> None:
    pkg = example_copy("ind")
    descriptor = json.loads((pkg / "datapackage.json").read_text())
    descriptor["resources"][3] = {"name": "individuals", "path": "individuals.csv"}
    (pkg / "datapackage.json").write_text(json.dumps(descriptor))
    (pkg / "individuals.csv").write_text(
        "individualID,scientificName\nPPO-001,Panthera pardus orientalis\n"
        "PPO-001,Panthera pardus orientalis\nPPO-002\n")
    with pytest.raises(ImportRefused) as refused:
        Importer(engine).import_camtrap(pkg)
    reasons = [str(p) for p in refused.value.problems]
    assert ("individuals.csv, line 3, field individualID: duplicate individualID 'PPO-001'"
            in reasons)
    assert "individuals.csv, line 4: row has 1 values, header has 2" in reasons

    (pkg / "individuals.csv").write_text("name\nx\n")
    with pytest.raises(ImportRefused, match="1 problem"):
        Importer(engine).import_camtrap(pkg)

    (pkg / "individuals.csv").write_text("individualID,scientificName\nPPO-001,Panthera\n")
    Importer(engine).import_camtrap(pkg)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(Individual.record)) == {
            "individualID": "PPO-001", "scientificName": "Panthera"}


def test_source_digest_covers_every_byte(
    engine: sa.Engine, camtrap_example: Path, tmp_path: Path, example_copy: Callable[[str], Path]
) -> None:
    importer = Importer(engine)
    a = importer.import_camtrap(camtrap_example)
    b = importer.import_camtrap(camtrap_example)
    pkg = example_copy("changed")
    text = (pkg / "media.csv").read_text()
    (pkg / "media.csv").write_text(text.replace("RCNX0001", "RCNX0009", 1))
    c = importer.import_camtrap(pkg)
    with engine.connect() as conn:
        digests = dict(conn.execute(sa.select(Dataset.id, Dataset.source_sha256)).all())
    assert digests[a.dataset_id] == digests[b.dataset_id] != digests[c.dataset_id]
    assert len(digests[a.dataset_id]) == 64
