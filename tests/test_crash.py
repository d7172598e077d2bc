"""kill -9 a whole service during a burst of logged actions: its log loses nothing and
lies about nothing.

cn-ntlnp serves under real gunicorn (2 workers, deploy/gunicorn.conf.py).
Eight clients ask it for signed counts under an aggregate agreement as fast
as it answers; every answer carries the log index of its ``counts.served``
entry. Mid-burst the arbiter and both workers are killed with SIGKILL at
once. Afterwards, once the operator has signed a checkpoint of the log as
the crash left it, ``corridor audit verify`` finds the log intact (every leaf
hashes into the tree, no gap, no duplicate index), every answer a client
received whole has its entry at the index it named, with the same content
digest, and the restarted node serves again. The same for the registry in
a burst of token requests: every token a client received has its
``token.issued`` entry. On SQLite and, in .ci/run, PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from corridor.db import make_engine
from crypto.tokens import unverified_claims
from node.exchange.oauth_client import TokenError
from node.settings import load_settings
from registry.settings import load_settings as load_registry_settings
from tests.conftest import Federation, ok, run_cli
from tests.test_gunicorn import Gunicorn, until
from tests.test_joint_counts import QUERY, agreement, requested  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.storage, pytest.mark.slow]


def serve(fed: Federation, tmp_path: Path, label: str, service: str = "cn-ntlnp") -> Gunicorn:
    if service == "registry":
        return Gunicorn("registry", "CORRIDOR_REGISTRY_DIR", fed.registry_dir,
                        fed.servers["registry"].url, tmp_path / f"registry-{label}.log")
    return Gunicorn("node", "CORRIDOR_NODE_DIR", fed.nodes[service],
                    fed.servers[service].url, tmp_path / f"gunicorn-{label}.log")


def kill_everything(service: Gunicorn) -> None:
    """SIGKILL the arbiter and its workers at once: no shutdown code runs anywhere."""
    pid = service.process.pid
    workers = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for target in (pid, *workers):
        os.kill(target, signal.SIGKILL)
    service.process.wait()
    for worker in workers:
        until(lambda w=worker: not Path(f"/proc/{w}").exists()
              or "Z" in Path(f"/proc/{w}/stat").read_text().split()[2], 10,
              f"worker {worker} to die")


def crash_mid_burst(service: Gunicorn, clients: list[threading.Thread],
                    enough: Callable[[], bool], stop: threading.Event) -> None:
    """Start ``clients``, kill -9 ``service`` once ``enough`` holds, wait for the clients."""
    for thread in clients:
        thread.start()
    until(enough, 60, "enough answers before the crash")
    kill_everything(service)
    stop.set()
    for thread in clients:
        thread.join(30)
    service.stop()  # already dead: this only closes its log


def database_of(fed: Federation, service: str) -> str:
    if service == "registry":
        return load_registry_settings(fed.registry_dir).database_url
    return load_settings(fed.nodes[service]).database_url


def log_size(fed: Federation, service: str = "cn-ntlnp") -> int:
    """How many entries the service's log holds (its head)."""
    engine = make_engine(database_of(fed, service))
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT size FROM log_head").scalar_one())
    finally:
        engine.dispose()


def entries_of(fed: Federation, type_: str, service: str = "cn-ntlnp") -> dict[int, dict[str, Any]]:
    """Every entry of ``type_`` in the service's log, by index, as stored."""
    engine = make_engine(database_of(fed, service))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT idx, leaf FROM log_entries WHERE type = :type"), {"type": type_}).all()
    finally:
        engine.dispose()
    return {int(idx): json.loads(leaf) for idx, leaf in rows}


