"""The auditor's read-only log API, on the node and on the registry (one implementation).

Each test runs against both services' real apps on a real database, with
entries appended through ``LOG.append`` as the services do; proofs are
checked with :mod:`crypto.merkle`'s verifiers against ``LOG.root``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key
from corridor.log_api import AUTH_CHALLENGE, CSV_BATCH, CSV_COLUMNS
from corridor.tlog import REGISTRY_NAME, REGISTRY_ORIGIN, LogEvent, TransparencyLog, node_origin
from corridor.users import SESSION_ID, Accounts
from crypto.checkpoint import add_signature
from crypto.keys import SigningKey
from crypto.merkle import leaf_hash, verify_consistency, verify_inclusion
from node.app import create_app as create_node_app
from node.cli import init_node
from node.log.exchange_log import LOG as NODE_LOG
from node.web.users import ACCOUNTS as NODE_ACCOUNTS
from registry.app import create_app as create_registry_app
from registry.cli import init_registry
from registry.log.exchange_log import LOG as REGISTRY_LOG
from registry.web.users import ACCOUNTS as REGISTRY_ACCOUNTS

pytestmark = pytest.mark.storage

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
ROUTES = ["/log/entries", "/log/proof/inclusion?index=0", "/log/proof/consistency?from=0"]
# Values a spreadsheet would run as formulas, in every text column.
FORMULA = LogEvent('=HYPERLINK("http://evil.example")', T0 + timedelta(minutes=9),
                   member="+cn-ntlnp", agreement="-1+1", fields={"note": "@SUM(A1)"})


@dataclass
class Service:
    """One service's app, its log and how to make its accounts and checkpoints."""

    name: str
    app: Flask
    sessions: Callable[[], Session]
    log: TransparencyLog
    accounts: Accounts
    sign: Callable[[Session], Any]

    def client(self, user: str | None = None) -> FlaskClient:
        """A client; with ``user``, already signed in to the pages as that account."""
        client = self.app.test_client()
        if user is not None:
            with self.sessions() as db_session:
                session_id = self.accounts.sessions.start(db_session, user, datetime.now(UTC))
                db_session.commit()
            with client.session_transaction() as session:
                session[SESSION_ID] = session_id
        return client

    def user(self, username: str, role: str) -> None:
        with self.sessions() as session:
            self.accounts.add(session, username, PASSWORD, role, now=T0)
            session.commit()

    def append(self, *events: LogEvent) -> None:
        with self.sessions() as session:
            self.log.append_many(session, list(events))
            session.commit()

    def entries(self) -> list[Any]:
        with self.sessions() as session:
            return list(self.log.iter_entries(session, self.log.size(session)))


def story(n: int = 13) -> list[LogEvent]:
    """``n`` events of a few types between a few members."""
    kinds = [("agreement.requested", "cn-ntlnp"), ("package.served", "cn-ntlnp"),
             ("token.issued", "jp-mos"), ("package.served", "kr-nie")]
    return [LogEvent(kinds[i % 4][0], T0 + timedelta(minutes=i), member=kinds[i % 4][1],
                     agreement=f"{kinds[i % 4][1]}.a{i % 3}", fields={"n": i, "rows": {"x": i}})
            for i in range(n)]


