"""``corridor node import mapped``: partners' own formats, through a declarative mapping.

The shipped mappings are run on the real files in ../shared/data: the Taiwan
Black-faced Spoonbill series must come back from the census value for value,
and the Everglades colony counts must import with every row whose colony has
no coordinates reported. Broken copies are refused whole, each problem named.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from deploy.cli import main

TAIWAN_FILE = "black_faced_spoonbill_annual_max_zh.csv"


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def node(tmp_path: Path) -> Path:
    directory = tmp_path / "node"
    assert _run("node", "--dir", directory, "init", "--member-id", "tw-wbf", "--name",
                "Wild Bird Federation", "--country", "TW").exit_code == 0
    return directory


def _series(folder: Path) -> dict[int, int]:
    with (folder / TAIWAN_FILE).open(encoding="utf-8-sig") as fh:
        return {int(row["年份"]): int(row["數量"]) for row in csv.DictReader(fh)}


def test_the_taiwan_series_round_trips_through_the_census(node: Path,
                                                          taiwan_spoonbill: Path) -> None:
    imported = _run("node", "--dir", node, "import", "mapped", "taiwan-black-faced-spoonbill",
                    taiwan_spoonbill / TAIWAN_FILE)
    assert imported.exit_code == 0, imported.output
    series = _series(taiwan_spoonbill)
    assert "16 events, 16 occurrences" in imported.output and len(series) == 16
    for year in sorted(series)[1:]:
        shown = _run("node", "--dir", node, "census", "taiwan-black-faced-spoonbill", "--taxon",
                     "Platalea minor", "--year", str(year), "--window", "01-01..01-31",
                     "--format", "json")
        assert shown.exit_code == 0, shown.output
        [species] = json.loads(shown.output)["species"]
        flyway, previous = species["flyway"], series[year - 1]
        assert (flyway["total"], flyway["previous"]) == (series[year], previous)
        assert flyway["change_percent"] == round(100 * (series[year] - previous) / previous, 1)
        assert [r["country"] for r in species["countries"]] == ["TW"]
    # Dated to the month only: no narrower window can claim the count.
    narrow = _run("node", "--dir", node, "census", "taiwan-black-faced-spoonbill", "--taxon",
                  "Platalea minor", "--year", "2022", "--format", "json")
    assert json.loads(narrow.output)["species"][0]["flyway"]["total"] is None


def _unresolvable(folder: Path) -> set[int]:
    """Lines of flight_surveys.csv without coordinates whose colony is not in colonies.csv."""
    with (folder / "colonies.csv").open(encoding="utf-8") as fh:
        colonies = {r["colony"] for r in csv.DictReader(fh) if r["latitude"]}
    with (folder / "flight_surveys.csv").open(encoding="utf-8") as fh:
        return {line for line, r in enumerate(csv.DictReader(fh), start=2)
                if not r["latitude"] and r["colony"] not in colonies}


def test_the_everglades_counts_import_with_unresolvable_rows_reported(
        node: Path, everglades: Path) -> None:
    files = sorted(everglades.glob("*.csv"))
    imported = _run("node", "--dir", node, "import", "mapped", "everglades-wading-birds",
                    *files)
    assert imported.exit_code == 0, imported.output
    missing = _unresolvable(everglades)
    assert len(missing) == 554
    assert f"{len(missing):,} rows imported with terms that resolve to nothing" in \
        imported.output
    assert "9,139 occurrences" in imported.output
    with sqlite3.connect(node / "node.db") as conn:
        names = dict(conn.execute(
            "SELECT json_extract(terms, '$.scientificName'), count(*) FROM occurrences "
            "GROUP BY 1"))
        empty = conn.execute("SELECT count(*) FROM occurrences o JOIN events e ON "
                             "e.dataset_id = o.dataset_id AND e.eventID = o.eventID WHERE "
                             "e.decimalLatitude IS NULL").fetchone()[0]
    assert names["Platalea ajaja"] > 0 and names["Mycteria americana"] > 0
    assert not any(len(str(n)) == 4 and str(n).islower() for n in names)  # no raw codes
    assert empty == len(missing)  # imported without coordinates, none guessed


def test_a_broken_copy_is_refused_whole_naming_each_problem(node: Path, everglades: Path,
                                                           tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(everglades, copy)
    lines = (copy / "flight_surveys.csv").read_text(encoding="utf-8").splitlines(True)
    lines[1] = lines[1].replace(",greg,", ",zzzz,")
    lines[2] = lines[2].replace(",nesting,15,", ",nesting,many,")
    (copy / "flight_surveys.csv").write_text("".join(lines), encoding="utf-8")
    refused = _run("node", "--dir", node, "import", "mapped", "everglades-wading-birds",
                   *sorted(copy.glob("*.csv")))
    assert refused.exit_code == 1
    text = " ".join(refused.output.split())
    assert "flight_surveys.csv, line 2, field species: 'zzzz' is not in the code list" in text
    assert "flight_surveys.csv, line 3, field individualCount: 'many' is not an integer" in text
    assert _run("node", "--dir", node, "datasets").output.count("everglades") == 0

    missing = _run("node", "--dir", node, "import", "mapped", "everglades-wading-birds",
                   copy / "flight_surveys.csv")
    assert missing.exit_code == 1 and "reads species_list.csv" in missing.output


def test_a_wrong_mapping_says_what_to_fix(node: Path, taiwan_spoonbill: Path,
                                          tmp_path: Path) -> None:
    source = taiwan_spoonbill / TAIWAN_FILE
    cases = {
        "name: x\ntable: t.csv\nevent: {eventID: a}\n": "eventDate is required",
        f"name: x\ntable: {TAIWAN_FILE}\nevent: {{eventID: 'e{{年份}}', eventDate: '{{year}}'}}\n"
        "occurrence: {occurrenceID: o, basisOfRecord: HumanObservation, scientificName: s}\n":
            "{year} is no column",
        "name: x\ntable: t.csv\ncolour: red\n": "unknown key 'colour'",
        "name: x\ntable: t.csv\nevent: {eventID: a, eventDate: b, colour: c}\n":
            "event.colour: not a term",
    }
    for i, (text, words) in enumerate(cases.items()):
        spec = tmp_path / f"spec{i}.yaml"
        spec.write_text(text, encoding="utf-8")
        result = _run("node", "--dir", node, "import", "mapped", spec, source)
        assert result.exit_code == 1 and words in " ".join(result.output.split()), \
            (words, result.output)
    assert "not a shipped mapping" in _run("node", "--dir", node, "import", "mapped",
                                           "no-such-mapping", source).output
