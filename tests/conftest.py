"""Fixtures shared by the whole suite: databases, node directories, reference data.

Storage tests run on a fresh SQLite file by default. With
``CORRIDOR_TEST_DATABASE_URL`` set to a PostgreSQL URL, each test gets its own
throw-away schema in that database instead (``.ci/run`` does this when
PostgreSQL answers on 127.0.0.1:5432).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from corridor.keystore import load_signing_key
from deploy.cli import main
from deploy.federation import LoopbackFederation
from deploy.loopback import LoopbackServer
from node.exchange.oauth_client import TokenClient
from node.settings import load_settings as load_node_settings

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
CAMTRAP_EXAMPLE = SHARED_DATA / "camtrap-dp-example"
AROCHA = SHARED_DATA / "arocha-kenya-waterbirds"
EVERGLADES = SHARED_DATA / "everglades-wading-birds"
TAIWAN_SPOONBILL = SHARED_DATA / "taiwan-black-faced-spoonbill"
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


@pytest.fixture
def everglades() -> Path:
    """Everglades wading bird colony counts, the UF/Weecology native format (read-only)."""
    return _require(EVERGLADES)


@pytest.fixture
def taiwan_spoonbill() -> Path:
    """TaiBON's yearly Black-faced Spoonbill census maximum for Taiwan (read-only)."""
    return _require(TAIWAN_SPOONBILL)


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


class LiveServer(LoopbackServer):
    """:class:`deploy.loopback.LoopbackServer` plus a one-call HTTP client for assertions."""

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


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def ok(result: Result) -> str:
    """The output of a CLI run that must succeed (its output is the failure message)."""
    assert result.exit_code == 0, result.output
    return str(result.output)


def fail(result: Result) -> str:
    """The output of a CLI run that must fail."""
    assert result.exit_code != 0, result.output
    return str(result.output)


def run_cli(*args: str | Path) -> Result:
    """Run the ``corridor`` CLI in-process."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


@dataclass
class Federation:
    """:class:`deploy.federation.LoopbackFederation` (a registry and ru-lotl and cn-ntlnp on
    loopback), driven by the CLI, with a clock per node that the test moves by hand."""

    net: LoopbackFederation
    clocks: dict[str, FakeClock]

    @property
    def root(self) -> Path:
        """The directory holding every service's directory."""
        return self.net.root

    @property
    def registry_dir(self) -> Path:
        """The registry's directory."""
        return self.net.registry.directory

    @property
    def registry(self) -> Any:
        """The registry's server (``.url``, ``.request()``, ``.stop()``)."""
        return self.net.registry_server

    @property
    def anchor(self) -> Path:
        """The registry's anchor file."""
        return self.net.anchor

    @property
    def nodes(self) -> dict[str, Path]:
        """Each node's directory, by member id."""
        return {member_id: s.directory for member_id, s in self.net.nodes.items()}

    @property
    def servers(self) -> dict[str, Any]:
        """Each service's server, by member id and ``"registry"``."""
        return self.net.servers

    def add_node(self, member_id: str, name: str, country: str) -> Path:
        """Create, configure and serve one more node (not yet a member)."""
        self.clocks[member_id] = FakeClock()
        return self.net.add_node(member_id, name, country, clock=self.clocks[member_id]).directory

    def node(self, member_id: str, *args: str | Path) -> Result:
        """Run ``corridor node --dir <that node> ARGS``."""
        return run_cli("node", "--dir", self.nodes[member_id], *args)

    def registry_cli(self, *args: str) -> Result:
        """Run ``corridor registry --dir <registry> ARGS``."""
        return run_cli("registry", "--dir", self.registry_dir, *args)

    def join_and_admit(self) -> None:
        """Both nodes join, the operator admits them, both sync."""
        for member_id in FEDERATION_MEMBERS:
            joined = self.node(member_id, "join")
            assert joined.exit_code == 0, joined.output
            assert "pending" in joined.output
        listed = self.registry_cli("members", "list")
        assert "ru-lotl" in listed.output and "pending" in listed.output
        for member_id in FEDERATION_MEMBERS:
            admitted = self.registry_cli("members", "admit", member_id)
            assert admitted.exit_code == 0, admitted.output
        for member_id in FEDERATION_MEMBERS:
            synced = self.node(member_id, "sync")
            assert synced.exit_code == 0, synced.output
            assert "members: cn-ntlnp, ru-lotl" in synced.output

    def agreement(self, dataset: str, tier: str, *request_options: str,
                  policy: Path | None = None) -> str:
        """An active agreement: cn-ntlnp publishes ``dataset``'s ``tier`` (after setting
        ``policy``), ru-lotl requests it (with ``request_options``), cn-ntlnp approves,
        ru-lotl accepts. Its id."""
        if policy is not None:
            ok(self.node("cn-ntlnp", "policy", dataset, "--set", policy))
        ok(self.node("cn-ntlnp", "publish", dataset, "--tier", tier))
        until = (datetime.now(UTC).date() + timedelta(days=200)).isoformat()
        filed = ok(self.node("ru-lotl", "request", "create", "--dataset",
                             f"cn-ntlnp/{dataset}", "--purpose", "joint-monitoring", "--tier",
                             tier, "--until", until, "--justification", "Joint monitoring",
                             *request_options))
        match = re.search(r"ru-lotl\.[0-9a-f]{16}", filed)
        assert match, filed
        ok(self.node("cn-ntlnp", "sync"))
        ok(self.node("cn-ntlnp", "decide", match.group(0), "approve", "--reason", "agreed"))
        ok(self.node("ru-lotl", "request", "accept", match.group(0)))
        ok(self.node("cn-ntlnp", "sync"))
        return match.group(0)

    def token_for(self, member_id: str, audience: str, scope: str = "node:read",
                  agreement: str | None = None) -> str:
        """A real token from the registry, for ``member_id``."""
        settings = load_node_settings(self.nodes[member_id])
        client = TokenClient(self.registry.url, f"{self.registry.url}/oauth/token", member_id,
                             load_signing_key(settings.keys_dir), http=httpx.Client(timeout=10),
                             clock=lambda: datetime.now(UTC))
        return client.token(audience, scope, agreement=agreement)


