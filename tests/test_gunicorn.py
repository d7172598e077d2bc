"""The registry and a node under real gunicorn with two workers each, started as deploy/ says.

The loopback servers of the test federation give up their ports to gunicorn
(``python -m gunicorn -c deploy/gunicorn.conf.py``, the service directory in
``CORRIDOR_REGISTRY_DIR`` / ``CORRIDOR_NODE_DIR``), so every URL in the
services' configuration and trust list stays true. The story runs through
them: an agreement, a package fetched, the node's log checkpointed and
witnessed, one worker killed, ``audit reconcile``. Exactly one worker of each
service does the background work (corridor.lease); before the lease each
worker ran its own, and the node's two checkpointers raced.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from corridor.db import make_engine, make_session_factory
from corridor.metrics import MULTIPROC_VARIABLE
from node.log.exchange_log import LOG as NODE_LOG
from node.settings import load_settings as load_node_settings
from registry.log.witness import refusals, witnessed
from registry.settings import load_settings as load_registry_settings
from tests.conftest import REPO, Federation, ok, run_cli

pytestmark = pytest.mark.storage

LEADER = re.compile(r"(node-background|registry-checkpointer): this process \(pid (\d+)\) runs "
                    r"the background work")


class Gunicorn:
    """One service under ``python -m gunicorn`` with deploy/gunicorn.conf.py; its log file."""

    def __init__(self, module: str, directory_variable: str, directory: Path, url: str,
                 log: Path, metrics: Path | None = None) -> None:
        self.log = log
        self.url = url
        env = {**os.environ, directory_variable: str(directory), "CORRIDOR_LOG_FORMAT": "text"}
        env.pop(MULTIPROC_VARIABLE, None)  # None: the config makes a temporary one
        if metrics is not None:
            env[MULTIPROC_VARIABLE] = str(metrics)
        port = url.rsplit(":", 1)[1]
        self._handle = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}", "--workers", "2", f"{module}.wsgi:app"],
            env=env, cwd=directory, stdout=self._handle, stderr=subprocess.STDOUT)
        until(lambda: self._answers(), 30, f"gunicorn {module} to answer; log:\n{self.text()}")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited {self.process.returncode}:\n{self.text()}")
        try:
            httpx.get(f"{self.url}/.well-known/jwks.json", timeout=2)
            return True
        except httpx.TransportError:
            return False

    def text(self) -> str:
        """Everything gunicorn and the workers logged so far."""
        return self.log.read_text("utf-8", errors="replace")

    def leaders(self) -> list[int]:
        """The pids that took the service's lease, in order."""
        return [int(m.group(2)) for m in LEADER.finditer(self.text())]

    def workers_that_logged(self, message: str) -> set[int]:
        """The pids of the processes that logged a line containing ``message``."""
        return {int(m.group(1)) for m in re.finditer(
            rf"\[(\d+)\] \w+ [\w.]+: {re.escape(message)}", self.text())}

    def stop(self) -> None:
        """Stop the arbiter and its workers (SIGTERM, then SIGKILL)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._handle.close()


def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Wait for ``condition`` (polled every 0.2 s) or fail saying what was awaited."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def set_interval(config: Path, key: str, value: int) -> None:
    """Set ``key`` in the ``[registry]`` table of a node.toml or registry.toml."""
    text = config.read_text("utf-8")
    if re.search(rf"^{key} = ", text, re.M):
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
    else:
        text = text.replace("[registry]\n", f"[registry]\n{key} = {value}\n", 1)
    config.write_text(text, "utf-8")


@pytest.fixture
def served(parks: Federation, tmp_path: Path) -> Iterator[dict[str, Gunicorn]]:
    """The registry and cn-ntlnp under gunicorn (2 workers each), checkpointing every second."""
    fed = parks
    registry_config = fed.registry_dir / "registry.toml"
    set_interval(registry_config, "checkpoint_interval", 1)
    set_interval(fed.nodes["cn-ntlnp"] / "node.toml", "checkpoint_interval", 1)
    set_interval(fed.nodes["cn-ntlnp"] / "node.toml", "request_poll_interval", 1)
    services: dict[str, Gunicorn] = {}
    try:
        for name, module, variable, directory in (
                ("registry", "registry", "CORRIDOR_REGISTRY_DIR", fed.registry_dir),
                ("cn-ntlnp", "node", "CORRIDOR_NODE_DIR", fed.nodes["cn-ntlnp"])):
            server = fed.servers[name]
            server.stop()
            services[name] = Gunicorn(
                module, variable, directory, server.url, tmp_path / f"{name}-gunicorn.log",
                metrics=tmp_path / "node-metrics" if module == "node" else None)
        yield services
    finally:
        for service in services.values():
            service.stop()


def node_log_size(directory: Path) -> int:
    engine = make_engine(load_node_settings(directory).database_url)
    try:
        with make_session_factory(engine)() as session:
            return NODE_LOG.size(session)
    finally:
        engine.dispose()


def witness_state(fed: Federation, member: str) -> tuple[int | None, int]:
    """The size of ``member``'s newest cosigned checkpoint, and how many were refused."""
    engine = make_engine(load_registry_settings(fed.registry_dir).database_url)
    try:
        with make_session_factory(engine)() as session:
            sizes = [w.size for w in witnessed(session) if w.member == member]
            return (sizes[0] if sizes else None), len(refusals(session, member))
    finally:
        engine.dispose()