@pytest.fixture(params=["node", "registry"])
def service(request: pytest.FixtureRequest, tmp_path: Path, database_url: str
            ) -> Iterator[Service]:
    if request.param == "node":
        settings = init_node(tmp_path / "node", "ru-lotl", "Land of the Leopard National Park",
                             "RU", database_url=database_url)
        app = create_node_app({"CORRIDOR_SETTINGS": settings})
        key = load_signing_key(settings.keys_dir)
        origin, name, log, accounts = node_origin("ru-lotl"), "ru-lotl", NODE_LOG, NODE_ACCOUNTS
    else:
        rsettings = init_registry(tmp_path / "registry", "Test Registry", "http://127.0.0.1:9",
                                  development=True, database_url=database_url)
        app = create_registry_app({"CORRIDOR_SETTINGS": rsettings})
        key = load_signing_key(rsettings.keys_dir)
        origin, name, log, accounts = (REGISTRY_ORIGIN, REGISTRY_NAME, REGISTRY_LOG,
                                        REGISTRY_ACCOUNTS)
    engine = make_engine(app.extensions["corridor_settings"].database_url)

    def sign(session: Session) -> Any:
        return log.sign_checkpoint(session, origin, name, key, T0)

    svc = Service(request.param, app, make_session_factory(engine), log, accounts, sign)
    svc.user("ivan", "auditor")
    svc.user("ada", "admin")
    yield svc
    engine.dispose()
    app.extensions["corridor_db"][0].dispose()


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def is_problem(response: TestResponse, status: int) -> bool:
    return (response.status_code == status
            and response.headers["Content-Type"] == "application/problem+json"
            and response.json is not None and response.json["status"] == status)


# --- the public checkpoint -------------------------------------------------------------


def test_checkpoint_is_public_text_and_404_before_the_first(service: Service) -> None:
    client = service.client()
    assert is_problem(client.get("/log/checkpoint"), 404)
    service.append(*story())
    with service.sessions() as session:
        row = service.sign(session)
        session.commit()
        note = row.note
    response = client.get("/log/checkpoint")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.get_data(as_text=True) == note
    assert note.splitlines()[1] == "13"


def test_checkpoint_carries_the_registry_cosignature(service: Service) -> None:
    service.append(*story(3))
    witness = SigningKey.generate()
    with service.sessions() as session:
        row = service.sign(session)
        row.note = add_signature(row.note, REGISTRY_NAME + "-witness", witness).decode()
        row.cosigned_at = T0
        session.commit()
    text = service.client().get("/log/checkpoint").get_data(as_text=True)
    assert text.count("\n\u2014 ") == 2 and f"\u2014 {REGISTRY_NAME}-witness " in text


# --- who may read ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ROUTES)
def test_every_audit_route_needs_credentials(service: Service, path: str) -> None:
    response = service.client().get(path)
    assert is_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == AUTH_CHALLENGE


