"""Imports: exact counts on real data, all-or-nothing refusals, versions."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from node.data.importer import Importer, ImportRefused
from node.data.sources import SourceError
from node.models import Dataset, Deployment, Event, Media, Observation, Occurrence

pytestmark = pytest.mark.storage


def _count(engine: sa.Engine, model: type, dataset_id: int | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(model)
    if dataset_id is not None:
        query = query.where(model.dataset_id == dataset_id)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)




def _edit_csv(path: Path, line: int, field: str, value: str) -> None:
    """Set ``field`` on data line ``line`` (the header is line 1)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
        header = list(rows[0].keys())
    rows[line - 2][field] = value
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        writer.writerows(rows)


def test_camtrap_example_imports_exact_counts(engine: sa.Engine, camtrap_example: Path) -> None:
    result = Importer(engine).import_camtrap(camtrap_example)
    assert result.counts == {"deployments": 4, "media": 423, "observations": 549, "individuals": 1}
    assert (result.name, result.version) == ("camtrap-dp-example-dataset", 1)
    assert _count(engine, Deployment) == 4
    assert _count(engine, Media) == 423
    assert _count(engine, Observation) == 549


def test_camtrap_values_keep_offsets_and_compare_in_utc(
    engine: sa.Engine, camtrap_example: Path
) -> None:
    Importer(engine).import_camtrap(camtrap_example)
    with engine.connect() as conn:
        row = conn.execute(sa.select(Deployment).where(Deployment.deploymentID == "00a2c20d")).one()
    assert row.deploymentStart == "2020-05-30T04:57:37+02:00"  # verbatim, offset kept
    assert row.deploymentStart_utc.isoformat() == "2020-05-30T02:57:37+00:00"
    assert row.latitude == 51.496 and row.cameraHeight == 1.3 and row.baitUse is False


def test_dataset_metadata_is_recorded(engine: sa.Engine, camtrap_example: Path) -> None:
    Importer(engine).import_camtrap(camtrap_example)
    with sa.orm.Session(engine) as session:
        ds = session.scalars(sa.select(Dataset)).one()
    assert ds.title.startswith("Sample from: MICA")
    assert ds.licenses[0]["name"] == "CC0-1.0"
    assert ds.temporal_start == "2020-05-30" and ds.temporal_end == "2021-04-18"
    assert (ds.bbox_west, ds.bbox_south, ds.bbox_east, ds.bbox_north) == (
        4.013, 50.699, 5.659, 51.496)
    assert "Anas platyrhynchos" in ds.taxa
    assert all("data" not in r for r in ds.descriptor["resources"])


def test_zip_package_imports(engine: sa.Engine, camtrap_example: Path, tmp_path: Path) -> None:
    archive = tmp_path / "example.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("datapackage.json", "deployments.csv", "media.csv", "observations.csv"):
            zf.write(camtrap_example / name, f"example/{name}")
    result = Importer(engine).import_camtrap(archive, name="zipped")
    assert result.counts["observations"] == 549


def test_arocha_dwc_imports_exact_counts(engine: sa.Engine, arocha: Path) -> None:
    result = Importer(engine).import_dwc(arocha / "events.csv", arocha / "occurrences.csv",
                                         name="arocha-waterbirds")
    assert result.counts == {"events": 257, "occurrences": 7644}
    with engine.connect() as conn:
        event = conn.execute(sa.select(Event).where(Event.eventID == "19981029_mida")).one()
    assert event.decimalLatitude == pytest.approx(-3.330189)
    assert event.terms["eventTime"] == "NA/NA"  # every source term kept verbatim
    assert event.eventDate_start_utc.isoformat() == "1998-10-29T00:00:00+00:00"
    assert _count(engine, Occurrence) == 7644


def test_reimport_creates_new_version_without_mixing(
    engine: sa.Engine, camtrap_example: Path
) -> None:
    importer = Importer(engine)
    first = importer.import_camtrap(camtrap_example)
    second = importer.import_camtrap(camtrap_example)
    assert (first.version, second.version) == (1, 2)
    assert _count(engine, Observation, first.dataset_id) == 549
    assert _count(engine, Observation, second.dataset_id) == 549
    with sa.orm.Session(engine) as session:
        current = session.scalars(sa.select(Dataset).where(Dataset.current.is_(True))).all()
    assert [d.version for d in current] == [2]


