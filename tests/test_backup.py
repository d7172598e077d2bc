"""``backup``, ``restore`` and ``doctor`` of both services, as an operator runs them.

The node's database is SQLite (its online backup API, taken while a writer
appends to the log); the registry's is the suite's database, so under
``CORRIDOR_TEST_DATABASE_URL`` it goes through ``pg_dump``/``pg_restore`` into
a fresh PostgreSQL database.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from corridor.db import make_engine, make_session_factory
from corridor.doctor import clock_finding
from node.log.exchange_log import LOG
from node.settings import load_settings as load_node_settings
from registry.log.exchange_log import LOG as REGISTRY_LOG
from registry.settings import load_settings as load_registry_settings
from tests.conftest import POSTGRES_URL, Federation, fail, ok, run_cli

pytestmark = pytest.mark.storage

DEMO = "corridor-demo-cn-ntlnp"


@pytest.fixture
def restore_url(federation: Federation) -> Iterator[list[str]]:
    """``--database-url`` for restoring the registry: none on SQLite; on PostgreSQL a
    fresh database, searched by the same schema as the registry's (dropped afterwards)."""
    if not POSTGRES_URL:
        yield []
        return
    registry_url = load_registry_settings(federation.registry_dir).database_url
    name = f"corridor_restore_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield ["--database-url",
               make_url(registry_url).set(database=name).render_as_string(hide_password=False)]
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _log_size(database_url: str, log: object = LOG) -> int:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return int(log.size(session))  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_a_serving_federation_backs_up_and_restores_with_logs_that_verify(
        federation: Federation, tmp_path: Path, restore_url: list[str]) -> None:
    fed = federation
    fed.join_and_admit()
    ok(fed.node("cn-ntlnp", "generate-demo", "--side", "cn", "--observations", "500"))
    agreement = fed.agreement(DEMO, "generalized")
    ok(fed.node("ru-lotl", "fetch", agreement, "--out", tmp_path / "received.zip"))
    ok(fed.node("cn-ntlnp", "log", "checkpoint"))
    ok(fed.registry_cli("log", "checkpoint"))

    # The node goes on writing while it is backed up: a writer appends to its log.
    cn = load_node_settings(fed.nodes["cn-ntlnp"])
    written: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        engine = make_engine(cn.database_url)
        with make_session_factory(engine)() as session:
            while not stop.is_set():
                written.append(LOG.append(session, "package.previewed", datetime.now(UTC),
                                          member="ru-lotl", dataset=DEMO))
                session.commit()
        engine.dispose()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 5:
            time.sleep(0.01)
        before = _log_size(cn.database_url)
        backup = tmp_path / "cn.tar.gz"
        said = ok(fed.node("cn-ntlnp", "backup", "--out", backup))
        during = len(written)
    finally:
        stop.set()
        thread.join()
    assert during > 5, "the writer was held up for the whole backup"
    assert "mode 0600" in said and "private keys" in said
    assert backup.stat().st_mode & 0o777 == 0o600

    restored = tmp_path / "restored" / "cn-ntlnp"
    said = ok(run_cli("node", "--dir", restored, "restore", "--from", backup))
    assert "audit verify" in said
    settings = load_node_settings(restored)
    assert settings.member_id == "cn-ntlnp"
    assert settings.database_url.endswith(str(restored / "node.db"))  # its own, not the old one
    assert before <= _log_size(settings.database_url) <= before + during + 1
    for name in ("keys", "trust"):
        assert sorted(p.name for p in (restored / name).iterdir()) == \
            sorted(p.name for p in (fed.nodes["cn-ntlnp"] / name).iterdir() if p.is_file())
    assert (restored / "keys").stat().st_mode & 0o777 == 0o700
    assert "VERDICT: the log is intact" in ok(run_cli("audit", "verify", restored))
    checked = json.loads(ok(run_cli("node", "--dir", restored, "doctor", "--format", "json")))
    assert {c["check"]: c["level"] for c in checked} == {
        "config": "ok", "keys": "ok", "database": "ok", "trust list": "ok", "clock": "ok"}

    # The registry, on the suite's database (PostgreSQL: pg_dump, pg_restore).
    registry_backup = tmp_path / "registry.tar.gz"
    ok(fed.registry_cli("backup", "--out", str(registry_backup)))
    new_registry = tmp_path / "restored" / "registry"
    said = ok(run_cli("registry", "--dir", new_registry, "restore", "--from", registry_backup,
                      *restore_url))
    expected = "postgresql" if POSTGRES_URL else "sqlite"
    assert f"the {expected} database" in said
    restored_url = load_registry_settings(new_registry).database_url
    assert restored_url != load_registry_settings(fed.registry_dir).database_url
    assert _log_size(restored_url, REGISTRY_LOG) == \
        _log_size(load_registry_settings(fed.registry_dir).database_url, REGISTRY_LOG)
    assert "VERDICT: the log is intact" in ok(run_cli("audit", "verify", new_registry))
    assert "0 failed" in ok(run_cli("registry", "--dir", new_registry, "doctor"))
    # A second restore into the same (now full) database changes nothing.
    if restore_url:
        refused = fail(run_cli("registry", "--dir", tmp_path / "again", "restore", "--from",
                               registry_backup, *restore_url))
        assert "already holds" in refused and not (tmp_path / "again").exists()


@pytest.fixture
def node_backup(federation: Federation, tmp_path: Path) -> Path:
    """A backup of cn-ntlnp (joined, with its trust list)."""
    federation.join_and_admit()
    out = tmp_path / "node.tar.gz"
    ok(federation.node("cn-ntlnp", "backup", "--out", out))
    return out


