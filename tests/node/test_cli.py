"""The ``corridor node`` commands as a user runs them."""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from corridor.db import make_engine, make_session_factory
from deploy.cli import main
from node.log.exchange_log import LOG
from node.settings import load_settings

pytestmark = pytest.mark.storage


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def node_dir(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CORRIDOR_NODE_DATABASE_URL", database_url)
    directory = tmp_path / "ru"
    result = run("node", "--dir", directory, "init", "--member-id", "ru-lotl",
                 "--name", "Land of the Leopard", "--country", "ru")
    assert result.exit_code == 0, result.output
    return directory


def test_init_creates_config_and_private_key_readable_by_owner_only(node_dir: Path) -> None:
    config = (node_dir / "node.toml").read_text()
    assert 'member_id = "ru-lotl"' in config and 'country = "RU"' in config
    keys = node_dir / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    pems = list(keys.glob("*.pem"))
    assert len(pems) == 1
    assert stat.S_IMODE(pems[0].stat().st_mode) == 0o600
    assert pems[0].read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_init_refuses_existing_node_and_bad_identity(node_dir: Path, tmp_path: Path) -> None:
    again = run("node", "--dir", node_dir, "init", "--member-id", "ru-lotl", "--name", "x",
                "--country", "RU")
    assert again.exit_code == 1
    assert "already a node directory" in again.output
    bad = run("node", "--dir", tmp_path / "x", "init", "--member-id", "Russia!", "--name", "x",
              "--country", "RU")
    assert bad.exit_code == 1
    assert "member id 'Russia!' must look like 'ru-lotl'" in bad.output
    assert not (tmp_path / "x" / "node.toml").exists()


def test_commands_outside_a_node_directory_say_so(tmp_path: Path) -> None:
    result = run("node", "--dir", tmp_path, "datasets")
    assert result.exit_code == 1
    assert "is not a Corridor node directory" in result.output


def test_import_list_and_export_dwc_matches_golden(node_dir: Path, camtrap_example: Path,
                                                   tmp_path: Path) -> None:
    imported = run("node", "--dir", node_dir, "import", "camtrap-dp", camtrap_example)
    assert imported.exit_code == 0, imported.output
    assert "4 deployments, 423 media, 549 observations" in imported.output

    listed = run("node", "--dir", node_dir, "datasets")
    assert "camtrap-dp-example-dataset" in listed.output
    assert "rows     4 deployments, 423 media, 549 observations, 1 individual\n" in listed.output
    assert "dates    2020-05-30 .. 2021-04-18 (UTC)" in listed.output
    assert "area     50.699 .. 51.496 N, 4.013 .. 5.659 E" in listed.output

    out = tmp_path / "occurrence.csv"
    exported = run("node", "--dir", node_dir, "export-dwc", "camtrap-dp-example-dataset",
                   "--out", out)
    assert exported.exit_code == 0, exported.output
    assert "Wrote 29 occurrences" in exported.output
    golden = camtrap_example / "dwc_expected" / "occurrence.csv"
    assert out.read_bytes() == golden.read_bytes()


def test_export_dwc_of_unknown_or_survey_dataset_fails_cleanly(node_dir: Path, arocha: Path,
                                                               tmp_path: Path) -> None:
    missing = run("node", "--dir", node_dir, "export-dwc", "nope", "--out", tmp_path / "o.csv")
    assert missing.exit_code == 1 and "no dataset named 'nope'" in missing.output
    run("node", "--dir", node_dir, "import", "dwc", arocha / "events.csv",
        arocha / "occurrences.csv", "--dataset", "arocha")
    survey = run("node", "--dir", node_dir, "export-dwc", "arocha", "--out", tmp_path / "o.csv")
    assert survey.exit_code == 1 and "dwc-event dataset" in survey.output
    assert not (tmp_path / "o.csv").exists()


def test_refused_import_prints_each_problem_and_exits_nonzero(
    node_dir: Path, camtrap_example: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(camtrap_example, bad)
    os.chmod(bad / "observations.csv", 0o644)
    text = (bad / "observations.csv").read_text().replace("2020-05-30T02:57:37Z", "yesterday", 1)
    (bad / "observations.csv").write_text(text)
    result = run("node", "--dir", node_dir, "import", "camtrap-dp", bad)
    assert result.exit_code == 1
    assert "has 1 problem; nothing was imported" in result.output
    assert ("observations.csv, line 2, field eventStart: 'yesterday' is not a datetime"
            in result.output)
    assert "No datasets yet" in run("node", "--dir", node_dir, "datasets").output


def test_import_dwc_reports_counts(node_dir: Path, arocha: Path) -> None:
    result = run("node", "--dir", node_dir, "import", "dwc", arocha / "events.csv",
                 arocha / "occurrences.csv", "--dataset", "arocha-waterbirds")
    assert result.exit_code == 0, result.output
    assert "257 events, 7,644 occurrences" in result.output
    # South of the equator the area reads S, not "-3.330 .. -3.167 N".
    with (arocha / "events.csv").open(encoding="utf-8", newline="") as fh:
        lats = [float(e["decimalLatitude"]) for e in csv.DictReader(fh)
                if e["decimalLatitude"]]
    assert max(lats) < 0
    listed = run("node", "--dir", node_dir, "datasets").output
    assert f"area     {-min(lats):.3f} .. {-max(lats):.3f} S, " in listed
    [row] = json.loads(run("node", "--dir", node_dir, "datasets", "--format", "json").output)
    assert row["rows"] == {"events": 257, "occurrences": 7644} and row["north"] == max(lats)
    csv_rows = run("node", "--dir", node_dir, "datasets", "--format", "csv").output
    assert '"257 events, 7,644 occurrences"' in csv_rows
    assert "1 dataset" not in listed and " N," not in listed


def test_keys_prints_public_jwks_only(node_dir: Path) -> None:
    result = run("node", "--dir", node_dir, "keys")
    jwks = json.loads(result.output)
    (key,) = jwks["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and "d" not in key
    assert (node_dir / "keys" / f"{key['kid']}.pem").exists()


def test_generate_demo_imports_a_side(node_dir: Path) -> None:
    result = run("node", "--dir", node_dir, "generate-demo", "--observations", "2000")
    assert result.exit_code == 0, result.output
    assert "2,000 observations" in result.output
    assert "flyway-counts" in result.output


def test_installed_entry_point_has_help() -> None:
    exe = Path(sys.executable).with_name("corridor")
    if not exe.exists():
        pytest.skip("corridor console script not installed in this environment")
    result = subprocess.run([exe, "node", "import", "camtrap-dp", "--help"], capture_output=True,
                            text=True, check=True)
    assert "Import a Camtrap DP 1.0 package" in result.stdout


def test_policy_set_show_and_refusal(node_dir: Path, camtrap_example: Path,
                                     tmp_path: Path) -> None:
    run("node", "--dir", node_dir, "import", "camtrap-dp", camtrap_example)
    shown = run("node", "--dir", node_dir, "policy", "camtrap-dp-example-dataset", "--show")
    assert shown.exit_code == 0 and "the default policy applies" in shown.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers:\n  full: {apply_sensitivity: false, colour: red}\n"
                   "purposes: [research]\npartners: ['*']\n")
    refused = run("node", "--dir", node_dir, "policy", "camtrap-dp-example-dataset",
                  "--set", bad)
    assert refused.exit_code == 1
    assert "policy refused: tiers.full.colour" in refused.output
    good = tmp_path / "good.yaml"
    good.write_text("tiers:\n  full: {apply_sensitivity: false}\n"
                    "purposes: [research]\npartners: ['*']\n")
    assert run("node", "--dir", node_dir, "policy", "camtrap-dp-example-dataset",
               "--set", good).exit_code == 0
    out = tmp_path / "p.zip"
    exported = run("node", "--dir", node_dir, "export", "camtrap-dp-example-dataset",
                   "--tier", "full", "--out", out)
    assert exported.exit_code == 0, exported.output
    assert "549 observations" in exported.output
    previewed = _last_entry(node_dir)  # a file that can leave the node is on the record
    assert previewed["type"] == "package.previewed" and previewed["tier"] == "full"
    assert previewed["rows"]["observations"] == 549 and previewed["member"] == "ru-lotl"
    keys = tmp_path / "jwks.json"
    keys.write_text(run("node", "--dir", node_dir, "keys").output)
    verified = run("verify", out, "--key", keys)
    assert verified.exit_code == 0 and "OK:" in verified.output
    missing_tier = run("node", "--dir", node_dir, "export", "camtrap-dp-example-dataset",
                       "--tier", "generalized", "--out", out)
    assert missing_tier.exit_code == 1 and "generalized" in missing_tier.output


def _last_entry(node_dir: Path) -> dict[str, object]:
    """The newest entry of a node's exchange log, decoded."""
    engine = make_engine(load_settings(node_dir).database_url)
    try:
        with make_session_factory(engine)() as session:
            size = LOG.size(session)
            (entry,) = LOG.entries(session, size - 1, size)
            return entry.event()
    finally:
        engine.dispose()