def witnessed_whole_log(fed: Federation, service: Gunicorn) -> None:
    directory = fed.nodes["cn-ntlnp"]
    until(lambda: witness_state(fed, "cn-ntlnp")[0] == node_log_size(directory), 30,
          f"the registry to cosign cn-ntlnp's whole log; node log:\n{service.text()}")


def test_one_worker_runs_the_background_work_and_the_story_holds(
        served: dict[str, Gunicorn], parks: Federation, tmp_path: Path) -> None:
    fed, node, registry = parks, served["cn-ntlnp"], served["registry"]
    agreement = fed.agreement("corridor-demo-cn-ntlnp", "generalized")
    ok(fed.node("ru-lotl", "fetch", agreement, "--out", tmp_path / "first.zip"))
    witnessed_whole_log(fed, node)
    assert len(node.leaders()) == 1, node.text()
    assert len(registry.leaders()) == 1, registry.text()
    # Every checkpoint was signed by the lease holder, none by the other worker.
    assert node.workers_that_logged("checkpoint of") == set(node.leaders()), node.text()
    assert registry.workers_that_logged("signed checkpoint of the registry log") == set(
        registry.leaders()), registry.text()
    assert witness_state(fed, "cn-ntlnp")[1] == 0, "a checkpoint was refused"

    # kill -9 the worker that holds the node's lease: another takes over.
    [leader] = node.leaders()
    os.kill(leader, signal.SIGKILL)
    until(lambda: len(node.leaders()) == 2, 30, f"a new leader; log:\n{node.text()}")
    assert node.leaders()[1] != leader
    ok(fed.node("ru-lotl", "fetch", agreement, "--out", tmp_path / "second.zip"))
    witnessed_whole_log(fed, node)
    assert witness_state(fed, "cn-ntlnp")[1] == 0, "a checkpoint was refused"
    assert "Traceback" not in node.text() and "Traceback" not in registry.text()

    ok(fed.node("ru-lotl", "log", "checkpoint"))  # ru-lotl serves on loopback, no refresher
    reconciled = run_cli("audit", "reconcile", "--registry", fed.registry_dir,
                         "--node", fed.nodes["cn-ntlnp"], "--node", fed.nodes["ru-lotl"])
    assert reconciled.exit_code == 0, reconciled.output

    # /metrics adds up both workers' counters (and the killed worker's), whichever answers.
    for service in (node, registry):
        with ThreadPoolExecutor(8) as pool:  # a new connection each: both workers answer some
            answers = list(pool.map(httpx.get, [f"{service.url}/livez"] * 40))
        assert [r.status_code for r in answers] == [200] * 40
        for _ in range(6):
            assert livez_count(service) == 40
    # Counted by more than one process (which ones answered is gunicorn's choice).
    assert len({f.stem.rsplit("_", 1)[1] for f in (tmp_path / "node-metrics").glob("*.db")}) \
        >= 2, "the workers keep their counters in files of their own"


def livez_count(service: Gunicorn) -> float:
    """How many ``GET /livez`` the service's /metrics says were answered with 200."""
    text = httpx.get(f"{service.url}/metrics").raise_for_status().text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == "corridor_http_requests_total"
               and sample.labels == {"method": "GET", "route": "/livez", "status": "200"})