def _members(backup: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(backup, "r:gz") as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def _repack(out: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    out.write_bytes(gzip.compress(buffer.getvalue()))
    return out


def _manifest(members: list[tuple[tarfile.TarInfo, bytes]]) -> dict[str, object]:
    manifest: dict[str, object] = json.loads(members[0][1])
    return manifest


def _restore_refused(backup: Path, target: Path, why: str) -> None:
    said = fail(run_cli("node", "--dir", target, "restore", "--from", backup))
    assert why in said and "nothing was restored" in said, said
    assert not target.exists() or not any(target.iterdir())
    assert not [p for p in target.parent.iterdir() if ".restoring-" in p.name]


def test_a_damaged_or_hostile_backup_restores_nothing(node_backup: Path, tmp_path: Path) -> None:
    target = tmp_path / "target" / "node"
    target.parent.mkdir()
    members = _members(node_backup)
    assert members[0][0].name == "backup.json"

    flipped = [(i, d.replace(b"member_id", b"member_iX", 1) if i.name == "node.toml" else d)
               for i, d in members]
    _restore_refused(_repack(tmp_path / "flipped.tar.gz", flipped), target,
                     "does not match its digest")
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(node_backup.read_bytes()[: node_backup.stat().st_size // 2])
    _restore_refused(truncated, target, "not a readable backup")
    extra = tarfile.TarInfo("keys/planted.pem")
    _restore_refused(_repack(tmp_path / "extra.tar.gz", [*members, (extra, b"x")]), target,
                     "does not list")
    link = tarfile.TarInfo("node.db")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _restore_refused(_repack(tmp_path / "link.tar.gz", [*members, (link, b"")]), target,
                     "does not list")
    missing = [(i, d) for i, d in members if i.name != "node.toml"]
    _restore_refused(_repack(tmp_path / "missing.tar.gz", missing), target, "incomplete")

    manifest = _manifest(members)
    entries = manifest["members"]
    assert isinstance(entries, list)
    traversal = dict(manifest, members=[*entries, {"path": "../escape", "bytes": 1,
                                                   "sha256": "0" * 64}])
    hostile = [(members[0][0], json.dumps(traversal).encode()), *members[1:]]
    _restore_refused(_repack(tmp_path / "traversal.tar.gz", hostile), target, "unsafe file name")
    assert not (tmp_path / "target" / "escape").exists()
    other = dict(manifest, kind="registry")
    _restore_refused(_repack(tmp_path / "kind.tar.gz",
                             [(members[0][0], json.dumps(other).encode()), *members[1:]]),
                     target, "corridor registry restore")
    not_ours = tmp_path / "not-a-backup.tar.gz"
    not_ours.write_bytes(gzip.compress(b"hello"))
    _restore_refused(not_ours, target, "not a readable backup")

    said = fail(run_cli("registry", "--dir", tmp_path / "reg", "restore", "--from", node_backup))
    assert "not of a registry" in said
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    said = fail(run_cli("node", "--dir", target, "restore", "--from", node_backup))
    assert "not empty" in said and (target / "notes.txt").read_text() == "mine"


def test_backup_never_overwrites_and_says_what_it_needs(federation: Federation,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "exists.tar.gz"
    out.write_bytes(b"keep me")
    said = fail(federation.node("cn-ntlnp", "backup", "--out", out))
    assert "already exists" in said and out.read_bytes() == b"keep me"
    said = fail(federation.node("cn-ntlnp", "backup", "--out", tmp_path / "no" / "x.tar.gz"))
    assert "not a directory" in said
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".corridor-backup-")]


def test_doctor_names_each_problem_and_its_fix(federation: Federation, tmp_path: Path) -> None:
    fed = federation
    node_dir = fed.nodes["cn-ntlnp"]
    checked = {c["check"]: c for c in json.loads(fail(fed.node("cn-ntlnp", "doctor", "--format",
                                                               "json")))}
    assert checked["trust list"]["level"] == "fail"  # not admitted yet
    assert "corridor node sync" in checked["trust list"]["fix"]
    fed.join_and_admit()
    assert "0 failed" in ok(fed.node("cn-ntlnp", "doctor"))

    (node_dir / "keys").chmod(0o755)
    key = next((node_dir / "keys").glob("*.pem"))
    key.chmod(0o644)
    try:
        said = fail(fed.node("cn-ntlnp", "doctor", "--format", "json"))
    finally:
        (node_dir / "keys").chmod(0o700)
        key.chmod(0o600)
    keys = next(c for c in json.loads(said) if c["check"] == "keys")
    assert keys["level"] == "fail" and "chmod 600" in keys["fix"], keys

    said = fail(run_cli("node", "--dir", tmp_path / "nowhere", "doctor", "--format", "json"))
    assert "not a Corridor node directory" in said and not (tmp_path / "nowhere").exists()

    fed.registry.stop()  # unreachable: the clock cannot be compared; a warning, not a failure
    checked = {c["check"]: c for c in json.loads(ok(fed.node("cn-ntlnp", "doctor", "--format",
                                                             "json")))}
    assert checked["clock"]["level"] == "warn" and "could not reach" in checked["clock"]["detail"]


def test_doctor_measures_the_clock_against_the_registry(federation: Federation) -> None:
    url = federation.registry.url
    with httpx.Client() as http:
        assert clock_finding(url, http).level == "ok"
        slow = clock_finding(url, http, clock=lambda: time.time() - 120)
        drifting = clock_finding(url, http, clock=lambda: time.time() + 12)
    assert slow.level == "fail" and "+1" in slow.detail and "chrony" in slow.fix, slow
    assert drifting.level == "warn" and "-1" in drifting.detail, drifting
