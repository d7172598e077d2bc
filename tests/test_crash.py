"""kill -9 the whole node during a burst of logged actions: its log loses nothing and lies
about nothing.

cn-ntlnp serves under real gunicorn (2 workers, deploy/gunicorn.conf.py).
Eight clients ask it for signed counts under an aggregate agreement as fast
as it answers; every answer carries the log index of its ``counts.served``
entry. Mid-burst the arbiter and both workers are killed with SIGKILL at
once. Afterwards ``corridor audit verify`` finds the log intact (every leaf
hashes into the tree, no gap, no duplicate index), every answer a client
received whole has its entry at the index it named, with the same content
digest, and the restarted node serves again. On SQLite and, in .ci/run,
PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from corridor.db import make_engine
from node.settings import load_settings
from tests.conftest import Federation, ok, run_cli
from tests.test_gunicorn import Gunicorn, until
from tests.test_joint_counts import QUERY, agreement, requested  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.storage, pytest.mark.slow]


def serve(fed: Federation, tmp_path: Path, label: str) -> Gunicorn:
    return Gunicorn("node", "CORRIDOR_NODE_DIR", fed.nodes["cn-ntlnp"],
                    fed.servers["cn-ntlnp"].url, tmp_path / f"gunicorn-{label}.log")


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


def log_size(fed: Federation) -> int:
    """How many entries cn-ntlnp's log holds (its head)."""
    engine = make_engine(load_settings(fed.nodes["cn-ntlnp"]).database_url)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT size FROM log_head").scalar_one())
    finally:
        engine.dispose()


def served_entries(fed: Federation) -> dict[int, dict[str, Any]]:
    """Every ``counts.served`` entry of cn-ntlnp's log, by index, as stored."""
    engine = make_engine(load_settings(fed.nodes["cn-ntlnp"]).database_url)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT idx, leaf FROM log_entries WHERE type = 'counts.served'").all()
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

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    until(lambda: len(answers) >= 20, 60, "20 answers before the crash")
    kill_everything(node)
    stop.set()
    for thread in threads:
        thread.join(30)
    node.stop()  # already dead: this only closes its log
    assert not failures, failures

    verified = run_cli("audit", "verify", fed.nodes["cn-ntlnp"])
    assert verified.exit_code == 0 and "VERDICT: the log is intact" in verified.output, \
        verified.output
    entries = served_entries(fed)
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
    assert "VERDICT: the log is intact" in ok(run_cli("audit", "verify", fed.nodes["cn-ntlnp"]))
