"""Benchmarks' helper: move one service of a loopback federation to gunicorn, on its port.

The service's registered URL is unchanged (the trust list stays true): the
in-process server stops first so that the port is free, then
``python -m gunicorn -c deploy/gunicorn.conf.py`` serves the same directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import httpx

from deploy.federation import LoopbackFederation

CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def serve_with_gunicorn(net: LoopbackFederation, service: str, stack: ExitStack, *,
                        workers: int, app: str | None = None,
                        extra: Sequence[str] = ("--access-logfile", "/dev/null"),
                        ) -> subprocess.Popen[bytes]:
    """Serve ``service`` (``registry`` or a member id) under gunicorn with ``workers``.

    ``app`` defaults to the service's own ``node.wsgi:app`` / ``registry.wsgi:app``;
    ``extra`` are further gunicorn options. gunicorn's log goes to
    ``DIR/gunicorn.log``; it is stopped when ``stack`` closes. Returns the
    arbiter's process.
    """
    server = net.servers.pop(service)
    url = server.url
    server.stop()
    if service == "registry":
        directory, variable = net.registry.directory, "CORRIDOR_REGISTRY_DIR"
    else:
        directory, variable = net.nodes[service].directory, "CORRIDOR_NODE_DIR"
    app = app or ("registry.wsgi:app" if service == "registry" else "node.wsgi:app")
    env = dict(os.environ, **{variable: str(directory)})
    log_path = directory / "gunicorn.log"
    log = stack.enter_context(log_path.open("wb"))
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(CONFIG), "--workers", str(workers),
         "--bind", url.removeprefix("http://"), "--pythonpath", str(Path(__file__).parent),
         *extra, app], env=env, stdout=log, stderr=log)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    deadline = time.monotonic() + 30
    while not answers(f"{url}/.well-known/jwks.json"):
        if process.poll() is not None:
            log.flush()
            text = log_path.read_text(errors="replace")
            raise SystemExit(f"gunicorn for {service} exited:\n{text[-2000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"gunicorn for {service} did not answer on {url} in 30 s")
        time.sleep(0.2)
    return process
