"""``corridor demo`` tells the whole agreement story, as a newcomer would run it."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from deploy.cli import main
from node.data.demo_data import Side, individual_registry


def test_the_demo_runs_the_agreement_story_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--dir", str(root), "--observations", "2000"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # undo the console's line wrapping
    for step in ("The registry runs at", "joined the registry", "published cn-ntlnp/",
                 "ru-lotl asked for", "narrowed it to leopards and tigers",
                 "accepted the narrowed terms", "fetched", "verified it offline",
                 "revoked the agreement", "was refused: agreement ru-lotl.",
                 "ru-lotl signed a checkpoint", "the registry cosigned it as witness",
                 "(registry): checkpoint of", "(cn-ntlnp): checkpoint of",
                 "cosigned by the registry, every entry re-hashed", "the log is intact",
                 "audit reconcile: 1 package served, 1 received, 1 matched",
                 "proposed", "matches in the signed ledger", "rejected 1 look-alike",
                 "Counted once across the border", "equals the generator's hidden truth",
                 "The flyway census, 2024-01-17 to 2024-01-19", "Platalea minor flyway",
                 "left out of the totals"):
        assert step in text, step
    assert "revoked by cn-ntlnp" in text and "What happened" in text
    packages = list((root / "ru-lotl" / "received").glob("*.zip"))
    assert len(packages) == 1  # the refused fetch left nothing behind
    assert {p.name for p in root.iterdir()} >= {"registry", "ru-lotl", "cn-ntlnp"}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished demo federation's directories (servers stopped, databases kept)."""
    root = tmp_path_factory.mktemp("audit") / "demo"
    result = CliRunner().invoke(main, ["demo", "--dir", str(root), "--observations", "2000"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root


def _copy(demo_dir: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(demo_dir, tmp_path / "demo")
    return tmp_path / "demo"


def _audit(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", *args], catch_exceptions=False)
    return result.exit_code, " ".join(result.output.split())


def _sql(db: Path, statement: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.executescript(statement)


def test_audit_verify_and_reconcile_the_demo_directories(demo_dir: Path) -> None:
    for service in ("registry", "ru-lotl", "cn-ntlnp"):
        code, text = _audit("verify", str(demo_dir / service))
        assert code == 0, text
        assert "VERDICT: the log is intact" in text
    code, text = _audit("reconcile", "--registry", str(demo_dir / "registry"),
                        "--node", str(demo_dir / "ru-lotl"), "--node", str(demo_dir / "cn-ntlnp"))
    assert code == 0, text
    assert "fully matched: 1" in text and "RECONCILED" in text


@pytest.mark.parametrize(("service", "db"), [("registry", "registry.db"),
                                             ("cn-ntlnp", "node.db")])
@pytest.mark.parametrize(("tamper", "words"), [
    ("UPDATE log_entries SET leaf = replace(leaf, '\"at\":\"2', '\"at\":\"1') "
     "WHERE idx = 2", "FAILED at entry 2: entry 2 was changed after it was logged"),
    ("DELETE FROM log_entries WHERE idx = 2", "FAILED at entry 2: entry 2 is missing"),
    ("UPDATE log_entries SET idx = -1 WHERE idx = 2; UPDATE log_entries SET idx = 2 "
     "WHERE idx = 3; UPDATE log_entries SET idx = 3 WHERE idx = -1",
     "FAILED at entry 2: entry 2 holds the event logged as entry 3"),
])
def test_tampering_with_either_database_names_the_first_bad_entry(
        demo_dir: Path, tmp_path: Path, service: str, db: str, tamper: str, words: str) -> None:
    root = _copy(demo_dir, tmp_path)
    _sql(root / service / db, tamper)
    code, text = _audit("verify", str(root / service))
    assert code == 1, text
    assert words in text


def test_reconcile_finds_a_package_whose_receipt_was_deleted(demo_dir: Path,
                                                             tmp_path: Path) -> None:
    root = _copy(demo_dir, tmp_path)
    with sqlite3.connect(root / "ru-lotl" / "node.db") as conn:
        (index,) = conn.execute("SELECT idx FROM log_entries "
                                "WHERE type = 'package.received'").fetchone()
        conn.execute("DELETE FROM receipts")
        conn.execute("DELETE FROM log_entries WHERE idx = ?", (index,))
    code, text = _audit("reconcile", "--registry", str(root / "registry"),
                        "--node", str(root / "ru-lotl"), "--node", str(root / "cn-ntlnp"))
    assert code == 1, text
    # Entries follow the receipt's (the joint count's): the gap it leaves is named.
    assert f"FAILED at entry {index}: entry {index} is missing" in text


CATS = ("Panthera pardus orientalis", "Panthera tigris altaica")
YEARS = ("2023", "2024")

Key = tuple[str, str, str]  # (taxon, cell, year)


def _cell(latitude: float, longitude: float) -> str:
    """The 0.1° cell named by its south-west corner, in decimal arithmetic."""
    def corner(value: float) -> Decimal:
        return (Decimal(repr(value)) * 10).to_integral_value(ROUND_FLOOR) / 10

    return f"N{corner(latitude)}E{corner(longitude)}@0.1"


def _raw_counts(db: Path) -> tuple[dict[Key, dict[str, float]], dict[str, set[str]]]:
    """Per (taxon, cell, year): events, camera-days and cameras, straight from a node's database;
    and per year, the cameras that ran.

    Independent events: records of a cat at one deployment, 30 minutes or more
    after that deployment's previous record of the cat. Computed here without
    any of Corridor's code, from the stored Camtrap DP text columns.
    """
    with sqlite3.connect(db) as conn:
        (dataset,) = conn.execute("SELECT id FROM datasets WHERE profile = 'camtrap-dp' "
                                  "AND current").fetchone()
        deployments = conn.execute(
            "SELECT deploymentID, coalesce(locationID, deploymentID), latitude, longitude, "
            "deploymentStart, deploymentEnd FROM deployments WHERE dataset_id = ?",
            (dataset,)).fetchall()
        records = conn.execute(
            "SELECT deploymentID, scientificName, eventStart FROM observations "
            "WHERE dataset_id = ? AND observationType = 'animal' AND observationLevel = 'event'",
            (dataset,)).fetchall()
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    sites: dict[tuple[str, str], set[str]] = defaultdict(set)
    place: dict[str, tuple[str, str]] = {}
    for deployment, site, lat, lon, start, end in deployments:
        cell = _cell(lat, lon)
        place[deployment] = (cell, site)
        began, ended = datetime.fromisoformat(start), datetime.fromisoformat(end)
        for year in YEARS:
            low = datetime(int(year), 1, 1, tzinfo=UTC)
            high = datetime(int(year) + 1, 1, 1, tzinfo=UTC)
            overlap = (min(ended, high) - max(began, low)).total_seconds()
            if overlap > 0:
                seconds[(cell, year)] += overlap
                sites[(cell, year)].add(site)
    times: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for deployment, taxon, start in records:
        if taxon in CATS:
            times[(deployment, taxon)].append(datetime.fromisoformat(start).astimezone(UTC))
    events: dict[Key, int] = defaultdict(int)
    detected: dict[Key, set[str]] = defaultdict(set)
    for (deployment, taxon), moments in times.items():
        last: datetime | None = None
        for moment in sorted(moments):
            if (last is None or moment - last >= timedelta(minutes=30)) \
                    and str(moment.year) in YEARS:
                key = (taxon, place[deployment][0], str(moment.year))
                events[key] += 1
                detected[key].add(place[deployment][1])
            last = moment
    cells = {(taxon, cell, year): {"events": events.get((taxon, cell, year), 0),
                                   "camera_days": seconds[(cell, year)] / 86400,
                                   "cameras": len(sites[(cell, year)]),
                                   "detected": len(detected.get((taxon, cell, year), ()))}
             for taxon in CATS for cell, year in seconds}
    cameras: dict[str, set[str]] = defaultdict(set)
    for (_, year), found in sites.items():
        cameras[year] |= found
    return cells, cameras


def _check_released(row: dict[str, str], raw: dict[str, float]) -> None:
    """A released row carries the raw figures; RAI is events per 100 camera-days."""
    assert int(row["events"]) == raw["events"], row
    assert float(row["camera_days"]) == pytest.approx(raw["camera_days"], abs=1e-3), row
    assert float(row["rai"]) == pytest.approx(100 * raw["events"] / raw["camera_days"],
                                              abs=1e-3), row
    assert int(row["cameras"]) == raw["cameras"], row


def test_the_demo_joint_count_equals_the_two_raw_databases(demo_dir: Path) -> None:
    with (demo_dir / "joint-count" / "counts.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    raw = {"ru-lotl": _raw_counts(demo_dir / "ru-lotl" / "node.db"),
           "cn-ntlnp": _raw_counts(demo_dir / "cn-ntlnp" / "node.db")}
    released = 0
    for source, (cells, cameras) in raw.items():
        got = {(r["taxon"], r["cell"], r["period"]): r for r in rows
               if r["source"] == source and r["level"] == "cell"}
        assert set(got) == set(cells), source  # every cell with effort, none dropped
        for key, figures in cells.items():
            row = got[key]
            if figures["events"] < 3 or figures["cameras"] < 3:  # the owners' thresholds
                assert row["suppressed"] and row["events"] == "", row
            elif row["suppressed"]:  # secondary: protects a small cell from subtraction
                assert "protects" in row["suppressed"], row
            else:
                _check_released(row, figures)
                assert int(row["cameras_detected"]) == figures["detected"], row
                released += 1
        for taxon in CATS:
            for year in YEARS:
                (total,) = [r for r in rows if (r["source"], r["level"], r["taxon"],
                                                r["period"]) == (source, "total", taxon, year)]
                mine = [f for (t, _, y), f in cells.items() if (t, y) == (taxon, year)]
                _check_released(total, {
                    "events": sum(f["events"] for f in mine),
                    "camera_days": sum(f["camera_days"] for f in mine),
                    "cameras": len(cameras[year])})
    assert released >= 10  # the demo's thresholds leave real cells to compare

    joint = {(r["taxon"], r["cell"], r["period"]): r for r in rows
             if r["source"] == "joint" and r["level"] == "cell"}
    assert set(joint) == set(raw["ru-lotl"][0]) | set(raw["cn-ntlnp"][0])
    for key, row in joint.items():
        parts = [(source, cells[key]) for source, (cells, _) in raw.items() if key in cells]
        sides = [r for r in rows if r["level"] == "cell" and r["source"] != "joint"
                 and (r["taxon"], r["cell"], r["period"]) == key]
        if any(side["suppressed"] for side in sides):
            assert row["suppressed"] and row["events"] == "", row  # suppressed stays so
            continue
        _check_released(row, {"events": sum(f["events"] for _, f in parts),
                              "camera_days": sum(f["camera_days"] for _, f in parts),
                              "cameras": sum(f["cameras"] for _, f in parts)})
    for taxon in CATS:
        for year in YEARS:
            (total,) = [r for r in rows if (r["source"], r["level"], r["taxon"],
                                            r["period"]) == ("joint", "total", taxon, year)]
            mine = [f for cells, _ in raw.values() for (t, _, y), f in cells.items()
                    if (t, y) == (taxon, year)]
            _check_released(total, {
                "events": sum(f["events"] for f in mine),
                "camera_days": sum(f["camera_days"] for f in mine),
                "cameras": sum(len(c[year]) for _, c in raw.values())})
    assert (demo_dir / "joint-count" / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = json.loads((demo_dir / "joint-count" / "cells.geojson").read_text())
    assert {f["properties"]["cell"] for f in drawn["features"]} == {c for _, c, _ in joint}
    drawn_from = {s for f in drawn["features"] for s in f["properties"]["sources"]}
    assert drawn_from == {"ru-lotl", "cn-ntlnp"}  # the map shows both sides


def _animals(db: Path, side: Side) -> dict[tuple[str, str], set[str]]:
    """(taxon, UTC year) -> the generator's animals behind a node's identified records."""
    local = {a.local_id(side): a.individual_id for a in individual_registry(2024)
             if a.ranges_on(side)}
    seen: dict[tuple[str, str], set[str]] = {}
    with sqlite3.connect(db) as conn:
        for individual, taxon, start in conn.execute(
                "SELECT individualID, scientificName, eventStart FROM observations "
                "WHERE individualID IS NOT NULL AND observationLevel = 'event'"):
            year = str(datetime.fromisoformat(start).astimezone(UTC).year)
            seen.setdefault((taxon, year), set()).add(local[individual])
    return seen


def test_the_demo_counts_each_border_crosser_once(demo_dir: Path) -> None:
    """individuals.csv equals the raw databases read through the generator's hidden mapping."""
    ru = _animals(demo_dir / "ru-lotl" / "node.db", "ru")
    cn = _animals(demo_dir / "cn-ntlnp" / "node.db", "cn")
    with (demo_dir / "joint-count" / "individuals.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["taxon"], r["period"]) for r in rows} == set(ru) | set(cn)
    crossers = 0
    for row in rows:
        a = ru.get((row["taxon"], row["period"]), set())
        b = cn.get((row["taxon"], row["period"]), set())
        assert not row["suppressed"], row
        assert (int(row["ru-lotl"]), int(row["cn-ntlnp"])) == (len(a), len(b))
        assert int(row["only ru-lotl"]) == len(a - b)
        assert int(row["only cn-ntlnp"]) == len(b - a)
        assert int(row["both"]) == len(a & b) == len([x for x in row["links"].split(";") if x])
        assert int(row["total"]) == len(a | b)
        crossers += len(a & b)
    assert crossers >= 4
    # Both ledgers hold every link with both signatures; no camera record was fetched for it.
    for member in ("ru-lotl", "cn-ntlnp"):
        with sqlite3.connect(demo_dir / member / "node.db") as conn:
            states = dict(conn.execute("SELECT state, count(*) FROM links GROUP BY state"))
            signed = conn.execute("SELECT count(*) FROM links WHERE state = 'confirmed' AND "
                                  "proposal IS NOT NULL AND decision IS NOT NULL").fetchone()[0]
        assert states.get("confirmed") == signed >= 4 and states.get("rejected") == 1


def _signed_in(base: str, user: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    assert token, form[:500]
    response = client.post("/login", data={"csrf_token": token.group(1), "username": user,
                                           "password": password})
    assert response.status_code in (302, 303), response.text[:500]
    return client


@pytest.mark.slow
def test_demo_keep_prints_every_page_and_a_login_that_opens_it(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "from deploy.cli import main; main()", "demo",
               "--dir", str(tmp_path / "demo"), "--observations", "2000", "--keep"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("  CLI:") and sum(x.startswith("  CLI:") for x in lines) == 2:
                break
        shown = "\n".join(lines[next(i for i, x in enumerate(lines) if "Still running" in x):])
        pages = re.findall(r"^  (http://\S+)", shown, re.MULTILINE)
        logins = re.findall(r"sign in at (http://\S+)/login as (?:the data owner|auditor): "
                            r"user (\S+)  password (\S+)", shown)
        auditor = re.search(r"or as auditor: user (\S+)  password (\S+)", shown)
        assert len(logins) == 3 and auditor, shown  # the registry, then each node's owner
        assert any("/requests/" in p for p in pages) and any(p.endswith("/ledger") for p in pages)
        owners = {base: (user, password) for base, user, password in logins}
        for base, (user, password) in owners.items():
            client = _signed_in(base, user, password)
            for page in (p for p in pages if p.startswith(base + "/")):
                response = client.get(page.removeprefix(base))
                assert response.status_code == 200, (page, response.text[:300])
            client.close()
        node = next(base for base in owners if base != logins[0][0])
        client = _signed_in(node, *auditor.groups())
        assert client.get("/log").status_code == 200
        client.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    assert process.returncode == 0


def test_every_entry_the_demo_logs_reads_as_a_sentence(demo_dir: Path) -> None:
    from corridor.log_sentences import sentence

    seen: dict[str, str] = {}
    for db in (demo_dir / "registry" / "registry.db", demo_dir / "ru-lotl" / "node.db",
               demo_dir / "cn-ntlnp" / "node.db"):
        with sqlite3.connect(db) as conn:
            for (leaf,) in conn.execute("SELECT leaf FROM log_entries ORDER BY idx"):
                event = json.loads(leaf)
                seen.setdefault(event["type"], sentence(event))
    assert len(seen) >= 25, sorted(seen)
    generic = {t: s for t, s in seen.items() if s.startswith(t) or "?" in s}
    assert not generic, generic