# --- refusals: all or nothing ---------------------------------------------------


def _db_fingerprint(database_url: str, engine: sa.Engine) -> str:
    """Bytes of the SQLite file, or a dump of every table on PostgreSQL."""
    if database_url.startswith("sqlite"):
        engine.dispose()
        return hashlib.sha256(Path(database_url.removeprefix("sqlite:///")).read_bytes()).hexdigest()
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for table in (Dataset, Deployment, Media, Observation, Event, Occurrence):
            for row in conn.execute(sa.select(table.__table__)):  # type: ignore[attr-defined]
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


@pytest.fixture
def corrupted(camtrap_example: Path, tmp_path: Path, example_copy: Callable[[str], Path]) -> Path:
    """A copy of the example with one bad enum, missing timezone, orphan FK and duplicate id."""
    pkg = example_copy("bad")
    _edit_csv(pkg / "deployments.csv", 3, "featureType", "motorway")
    _edit_csv(pkg / "media.csv", 10, "timestamp", "2020-05-30T04:57:37")
    _edit_csv(pkg / "observations.csv", 5, "deploymentID", "nowhere")
    _edit_csv(pkg / "observations.csv", 7, "observationID", "705e6036")
    return pkg


def test_corrupted_package_refused_with_each_problem_and_db_unchanged(
    engine: sa.Engine, database_url: str, camtrap_example: Path, corrupted: Path
) -> None:
    importer = Importer(engine)
    importer.import_camtrap(camtrap_example)  # something already there must survive
    before = _db_fingerprint(database_url, engine)
    with pytest.raises(ImportRefused) as refused:
        importer.import_camtrap(corrupted)
    problems = [str(p) for p in refused.value.problems]
    assert refused.value.total == 4, problems
    assert problems[0] == ("deployments.csv, line 3, field featureType: 'motorway' is not one of "
                           "the allowed values (burrow, carcass, culvert, fruitingTree, nestSite, "
                           "roadBridge, roadDirt, roadOverpass, roadPaved, roadUnderpass, "
                           "trailGame, trailHiking, waterSource)")
    assert problems[1].startswith("media.csv, line 10, field timestamp: datetime "
                                  "'2020-05-30T04:57:37' has no timezone offset")
    assert problems[2] == ("observations.csv, line 5, field deploymentID: 'nowhere' is not a "
                           "deploymentID in this dataset")
    assert problems[3] == ("observations.csv, line 7, field observationID: duplicate "
                           "observationID '705e6036'")
    assert _db_fingerprint(database_url, engine) == before


def test_refusal_reports_first_fifty_and_total(
    engine: sa.Engine, camtrap_example: Path, tmp_path: Path, example_copy: Callable[[str], Path]
) -> None:
    pkg = example_copy("many")
    text = (pkg / "observations.csv").read_text("utf-8").replace(",media,", ",medium,")
    (pkg / "observations.csv").write_text(text, "utf-8")
    with pytest.raises(ImportRefused) as refused:
        Importer(engine, max_problems=50).import_camtrap(pkg)
    assert len(refused.value.problems) == 50
    assert refused.value.total > 50
    assert _count(engine, Dataset) == 0


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("latitude", "91", "above the maximum 90"),
        ("latitude", "north", "is not a number"),
        ("latitude", "", "required value is missing"),
        ("cameraDelay", "1.5", "is not an integer"),
        ("baitUse", "yes", "is not a boolean"),
        ("deploymentEnd", "2019-01-01T00:00:00Z", "deploymentEnd is before deploymentStart"),
        ("deploymentStart", "30/05/2020 04:57", "is not a datetime"),
    ],
)
def test_bad_deployment_values_are_named(
    engine: sa.Engine, example_copy: Callable[[str], Path], field: str, value: str, reason: str
) -> None:
    pkg = example_copy("bad")
    _edit_csv(pkg / "deployments.csv", 2, field, value)
    with pytest.raises(ImportRefused) as refused:
        Importer(engine).import_camtrap(pkg)
    first = refused.value.problems[0]
    assert (first.file, first.row, first.field) == ("deployments.csv", 2, field)
    assert reason in first.reason
    assert _count(engine, Dataset) == 0


