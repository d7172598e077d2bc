"""``corridor demo`` tells the whole agreement story, as a newcomer would run it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from deploy.cli import main


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
                 "audit reconcile: 1 package served, 1 received, 1 matched"):
        assert step in text, step
    assert "revoked by cn-ntlnp" in text and "What happened" in text
    packages = list((root / "ru-lotl" / "received").glob("*.zip"))
    assert len(packages) == 1  # the refused fetch left nothing behind
    assert {p.name for p in root.iterdir()} >= {"registry", "ru-lotl", "cn-ntlnp"}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished demo federation's directories (servers stopped, databases kept)."""
    root = tmp_path_factory.mktemp("audit") / "demo"
    result = CliRunner().invoke(main, ["demo", "--dir", str(root), "--observations", "500"],
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
