"""Joint counts end to end: an aggregate agreement, signed counts, verify, merge, attacks.

cn-ntlnp holds the Camtrap DP example under a policy whose aggregate tier
suppresses cells with fewer than 2 events; ru-lotl asks for aggregate
access, is approved, and runs ``corridor joint-count``. The figures are
checked against a computation straight from the example's CSV files.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from corridor.db import make_engine, make_session_factory
from node.app import create_app
from node.log.exchange_log import LOG
from node.settings import load_settings
from node.web.users import ACCOUNTS
from tests.conftest import fail, ok, run_cli

pytestmark = pytest.mark.storage

Federation = Any  # the fixture's class lives in tests/conftest.py

POLICY = {
    "tiers": {"aggregate": {"aggregate_only": True, "min_events": 2, "min_cameras": 1,
                            "count_periods": ["month", "year"]},
              "generalized": {"default_precision": 0.1, "coarsen_time": "day"}},
    "purposes": ["joint-monitoring"],
    "partners": ["*"],
    "max_duration_days": 365,
}
PASSWORD = "correct horse battery"  # the owner who signs in to the request page
UNTIL = (datetime.now(UTC).date() + timedelta(days=200)).isoformat()
MALLARD = "Anas platyrhynchos"
QUERY = {"metrics": ["effort", "events", "rai", "occupancy"], "taxa": [MALLARD],
         "cell_size": "1", "period": {"unit": "month", "from": "2020-05", "to": "2020-08"}}


@pytest.fixture
def requested(federation: Federation, camtrap_example: Path, tmp_path: Path) -> str:
    """A request for aggregate access that cn-ntlnp holds, undecided: ru-lotl asks for counts."""
    fed = federation
    fed.join_and_admit()
    ok(fed.node("cn-ntlnp", "import", "camtrap-dp", camtrap_example, "--name", "example"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    ok(fed.node("cn-ntlnp", "policy", "example", "--set", policy))
    ok(fed.node("cn-ntlnp", "publish", "example", "--tier", "aggregate"))
    filed = ok(fed.node("ru-lotl", "request", "create", "--dataset", "cn-ntlnp/example",
                        "--purpose", "joint-monitoring", "--tier", "aggregate", "--until",
                        UNTIL, "--justification", "Joint waterfowl index"))
    match = re.search(r"ru-lotl\.[0-9a-f]{16}", filed)
    assert match, filed
    ok(fed.node("cn-ntlnp", "sync"))
    return match.group(0)


@pytest.fixture
def agreement(federation: Federation, requested: str) -> str:
    """An active aggregate agreement: ru-lotl may ask cn-ntlnp for counts."""
    fed = federation
    ok(fed.node("cn-ntlnp", "decide", requested, "approve", "--reason", "counts only"))
    ok(fed.node("ru-lotl", "request", "accept", requested))
    ok(fed.node("cn-ntlnp", "sync"))
    return requested


def _expected(example: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(1° cell, month) -> (independent mallard events, camera-seconds), from the raw CSVs."""
    cameras: dict[str, tuple[str, datetime, datetime]] = {}
    with (example / "deployments.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            lat, lon = float(row["latitude"]), float(row["longitude"])
            cell = f"N{int(lat // 1)}E{int(lon // 1)}@1"
            cameras[row["deploymentID"]] = (
                cell, datetime.fromisoformat(row["deploymentStart"]).astimezone(UTC),
                datetime.fromisoformat(row["deploymentEnd"]).astimezone(UTC))
    seconds: dict[tuple[str, str], int] = defaultdict(int)
    for cell, start, end in cameras.values():
        for month in range(5, 9):
            low = datetime(2020, month, 1, tzinfo=UTC)
            high = datetime(2020, month + 1, 1, tzinfo=UTC)
            overlap = (min(end, high) - max(start, low)).total_seconds()
            if overlap > 0:
                seconds[(cell, f"2020-{month:02d}")] += int(overlap)
    times: dict[str, list[datetime]] = defaultdict(list)
    with (example / "observations.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if (row["observationLevel"] == "event" and row["observationType"] == "animal"
                    and row["scientificName"] == MALLARD):
                times[row["deploymentID"]].append(
                    datetime.fromisoformat(row["eventStart"]).astimezone(UTC))
    events: dict[tuple[str, str], int] = defaultdict(int)
    for deployment, moments in times.items():
        last: datetime | None = None
        for moment in sorted(moments):
            if last is None or moment - last >= timedelta(minutes=30):
                events[(cameras[deployment][0], f"{moment:%Y-%m}")] += 1
            last = moment
    return {key: (events.get(key, 0), s) for key, s in seconds.items()}


def test_joint_count_over_an_aggregate_agreement(federation: Federation, agreement: str,
                                                 camtrap_example: Path, tmp_path: Path) -> None:
    fed = federation
    out_dir = tmp_path / "joint"
    printed = ok(run_cli("joint-count", "--dir", fed.nodes["ru-lotl"], "--agreement", agreement,
                         "--taxon", MALLARD, "--cell", "1", "--unit", "month", "--from",
                         "2020-05", "--to", "2020-08", "--out", out_dir))
    assert "joint (all sources)" in printed and "cn-ntlnp" in printed
    with (out_dir / "counts.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cells = {(r["cell"], r["period"]): r for r in rows
             if r["source"] == "cn-ntlnp" and r["level"] == "cell"}
    expected = _expected(camtrap_example)
    assert set(cells) == set(expected)
    secondary = 0
    for key, (events, seconds) in expected.items():
        row = cells[key]
        if events < 2:  # the owner's min_events: suppressed, never 0
            assert row["suppressed"] and row["events"] == "", row
            continue
        if row["suppressed"]:  # protects a small cell from subtraction off the total
            assert "protects" in row["suppressed"], row
            secondary += 1
            continue
        assert int(row["events"]) == events
        assert float(row["camera_days"]) == pytest.approx(seconds / 86400, abs=1e-3)
        assert float(row["rai"]) == pytest.approx(100 * events / (seconds / 86400), abs=1e-3)
    joint = {(r["cell"], r["period"]): r for r in rows
             if r["source"] == "joint" and r["level"] == "cell"}
    assert {k: (v["events"], v["suppressed"]) for k, v in joint.items()} == \
        {k: (v["events"], v["suppressed"]) for k, v in cells.items()}
    assert (out_dir / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    geo = json.loads((out_dir / "cells.geojson").read_text())
    assert {f["properties"]["cell"] for f in geo["features"]} == {c for c, _ in expected}

    # Every number traces to a signed result that `corridor verify` accepts.
    signed = out_dir / "sources" / f"{agreement}.json"
    trust = fed.nodes["ru-lotl"] / "trust" / "trust-list.jws"
    verified = ok(run_cli("verify", signed, "--trust-list", trust, "--anchor", fed.anchor,
                          "--agreement", agreement, "--recipient", "ru-lotl"))
    assert "counts result signed by cn-ntlnp" in verified
    # ...and a tampered one it refuses, naming why.
    document = json.loads(signed.read_text())
    document["result"]["counts"][0]["suppressed"] = None
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    assert "signature does not verify" in fail(run_cli("verify", forged, "--trust-list", trust))
    assert "not 'kr-nie'" in fail(run_cli("verify", signed, "--trust-list", trust,
                                          "--recipient", "kr-nie"))

    # Both logs hold the exchange, and the recipient's entry names the provider's.
    index = document["result"]["log"]["index"]
    served = logged(fed, "cn-ntlnp", "counts.served")
    assert [e["index"] for e in served] == [index]
    assert served[0]["content_sha256"] == document["result"]["log"]["content_sha256"]
    received = logged(fed, "ru-lotl", "counts.received")
    assert [(e["served_index"], e["content_sha256"]) for e in received] == \
        [(index, served[0]["content_sha256"])]


def logged(fed: Federation, member: str, type_: str) -> list[dict[str, Any]]:
    """The leaves of one type in a node's exchange log."""
    engine = make_engine(load_settings(fed.nodes[member]).database_url)
    try:
        with make_session_factory(engine)() as session:
            return [e.event() for e in LOG.entries(session, type_=type_)]
    finally:
        engine.dispose()


def _post(fed: Federation, agreement: str, token: str | None, body: Any,
          at: str = "cn-ntlnp") -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"} \
        if token else {"Content-Type": "application/json"}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, _, answer = fed.servers[at].request("POST", f"/agreements/{agreement}/counts",
                                                body=raw, headers=headers)
    try:
        return status, json.loads(answer)
    except ValueError:
        return status, {}


def test_counts_endpoint_refuses_what_it_must(federation: Federation, agreement: str) -> None:
    fed = federation
    counts = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:counts", agreement=agreement)
    fetch = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    status, signed = _post(fed, agreement, counts, QUERY)
    assert status == 200 and signed["result"]["agreement"] == agreement

    assert _post(fed, agreement, None, QUERY)[0] == 401
    assert _post(fed, agreement, fetch, QUERY)[0] == 403  # a package token is not a counts one
    status, _, _ = fed.servers["cn-ntlnp"].request(
        "GET", f"/agreements/{agreement}/package", headers={"Authorization": f"Bearer {counts}"})
    assert status == 403  # ...and the reverse
    other = "ru-lotl." + "0" * 16
    assert _post(fed, other, counts, QUERY)[0] in (403, 404)

    def refused(change: dict[str, Any], why: str) -> None:
        status, problem = _post(fed, agreement, counts, {**QUERY, **change})
        assert status == 422, (change, status, problem)
        assert why in json.dumps(problem), problem

    refused({"cell_size": "0.01"}, "cell_size")
    refused({"period": {"unit": "week", "from": "2020-05", "to": "2020-06"}}, "unit")
    refused({"period": {"unit": "month", "from": "2020-05"}}, "to")  # open-ended
    refused({"period": {"unit": "month", "from": "2020-05-03", "to": "2020-06"}}, "period")
    refused({"period": {"unit": "quarter", "from": "2020-Q2", "to": "2020-Q3"}},
            "offers counts per month, year only")
    refused({"metrics": ["events", "biomass"]}, "metrics")
    refused({"colour": "red"}, "colour")
    refused({"taxa": [f"Species {i}" for i in range(51)]}, "taxa")
    refused({"protocol": {"independence_minutes": 0}}, "independence_minutes")
    status, _ = _post(fed, agreement, counts, b"{" + b" " * 20000 + b"}")
    assert status == 413
    refusals = logged(fed, "cn-ntlnp", "counts.refused")
    # the package token (403), the other agreement (404), the period not offered (422)
    assert {r["status"] for r in refusals} == {403, 404, 422}


def test_revoked_agreement_serves_no_counts(federation: Federation, agreement: str) -> None:
    fed = federation
    counts = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:counts", agreement=agreement)
    ok(fed.node("cn-ntlnp", "revoke", agreement, "--reason", "no more"))
    status, problem = _post(fed, agreement, counts, QUERY)
    assert status in (401, 403), problem


def test_the_owner_sees_the_counts_before_approving(federation: Federation, requested: str,
                                                   camtrap_example: Path) -> None:
    """``request show`` and the request page show the counts the partner would get."""
    fed = federation
    shown = " ".join(ok(fed.node("cn-ntlnp", "request", "show", requested, "--offline")).split())
    assert "What approval would release" in shown
    assert "No row package" in shown  # the aggregate tier releases no record
    # The most detailed query the rules allow: every taxon, 0.1° cells, per month.
    assert "The counts the partner would get" in shown and "per 0.1° cell and month" in shown
    found = re.search(r"; ([\d,]+) of ([\d,]+) cell rows suppressed", shown)
    assert found, shown
    suppressed, cells = (int(g.replace(",", "")) for g in found.groups())
    assert 0 < suppressed <= cells
    assert MALLARD in shown

    settings = load_settings(fed.nodes["cn-ntlnp"])
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            ACCOUNTS.add(session, "olga", PASSWORD, "owner", now=datetime.now(UTC))
            session.commit()
    finally:
        engine.dispose()
    client = create_app({"CORRIDOR_SETTINGS": settings}).test_client()
    login = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token
    client.post("/login", data={"csrf_token": token.group(1), "username": "olga",
                                "password": PASSWORD})
    page = client.get(f"/requests/{requested}").get_data(as_text=True)
    assert "The counts the partner would get" in page
    assert f"{suppressed:,} of {cells:,} cell rows are suppressed" in page
    cell_table = page[page.index('data-level="cell"'):]
    cell_table = cell_table[:cell_table.index("</table>")]
    # every suppressed cell row shown says so, with its reason; none is shown as 0
    assert cell_table.count('class="suppressed"') == min(suppressed, 300)
    assert "suppressed: fewer than 2 events" in page