def test_unknown_and_missing_columns_refused(
    engine: sa.Engine, camtrap_example: Path, tmp_path: Path, example_copy: Callable[[str], Path]
) -> None:
    pkg = example_copy("cols")
    text = (pkg / "media.csv").read_text("utf-8").replace("mediaID,", "mediaId,", 1)
    (pkg / "media.csv").write_text(text, "utf-8")
    with pytest.raises(ImportRefused) as refused:
        Importer(engine).import_camtrap(pkg)
    reasons = {(p.field, p.reason) for p in refused.value.problems}
    assert ("mediaId", "unknown column (not in the media schema) "
                       "(did you mean 'mediaID'?)") in reasons
    assert ("mediaID", "required column is missing (is 'mediaId' meant to be "
                       "'mediaID'?)") in reasons


def test_a_misspelt_darwin_core_term_is_pointed_at(engine: sa.Engine, arocha: Path,
                                                   tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_bytes((arocha / "events.csv").read_bytes().replace(b"eventDate", b"eventdate",
                                                                      1))
    with pytest.raises(ImportRefused) as refused:
        Importer(engine).import_dwc(events, arocha / "occurrences.csv", name="misspelt")
    [problem] = [p for p in refused.value.problems if p.field == "eventDate"]
    assert problem.reason == "required column is missing (is 'eventdate' meant to be " \
                             "'eventDate'?)"


def test_ragged_and_non_utf8_rows_refused(
    engine: sa.Engine, camtrap_example: Path, tmp_path: Path, example_copy: Callable[[str], Path]
) -> None:
    pkg = example_copy("ragged")
    with (pkg / "deployments.csv").open("a", encoding="utf-8") as fh:
        fh.write("onlyone,field\n")
    with (pkg / "observations.csv").open("ab") as fh:
        fh.write(b"\xff\xfe broken\n")
    with pytest.raises(ImportRefused) as refused:
        Importer(engine).import_camtrap(pkg)
    reasons = [p.reason for p in refused.value.problems]
    assert any("row has 2 values, header has 24" in r for r in reasons)
    [bad] = [p for p in refused.value.problems if "not UTF-8" in p.reason]
    rows = (pkg / "observations.csv").read_bytes().count(b"\n")
    assert (bad.file, bad.row) == ("observations.csv", rows)  # the last line, not line 1
    assert "byte 0xFF at byte 1 of this line" in bad.reason


@pytest.mark.parametrize(("text", "codec", "named"), [
    ("observation remarquée près de la rivière", "cp1252", "iconv -f WINDOWS-1252"),
    ("Наблюдение возле реки, леопард", "cp1251", "iconv -f WINDOWS-1251"),
    ("ツル 出水 観察 ナベヅル", "shift_jis", "iconv -f SHIFT_JIS"),
    ("黑脸琵鹭 越冬 调查 台湾 曾文溪口", "gb18030", "GB18030 / GBK (Chinese)"),
])
def test_a_file_in_a_legacy_code_page_is_named_at_its_line_and_stops_the_import(
    engine: sa.Engine, example_copy: Callable[[str], Path], text: str, codec: str, named: str
) -> None:
    pkg = example_copy(f"legacy-{codec}")
    path = pkg / "deployments.csv"
    lines = path.read_text("utf-8").splitlines(keepends=True)
    # A comment in the last column of the fourth line, saved in the legacy code page.
    header = lines[0].rstrip("\r\n").split(",")
    cells = next(csv.reader([lines[3]]))
    cells[header.index("deploymentComments")] = text
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    data = "".join(lines[:3]).encode() + out.getvalue().encode(codec) + "".join(
        lines[4:]).encode()
    path.write_bytes(data)
    with pytest.raises(ImportRefused) as refused:
        Importer(engine).import_camtrap(pkg)
    # One problem, where it is: no follow-on errors about the cameras that did not load.
    [problem] = refused.value.problems
    assert (problem.file, problem.row) == ("deployments.csv", 4)
    assert named in problem.reason and "Re-save the file as UTF-8" in problem.reason


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "a/../../x.csv"])
def test_descriptor_paths_cannot_escape_the_package(
    engine: sa.Engine, example_copy: Callable[[str], Path], path: str
) -> None:
    pkg = example_copy("slip")
    descriptor = json.loads((pkg / "datapackage.json").read_text("utf-8"))
    descriptor["resources"][0]["path"] = path
    (pkg / "datapackage.json").write_text(json.dumps(descriptor), "utf-8")
    with pytest.raises(SourceError, match="unsafe resource path"):
        Importer(engine).import_camtrap(pkg)