FEDERATION_MEMBERS = {"ru-lotl": ("Land of the Leopard National Park", "RU"),
           "cn-ntlnp": ("Northeast China Tiger and Leopard National Park", "CN")}


@pytest.fixture
def federation(tmp_path: Path, live_server: Any, database_url: str,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Federation]:
    # Each service gets its own database; on PostgreSQL the registry uses the test schema.
    fed = Federation(LoopbackFederation.start(tmp_path, name="NEASPEC Registry",
                                              database_url=database_url,
                                              start_server=live_server), {})
    for member_id, (name, country) in FEDERATION_MEMBERS.items():
        fed.add_node(member_id, name, country)
    yield fed


@pytest.fixture
def parks(federation: Federation) -> Federation:
    """The federation with both parks members, each with its side of the demo data
    (3,000 camera-trap observations) imported."""
    federation.join_and_admit()
    for member, side in (("ru-lotl", "ru"), ("cn-ntlnp", "cn")):
        ok(federation.node(member, "generate-demo", "--side", side, "--observations", "3000"))
    return federation


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Validate, with the Frictionless library, every package the session exported.

    Tests check the packages they are about; this checks all of them, so a
    change that breaks Camtrap DP conformance in a path no test validates
    explicitly still fails the run (DESIGN.md §10; issue 15).
    """
    if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR) \
            or session.config.option.collectonly:
        return
    from tests.packages import exported_package_problems  # frictionless is slow to import

    factory = session.config._tmp_path_factory  # type: ignore[attr-defined]
    checked, found = exported_package_problems(factory.getbasetemp())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")  # the progress line is still open here
        reporter.write_sep("-", f"frictionless: {checked} exported package(s) validated, "
                                f"{len(found)} invalid")
        for package, problems in found.items():
            reporter.write_line(f"  {package}:", red=True)
            for problem in problems[:10]:
                reporter.write_line(f"    {problem}")
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
