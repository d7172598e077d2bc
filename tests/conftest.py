"""Fixtures shared by the whole suite: databases, node directories, reference data.

Storage tests run on a fresh SQLite file by default. With
``CORRIDOR_TEST_DATABASE_URL`` set to a PostgreSQL URL, each test gets its own
throw-away schema in that database instead (``.ci/run`` does this when
PostgreSQL answers on 127.0.0.1:5432).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
CAMTRAP_EXAMPLE = SHARED_DATA / "camtrap-dp-example"
AROCHA = SHARED_DATA / "arocha-kenya-waterbirds"
POSTGRES_URL = os.environ.get("CORRIDOR_TEST_DATABASE_URL")


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (expected ../shared/data beside the repo)")
    return path


@pytest.fixture
def camtrap_example() -> Path:
    """The official Camtrap DP 1.0.2 example package (read-only)."""
    return _require(CAMTRAP_EXAMPLE)


@pytest.fixture
def arocha() -> Path:
    """A Rocha Kenya waterbird counts, Darwin Core sampling-event (read-only)."""
    return _require(AROCHA)


@contextmanager
def _fresh_database_url(tmp_path: Path, label: str) -> Iterator[str]:
    """A database no other test uses: a SQLite file, or a throw-away PostgreSQL schema."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / f'{label}.db'}"
        return
    schema = f"t_{label[:8]}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A database URL no other test uses (the node's, in node tests)."""
    with _fresh_database_url(tmp_path, "test") as url:
        yield url


@pytest.fixture
def make_database_url(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``make_database_url(label)``: another fresh database, e.g. one per service."""
    with ExitStack() as stack:
        yield lambda label: stack.enter_context(_fresh_database_url(tmp_path, label))


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """A migrated engine on the test database."""
    from corridor.db import make_engine
    from node.db import upgrade

    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


class LiveServer:
    """A WSGI app served over real HTTP on 127.0.0.1 in a background thread.

    ``app`` may be None: the server binds (so ``url`` is known, e.g. to put in
    a service's config at init) and answers 503 until ``mount(app)``.
    """

    def __init__(self, app: object | None) -> None:
        import threading

        from werkzeug.serving import make_server

        self.app = app
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def _dispatch(self, environ: dict[str, object], start_response: object) -> object:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])  # type: ignore[operator]
            return [b"not mounted yet"]
        return self.app(environ, start_response)  # type: ignore[operator]

    def mount(self, app: object) -> None:
        """Start serving ``app``."""
        self.app = app

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send one request; return (status, headers, body) even for error statuses."""
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.url + path, data=body, method=method,  # noqa: S310
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def live_server() -> Iterator[object]:
    """Start WSGI apps on loopback: ``srv = live_server(app)``; all stopped at teardown."""
    servers: list[LiveServer] = []

    def start(app: object | None = None) -> LiveServer:
        server = LiveServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