def test_symlinked_resource_refused(engine: sa.Engine, camtrap_example: Path,
                                    tmp_path: Path, example_copy: Callable[[str], Path]) -> None:
    pkg = example_copy("link")
    (pkg / "media.csv").unlink()
    (pkg / "media.csv").symlink_to(camtrap_example / "media.csv")
    with pytest.raises(SourceError, match="not a regular file"):
        Importer(engine).import_camtrap(pkg)


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]"])
def test_malformed_descriptor_refused(engine: sa.Engine, tmp_path: Path, content: bytes) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "datapackage.json").write_bytes(content)
    with pytest.raises(SourceError):
        Importer(engine).import_camtrap(tmp_path / "pkg")


def test_dwc_orphan_occurrence_and_bad_values_refused(
    engine: sa.Engine, arocha: Path, tmp_path: Path
) -> None:
    events = tmp_path / "events.csv"
    occurrences = tmp_path / "occurrences.csv"
    shutil.copy(arocha / "events.csv", events)
    shutil.copy(arocha / "occurrences.csv", occurrences)
    _edit_csv(events, 2, "eventDate", "1998-10-29T08:00:00")
    _edit_csv(occurrences, 2, "eventID", "no-such-event")
    _edit_csv(occurrences, 3, "basisOfRecord", "Sighting")
    _edit_csv(occurrences, 4, "individualCount", "-2")
    with pytest.raises(ImportRefused) as refused:
        Importer(engine).import_dwc(events, occurrences, name="bad")
    found = {(p.file, p.row, p.field) for p in refused.value.problems}
    assert ("events.csv", 2, "eventDate") in found  # time without offset
    assert ("occurrences.csv", 2, "eventID") in found
    orphan = next(p for p in refused.value.problems if p.field == "eventID")
    assert "'no-such-event' is not an eventID of events in this dataset" in str(orphan)
    assert ("occurrences.csv", 3, "basisOfRecord") in found
    assert ("occurrences.csv", 4, "individualCount") in found
    assert _count(engine, Dataset) == 0


def test_bad_dataset_name_refused(engine: sa.Engine, arocha: Path) -> None:
    with pytest.raises(SourceError, match="lower-case"):
        Importer(engine).import_dwc(arocha / "events.csv", arocha / "occurrences.csv",
                                    name="Bad Name!")


def test_progress_reports_every_byte(engine: sa.Engine, arocha: Path) -> None:
    seen: list[int] = []
    totals: list[int] = []
    Importer(engine).import_dwc(arocha / "events.csv", arocha / "occurrences.csv", name="a",
                                on_bytes=seen.append, on_total=totals.append)
    size = (arocha / "events.csv").stat().st_size + (arocha / "occurrences.csv").stat().st_size
    assert totals == [size]
    assert sum(seen) == size
    assert io  # keep the import used by helpers above


def test_the_readme_lists_every_darwin_core_term_the_import_requires_or_checks() -> None:
    from node.data.validation import DWC_EVENT, DWC_OCCURRENCE

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("<!-- dwc-terms -->", 1)[1].split("\n\n", 1)[0]
    for spec in (DWC_EVENT, DWC_OCCURRENCE):
        for field in spec.fields:
            if field.required or field.type != "string" or field.enum or field.pattern:
                assert f"`{field.name}`" in section, field.name