def test_the_log_survives_kill_9_in_a_burst_and_holds_every_answer_given(
        federation: Federation, agreement: str, tmp_path: Path) -> None:  # noqa: F811
    fed = federation
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:counts", agreement=agreement)
    url = f"{fed.servers['cn-ntlnp'].url}/agreements/{agreement}/counts"
    fed.servers["cn-ntlnp"].stop()
    node = serve(fed, tmp_path, "first")
    answers: list[dict[str, Any]] = []
    failures: list[str] = []
    lock, stop = threading.Lock(), threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post(url, json=QUERY,
                                         headers={"Authorization": f"Bearer {token}"})
                except httpx.TransportError:
                    return  # the node is gone: this call did not succeed
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    return
                with lock:
                    answers.append(response.json()["result"]["log"])

    crash_mid_burst(node, [threading.Thread(target=client) for _ in range(8)],
                    lambda: len(answers) >= 20, stop)
    assert not failures, failures

    # The operator's first step: a checkpoint of the log as the crash left it, witnessed
    # (one the background work signed just before the kill may lack its cosignature).
    ok(fed.node("cn-ntlnp", "log", "checkpoint"))
    verified = run_cli("audit", "verify", fed.nodes["cn-ntlnp"])
    assert verified.exit_code == 0 and "VERDICT: the log is intact" in verified.output, \
        verified.output
    entries = entries_of(fed, "counts.served")
    for answer in answers:  # every answer a client received whole is in the log, as told
        entry = entries.get(answer["index"])
        assert entry is not None, f"answer with log index {answer['index']} has no entry"
        assert entry["content_sha256"] == answer["content_sha256"]
    assert len({a["index"] for a in answers}) == len(answers)  # no index given twice
    assert len(entries) >= len(answers)  # a crash may cut an answer after its commit, not before

    size = log_size(fed)
    restarted = serve(fed, tmp_path, "after")
    try:
        again = httpx.post(url, json=QUERY, headers={"Authorization": f"Bearer {token}"},
                           timeout=10)
        assert again.status_code == 200, again.text
        assert again.json()["result"]["log"]["index"] == size  # appended right after the crash
    finally:
        restarted.stop()
    ok(fed.node("cn-ntlnp", "log", "checkpoint"))  # signed and witnessed now, not whenever
    assert "VERDICT: the log is intact" in ok(run_cli("audit", "verify", fed.nodes["cn-ntlnp"]))


def test_the_registry_survives_kill_9_in_a_burst_of_token_requests(
        federation: Federation, tmp_path: Path) -> None:
    fed = federation
    fed.join_and_admit()
    fed.servers["registry"].stop()
    registry = serve(fed, tmp_path, "first", "registry")
    issued: list[str] = []
    failures: list[str] = []
    lock, stop = threading.Lock(), threading.Event()

    def client(member: str, audience: str) -> None:
        while not stop.is_set():
            try:  # a fresh client each time: no cache, one token request per call
                token = fed.token_for(member, audience)
            except TokenError as e:
                if e.error != "request_failed":
                    failures.append(f"{e.error}: {e}")
                return  # the registry is gone: this call did not succeed
            with lock:
                issued.append(token)

    crash_mid_burst(registry, [threading.Thread(target=client, args=pair) for pair in
                               [("ru-lotl", "cn-ntlnp"), ("cn-ntlnp", "ru-lotl")] * 4],
                    lambda: len(issued) >= 30, stop)
    assert not failures, failures

    ok(fed.registry_cli("log", "checkpoint"))  # what the operator does first, offline
    verified = run_cli("audit", "verify", fed.registry_dir)
    assert verified.exit_code == 0 and "VERDICT: the log is intact" in verified.output, \
        verified.output
    logged = {entry["jti"] for entry in entries_of(fed, "token.issued", "registry").values()}
    received = {unverified_claims(token)["jti"] for token in issued}
    assert len(received) == len(issued) and received <= logged, received - logged

    size = log_size(fed, "registry")
    restarted = serve(fed, tmp_path, "after", "registry")
    try:
        fed.token_for("ru-lotl", "cn-ntlnp")
        assert log_size(fed, "registry") == size + 1  # its token.issued, right after the crash
    finally:
        restarted.stop()
    assert "VERDICT: the log is intact" in ok(run_cli("audit", "verify", fed.registry_dir))
