"""`corridor node census` over the demo flyway counts equals a count made by hand."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from click.testing import CliRunner

from deploy.cli import main

SPECIES = {"Platalea minor": {"Platalea minor"}, "Grus monacha": {"Grus monacha"},
           "Antigone vipio": {"Antigone vipio", "Grus vipio"}}


def _cli(*args: str | Path) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _by_hand(folder: Path, names: set[str], year: int) -> tuple[dict[str, int], list[str]]:
    """Per-country totals of each site's maximum on 17-19 January, and the counts left out."""
    with (folder / "events.csv").open(encoding="utf-8") as fh:
        events = {e["eventID"]: e for e in csv.DictReader(fh)}
    best: dict[tuple[str, str], int] = {}
    outside = []
    with (folder / "occurrences.csv").open(encoding="utf-8") as fh:
        for occ in csv.DictReader(fh):
            event = events[occ["eventID"]]
            day = event["eventDate"]
            if occ["scientificName"] not in names or day[:7] != f"{year}-01":
                continue
            key = (event["countryCode"], event["locationID"])
            if 17 <= int(day[8:10]) <= 19:
                best[key] = max(best.get(key, 0), int(occ["individualCount"]))
            else:
                outside.append(f"{event['locationID']} {day}")
    totals: dict[str, int] = defaultdict(int)
    for (country, _), n in best.items():
        totals[country] += n
    return dict(totals), sorted(outside)


def test_the_census_equals_the_counts_by_hand(tmp_path: Path) -> None:
    node = tmp_path / "node"
    _cli("node", "--dir", node, "init", "--member-id", "ru-lotl", "--name", "LotL",
         "--country", "RU")
    _cli("node", "--dir", node, "generate-demo", "--observations", "200")
    printed = _cli("node", "--dir", node, "census", "flyway-counts", "--year", "2024",
                   *(a for t in SPECIES for a in ("--taxon", t)), "--format", "json")
    result = json.loads(printed)
    assert result["window"] == "2024-01-17 to 2024-01-19"
    folder = node / "demo-data" / "bird-counts"
    for species in result["species"]:
        names = SPECIES[species["taxon"]]
        now, outside = _by_hand(folder, names, 2024)
        before, _ = _by_hand(folder, names, 2023)
        assert {r["country"]: r["total"] for r in species["countries"]} == now
        assert {r["country"]: r["previous"] for r in species["countries"]} == before
        assert species["flyway"]["total"] == sum(now.values())
        assert species["flyway"]["previous"] == sum(before.values())
        change = species["flyway"]["change_percent"]
        assert change == round(100 * (sum(now.values()) - sum(before.values()))
                               / sum(before.values()), 1)
        assert sorted(f"{r['site']} {r['date']}" for r in species["outside_window"]) == outside
        assert any(r["count"] == 0 for r in species["sites"]) or species["taxon"] != \
            "Grus monacha"  # zero counts are kept (no Hooded Crane at Zengwen or Mai Po)
    table = _cli("node", "--dir", node, "census", "flyway-counts", "--year", "2024",
                 "--taxon", "Platalea minor")
    assert "flyway (all countries)" in table and "TW" in table
    assert "outside the window, not in the totals" in table