@pytest.mark.parametrize("header", [
    basic("ivan", "not the password at all"), basic("nobody"), basic(""),
    {"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}, {"Authorization": "Basic !!!"},
    {"Authorization": "Basic " + base64.b64encode(b"ivan").decode()},
    {"Authorization": ""}])
def test_wrong_or_malformed_credentials_are_401(service: Service, header: dict[str, str]
                                                ) -> None:
    response = service.client().get("/log/entries", headers=header)
    assert is_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == AUTH_CHALLENGE


def test_wrong_credentials_win_over_a_valid_session(service: Service) -> None:
    # A request that names credentials is judged by them alone.
    response = service.client("ivan").get("/log/entries", headers=basic("ivan", "wrong" * 3))
    assert is_problem(response, 401)


def test_credentials_are_checked_before_the_parameters(service: Service) -> None:
    assert is_problem(service.client().get("/log/entries?bogus=1&from=-3"), 401)
    assert is_problem(service.client().get("/log/proof/inclusion"), 401)


def test_an_owner_may_not_read_the_log(service: Service) -> None:
    if service.name == "registry":
        with service.sessions() as session, pytest.raises(ValueError, match="unknown role"):
            service.accounts.add(session, "olga", PASSWORD, "owner", now=T0)
        return
    service.user("olga", "owner")
    for client, headers in ((service.client(), basic("olga")), (service.client("olga"), {})):
        for path in ROUTES:
            response = client.get(path, headers=headers)
            assert is_problem(response, 403) and "owner" in response.json["detail"]


@pytest.mark.parametrize("username", ["ivan", "ada"])
def test_auditors_and_admins_read_with_basic_and_nothing_is_written(
        service: Service, username: str) -> None:
    service.append(*story())
    response = service.client().get("/log/entries", headers=basic(username))
    assert response.status_code == 200 and response.is_json
    assert "Set-Cookie" not in response.headers  # Basic never starts a session
    with service.sessions() as session:
        assert service.log.size(session) == 13  # no sign-in entry for an API read
        user = service.accounts.get(session, username)
        assert user.last_login_at is None


def test_a_signed_in_session_is_enough_until_the_account_is_removed(service: Service) -> None:
    client = service.client("ivan")
    assert client.get("/log/entries").status_code == 200
    with service.sessions() as session:
        service.accounts.remove(session, "ivan")
        session.commit()
    assert is_problem(client.get("/log/entries"), 401)


# --- entries ---------------------------------------------------------------------------


def test_entries_are_the_stored_leaves_and_leaf_hashes(service: Service) -> None:
    service.append(*story())
    body = service.client("ivan").get("/log/entries").json
    stored = service.entries()
    assert body["size"] == 13 and body["next"] is None
    assert [e["index"] for e in body["entries"]] == list(range(13))
    for entry, row in zip(body["entries"], stored, strict=True):
        assert entry["leaf"] == row.leaf
        assert entry["hash"] == leaf_hash(entry["leaf"].encode()).hex() == row.hash.hex()
        assert json.loads(entry["leaf"])["index"] == entry["index"]
    assert set(body["entries"][0]) == {"index", "leaf", "hash"}


def test_an_empty_log_has_no_entries(service: Service) -> None:
    assert service.client("ivan").get("/log/entries").json == {
        "size": 0, "entries": [], "next": None}


@pytest.mark.parametrize(("query", "expected"), [
    ("from=5", list(range(5, 13))),
    ("to=3", [0, 1, 2]),
    ("from=4&to=7", [4, 5, 6]),
    ("from=13", []),
    ("from=6&to=6", []),
    ("type=package.served", [1, 3, 5, 7, 9, 11]),
    ("member=jp-mos", [2, 6, 10]),
    ("type=package.served&member=kr-nie", [3, 7, 11]),
    ("type=package.served&member=kr-nie&from=4&to=11", [7]),
    ("type=no.such.type", []),
])
def test_entries_filter_by_range_type_and_member(service: Service, query: str,
                                                 expected: list[int]) -> None:
    service.append(*story())
    body = service.client("ivan").get(f"/log/entries?{query}").json
    assert [e["index"] for e in body["entries"]] == expected
    assert body["size"] == 13 and body["next"] is None


def test_pages_follow_next_to_the_end(service: Service) -> None:
    service.append(*story(25))
    client = service.client("ivan")
    seen, position, pages = [], 0, 0
    while position is not None:
        body = client.get(f"/log/entries?from={position}&limit=10").json
        seen += [e["index"] for e in body["entries"]]
        position, pages = body["next"], pages + 1
    assert seen == list(range(25)) and pages == 3
    filtered = client.get("/log/entries?type=token.issued&limit=2").json
    assert [e["index"] for e in filtered["entries"]] == [2, 6] and filtered["next"] == 7
    rest = client.get("/log/entries?type=token.issued&limit=2&from=7").json
    assert [e["index"] for e in rest["entries"]] == [10, 14] and rest["next"] == 15


def test_a_page_holds_at_most_1000_entries(service: Service) -> None:
    service.append(*story(1003))
    client = service.client("ivan")
    first = client.get("/log/entries").json
    assert len(first["entries"]) == 1000 and first["next"] == 1000
    second = client.get("/log/entries?from=1000").json
    assert [e["index"] for e in second["entries"]] == [1000, 1001, 1002]
    assert second["next"] is None
    # A full last page says nothing follows.
    exact = client.get("/log/entries?from=3").json
    assert len(exact["entries"]) == 1000 and exact["next"] is None


@pytest.mark.parametrize("query", [
    "from=-1", "to=-1", "from=x", "to=1.5", "from=", "from=5&to=2", "to=14", "from=14",
    "bogus=1", "type=", "member=", "type=" + "t" * 41, "limit=0", "limit=1001", "limit=x",
    "format=xml", "from=99999999999999999999999",
])
def test_bad_entry_parameters_are_422(service: Service, query: str) -> None:
    service.append(*story())
    response = service.client("ivan").get(f"/log/entries?{query}")
    assert is_problem(response, 422), response.get_data(as_text=True)


def test_a_bound_beyond_the_log_is_named(service: Service) -> None:
    service.append(*story())
    body = service.client("ivan").get("/log/entries?to=20").json
    assert body["detail"] == "to=20 is beyond the log, which has 13 entries"
    assert body["errors"] == {"to": ["at most 13"]}


# --- CSV -------------------------------------------------------------------------------


def rows_of(response: TestResponse) -> list[list[str]]:
    """The CSV rows of a streamed response (closed: its request context ends)."""
    with response:
        return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_export_decodes_the_leaves(service: Service) -> None:
    service.append(*story(5))
    client = service.client("ivan")
    response = client.get("/log/entries?format=csv&type=package.served")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    label = "ru-lotl" if service.name == "node" else "registry"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{label}-log-0-5.csv"')
    rows = rows_of(response)
    assert response.get_data(as_text=True).endswith("\r\n")
    assert rows[0] == list(CSV_COLUMNS)
    hashes = {e["index"]: e["hash"] for e in client.get("/log/entries").json["entries"]}
    assert rows[1] == ["1", "2026-11-22T09:01:00.000000Z", "package.served", "cn-ntlnp",
                       "cn-ntlnp.a1", '{"n":1,"rows":{"x":1}}', hashes[1]]
    assert [row[0] for row in rows[1:]] == ["1", "3"]


def test_csv_cells_cannot_run_as_formulas(service: Service) -> None:
    service.append(FORMULA, LogEvent("plain", T0))
    rows = rows_of(service.client("ivan").get("/log/entries?format=csv"))
    assert rows[1][1:6] == ["2026-11-22T09:09:00.000000Z", "'=HYPERLINK(\"http://evil.example\")",
                            "'+cn-ntlnp", "'-1+1", '{"note":"@SUM(A1)"}']
    assert rows[2][1:6] == ["2026-11-22T09:00:00.000000Z", "plain", "", "", ""]


@pytest.mark.parametrize("detail", ["@SUM(A1)", "=1+1", "-2", "+3"])
def test_a_leaf_whose_details_start_with_a_formula_character_is_guarded(
        service: Service, detail: str) -> None:
    # Details are JSON objects ("{..."), so only a non-object leaf could start with these.
    from corridor.log_api import csv_cells
    from corridor.tlog import LogEntry

    cells = csv_cells(LogEntry(0, json.dumps({"type": detail, "member": detail}), b"\x00"))
    assert cells[2] == cells[3] == "'" + detail


def test_accept_text_csv_selects_csv_and_format_json_wins(service: Service) -> None:
    service.append(*story(3))
    client = service.client("ivan")
    by_accept = client.get("/log/entries", headers={"Accept": "text/csv"})
    assert by_accept.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert len(rows_of(by_accept)) == 4
    explicit = client.get("/log/entries?format=json", headers={"Accept": "text/csv"})
    assert explicit.is_json and len(explicit.json["entries"]) == 3
    assert client.get("/log/entries", headers={"Accept": "*/*"}).is_json


def test_csv_streams_every_entry_a_batch_at_a_time(service: Service) -> None:
    total = 2 * CSV_BATCH + 7
    service.append(*story(total))
    response = service.client("ivan").get("/log/entries?format=csv", buffered=False)
    assert response.is_streamed
    chunks = list(response.response)
    response.close()
    # The header, then one chunk per batch: never the whole file in one piece.
    assert len(chunks) == 4
    text = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert [int(r[0]) for r in rows[1:]] == list(range(total))


def test_csv_refusals_are_problems_too(service: Service) -> None:
    assert is_problem(service.client().get("/log/entries?format=csv"), 401)
    assert is_problem(service.client("ivan").get("/log/entries?format=csv&to=5"), 422)


# --- proofs ----------------------------------------------------------------------------


def proof_bytes(body: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(h, validate=True) for h in body["proof"]]


def test_inclusion_proofs_verify_against_the_root(service: Service) -> None:
    service.append(*story())
    client = service.client("ivan")
    leaves = [e.leaf.encode() for e in service.entries()]
    with service.sessions() as session:
        for size in (1, 2, 7, 8, 13):
            root = service.log.root(session, size)
            for index in range(size):
                body = client.get(f"/log/proof/inclusion?index={index}&size={size}").json
                assert (body["index"], body["size"]) == (index, size)
                verify_inclusion(leaf_hash(leaves[index]), index, size, proof_bytes(body), root)
        current = client.get("/log/proof/inclusion?index=4").json
        assert current["size"] == 13
        verify_inclusion(leaf_hash(leaves[4]), 4, 13, proof_bytes(current),
                         service.log.root(session, 13))


def test_consistency_proofs_verify_against_both_roots(service: Service) -> None:
    service.append(*story())
    client = service.client("ivan")
    with service.sessions() as session:
        for new in (1, 5, 8, 13):
            for old in range(new + 1):
                body = client.get(f"/log/proof/consistency?from={old}&to={new}").json
                assert (body["from"], body["to"]) == (old, new)
                verify_consistency(old, new, proof_bytes(body), service.log.root(session, old),
                                   service.log.root(session, new))
        current = client.get("/log/proof/consistency?from=6").json
        assert current["to"] == 13
        verify_consistency(6, 13, proof_bytes(current), service.log.root(session, 6),
                           service.log.root(session, 13))


@pytest.mark.parametrize("query", [
    "inclusion?index=13", "inclusion?index=5&size=5", "inclusion?index=0&size=14",
    "inclusion?index=0&size=0", "inclusion?size=3", "inclusion?index=-1", "inclusion?index=a",
    "inclusion?index=0&from=1", "inclusion?index=1.0",
    "consistency?from=4&to=3", "consistency?to=3", "consistency?from=0&to=14",
    "consistency?from=14", "consistency?from=-1", "consistency?from=1&index=2",
])
def test_bad_or_out_of_range_proof_parameters_are_422(service: Service, query: str) -> None:
    service.append(*story())
    response = service.client("ivan").get(f"/log/proof/{query}")
    assert is_problem(response, 422), response.get_data(as_text=True)


def test_an_empty_log_proves_only_the_empty_tree(service: Service) -> None:
    client = service.client("ivan")
    assert client.get("/log/proof/consistency?from=0").json == {"from": 0, "to": 0,
                                                                 "proof": []}
    assert is_problem(client.get("/log/proof/inclusion?index=0"), 422)


# --- documentation ---------------------------------------------------------------------


def test_the_openapi_document_describes_the_audit_routes(service: Service) -> None:
    paths = service.client().get("/openapi.json").json["paths"]
    assert {"/log/checkpoint", "/log/entries", "/log/proof/inclusion",
            "/log/proof/consistency"} <= set(paths)
    entries = paths["/log/entries"]["get"]
    assert set(entries["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {"401", "403", "422"} <= set(entries["responses"])
    names = {p["name"] for p in entries["parameters"]}
    assert names == {"from", "to", "type", "member", "format", "limit"}
    checkpoint = paths["/log/checkpoint"]["get"]["responses"]
    assert set(checkpoint["200"]["content"]) == {"text/plain"} and "404" in checkpoint
