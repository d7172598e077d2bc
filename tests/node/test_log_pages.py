"""The node's exchange log page: who may see it, filters, pages, escaping, checkpoint checks.

Also: a sign-in is itself on the record (``user.login``), committed with the
sign-in time.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key
from corridor.log_api import CheckpointTrust, checkpoint_status, current_audit
from corridor.pages import LOG_PAGE_SIZE
from corridor.tlog import REGISTRY_NAME, LogEvent, node_origin
from crypto.checkpoint import Checkpoint, add_signature, sign_note
from crypto.keys import KeySet, SigningKey
from crypto.trustlist import ANCHOR_TYP
from node.app import create_app
from node.cli import init_node
from node.log.exchange_log import LOG
from node.models import User
from node.settings import NodeSettings, load_settings
from node.web.users import add_user

pytestmark = pytest.mark.storage

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
ME = "ru-lotl"
REGISTRY_KEY = SigningKey.generate()
REGISTRY_URL = "http://127.0.0.1:9"


@contextmanager
def database(settings: NodeSettings) -> Iterator[Session]:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@pytest.fixture
def node(tmp_path: Path, database_url: str) -> NodeSettings:
    """A node that pins REGISTRY_KEY, with an owner, an auditor and an admin."""
    anchor = tmp_path / "anchor.json"
    anchor.write_text(json.dumps({"typ": ANCHOR_TYP, "name": "Test Registry",
                                  "registry_url": REGISTRY_URL,
                                  **KeySet([REGISTRY_KEY.public_key]).to_jwks()}))
    settings = init_node(tmp_path / "node", ME, "Land of the Leopard National Park", "RU",
                         database_url=database_url, registry_url=REGISTRY_URL, anchor=anchor)
    with database(settings) as session:
        for username, role in (("olga", "owner"), ("ivan", "auditor"), ("ada", "admin")):
            add_user(session, username, PASSWORD, role, now=T0)
        session.commit()
    return settings


@pytest.fixture
def app(node: NodeSettings) -> Iterator[Flask]:
    app = create_app({"CORRIDOR_SETTINGS": node, "CORRIDOR_CLOCK": lambda: T0})
    yield app
    app.extensions["corridor_db"][0].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def append(settings: NodeSettings, *events: LogEvent) -> None:
    with database(settings) as session:
        LOG.append_many(session, list(events))
        session.commit()


def events(n: int, start: int = 0) -> list[LogEvent]:
    kinds = [("package.served", "cn-ntlnp"), ("agreement.decided", "cn-ntlnp"),
             ("package.received", "kr-nie")]
    return [LogEvent(kinds[i % 3][0], T0 + timedelta(seconds=i), member=kinds[i % 3][1],
                     agreement=f"{kinds[i % 3][1]}.0123456789abcdef", fields={"rows": i})
            for i in range(start, start + n)]


def csrf_token(client: FlaskClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(
        as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> TestResponse:
    return client.post("/login", data={"csrf_token": csrf_token(client, "/login"),
                                       "username": username, "password": password})


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def listed(page: str) -> list[int]:
    """Indexes of the entries the page lists."""
    table = page.split('<table class="log">', 1)[1].split("</table>", 1)[0] \
        if '<table class="log">' in page else ""
    return [int(i) for i in re.findall(r'<td class="num">(\d+)</td>', table)]


def links(page: str) -> dict[str, dict[str, list[str]]]:
    """The pagination links: label -> query."""
    nav = re.search(r'<nav class="pages"[^>]*>(.*?)</nav>', page, re.S)
    if not nav:
        return {}
    return {label: parse_qs(urlsplit(href.replace("&amp;", "&")).query)
            for href, label in re.findall(r'<a href="([^"]+)">(\w+)</a>', nav.group(1))}


# --- who may see it ----------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/log?type=package.served")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.path, parse_qs(location.query)) == (
        "/login", {"next": ["/log?type=package.served"]})


def test_owners_read_their_node_log_without_token_ids(client: FlaskClient,
                                                     node: NodeSettings) -> None:
    append(node, LogEvent("package.served", T0, member="cn-ntlnp",
                          agreement="cn-ntlnp.0123456789abcdef",
                          fields={"rows": {"observations": 1773, "media": 1},
                                  "token_jti": "secret-jti-1", "cursor": "c0ffee"}),
           LogEvent("fetch.refused", T0 + timedelta(hours=20), member="cn-ntlnp",
                    agreement="cn-ntlnp.0123456789abcdef",
                    fields={"status": 409, "reason": "approved, not active",
                            "token_jti": "secret-jti-2"}))
    sign_in(client, "olga")
    assert 'href="/log">Log</a>' in text(client.get("/inbox"))
    response = client.get("/log")
    assert response.status_code == 200
    page = text(response)
    assert ("Package served to cn-ntlnp under agreement cn-ntlnp.0123456789abcdef: "
            "1 medium, 1,773 observations.") in page
    assert ("A package request from cn-ntlnp under agreement cn-ntlnp.0123456789abcdef was "
            "refused (status 409). Reason: approved, not active") in page
    assert "secret-jti" not in page and "c0ffee" not in page and "Download CSV" not in page
    assert "Token ids and resumption cursors are shown to auditors only." in page
    # The API (JSON, CSV, proofs) stays with auditors and admins.
    assert client.get("/log/entries?format=csv").status_code == 403


def test_auditors_see_every_field_and_times_in_the_service_zone(
        tmp_path: Path, node: NodeSettings) -> None:
    append(node, LogEvent("package.served", T0, member="cn-ntlnp",
                          agreement="cn-ntlnp.0123456789abcdef",
                          fields={"rows": {"observations": 2}, "token_jti": "jti-1"}))
    config = node.directory / "node.toml"
    config.write_text(config.read_text().replace('time_zone = "UTC"',
                                                 'time_zone = "Asia/Vladivostok"'))
    app = create_app({"CORRIDOR_SETTINGS": load_settings(node.directory),
                      "CORRIDOR_CLOCK": lambda: T0})
    try:
        client = app.test_client()
        sign_in(client, "ivan")
        page = text(client.get("/log"))
    finally:
        app.extensions["corridor_db"][0].dispose()
    assert "<th>Time (Asia/Vladivostok)</th>" in page
    assert '<td class="nowrap">2026-11-22 19:00:00</td>' in page  # 09:00 UTC is 19:00 there
    assert "&#34;token_jti&#34;: &#34;jti-1&#34;" in page and "Download CSV" in page


def test_the_chart_counts_exchanges_and_refusals_per_day(client: FlaskClient,
                                                        node: NodeSettings) -> None:
    day = timedelta(days=1)
    append(node, *[LogEvent(kind, T0 - offset, member="cn-ntlnp", agreement=None,
                            fields={})
                   for kind, offset in (("package.served", day), ("counts.received", day),
                                        ("fetch.refused", day), ("package.served", 0 * day),
                                        ("policy.changed", 0 * day),
                                        ("package.served", 40 * day))])
    sign_in(client, "ivan")
    page = text(client.get("/log"))
    assert "<title>2026-11-21: 2 exchanges, 1 refusals</title>" in page
    assert "<title>2026-11-22: 1 exchanges, 0 refusals</title>" in page  # sign-in not counted
    assert "3 exchanges, 1 refusals</title>" in page  # 40 days ago is off the chart
    assert page.count('<rect class="bar-exchange"') == 30


def test_other_roles_may_not_read_the_log(client: FlaskClient, node: NodeSettings) -> None:
    with database(node) as session:
        add_user(session, "guest", PASSWORD, "owner", now=T0)
        user = session.get(User, "guest")
        assert user is not None
        user.role = "visitor"  # a role the pages do not know
        session.commit()
    sign_in(client, "guest")
    response = client.get("/log")
    assert response.status_code in (401, 403)


@pytest.mark.parametrize("username", ["ivan", "ada"])
def test_auditors_and_admins_read_it_from_the_menu(client: FlaskClient, username: str) -> None:
    sign_in(client, username)
    assert 'href="/log">Log</a>' in text(client.get("/inbox"))
    response = client.get("/log")
    assert response.status_code == 200
    assert "<h1>Exchange log</h1>" in text(response)
    assert 'href="/log" aria-current="page"' in text(response)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


# --- sign-in is on the record ------------------------------------------------------------


def test_a_sign_in_is_logged_with_its_time(client: FlaskClient, node: NodeSettings) -> None:
    assert sign_in(client, "ivan", "not the password at all").status_code == 401
    assert sign_in(client, "nobody").status_code == 401
    with database(node) as session:
        assert LOG.size(session) == 0  # failures are not logged (anyone could fill the log)
    assert sign_in(client, "ivan").status_code == 302
    with database(node) as session:
        [entry] = LOG.entries(session)
        assert json.loads(entry.leaf) == {"type": "user.login", "index": 0,
                                          "at": "2026-11-22T09:00:00.000000Z",
                                          "username": "ivan", "role": "auditor"}
        user = session.get(User, "ivan")
        assert user is not None and user.last_login_at == T0
    page = text(client.get("/log"))
    assert listed(page) == [0] and "user.login" in page


# --- entries -----------------------------------------------------------------------------


def test_filters_narrow_the_list_and_stay_in_the_form(client: FlaskClient,
                                                      node: NodeSettings) -> None:
    append(node, *events(12))
    sign_in(client, "ivan")  # entry 12
    page = text(client.get("/log"))
    assert listed(page) == list(range(13))
    assert '<option value="package.received">' in page  # every type is a choice

    page = text(client.get("/log?type=package.served&member=&from=&to="))
    assert listed(page) == [0, 3, 6, 9]
    assert '<option value="package.served" selected>' in page
    page = text(client.get("/log?member=kr-nie&from=3&to=9"))
    assert listed(page) == [5, 8]
    assert 'id="member" name="member" maxlength="40" value="kr-nie"' in page
    assert 'id="from" name="from" inputmode="numeric" value="3"' in page
    assert "(filtered)" in page
    assert "No entries match." in text(client.get("/log?member=jp-mos"))


def test_the_csv_link_exports_what_the_filters_show(client: FlaskClient,
                                                    node: NodeSettings) -> None:
    append(node, *events(12))
    sign_in(client, "ivan")
    page = text(client.get("/log?type=package.served&to=10"))
    href = re.search(r'<a href="([^"]+)" download>Download CSV</a>', page)
    assert href
    url = href.group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(url).query) == {"type": ["package.served"], "to": ["10"],
                                             "format": ["csv"]}
    with client.get(url) as response:  # the page's session is enough
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        rows = list(csv.reader(io.StringIO(text(response))))
    assert [r[0] for r in rows[1:]] == ["0", "3", "6", "9"]


def test_long_logs_come_in_pages(client: FlaskClient, node: NodeSettings) -> None:
    append(node, *events(4 * LOG_PAGE_SIZE))
    sign_in(client, "ivan")  # one more entry: 401 in all
    first = text(client.get("/log"))
    assert listed(first) == list(range(LOG_PAGE_SIZE))
    assert links(first) == {"Next": {"from": ["100"]}, "Last": {"from": ["301"]}}

    middle = text(client.get("/log?from=100"))
    assert listed(middle) == list(range(100, 200))
    assert links(middle) == {"First": {"from": ["0"]}, "Previous": {"from": ["0"]},
                             "Next": {"from": ["200"]}, "Last": {"from": ["301"]}}
    last = text(client.get("/log?from=301"))
    assert listed(last) == list(range(301, 401))
    assert links(last) == {"First": {"from": ["0"]}, "Previous": {"from": ["201"]}}

    # Filters travel with the page links; only matching entries count.
    served = text(client.get("/log?type=package.served&to=400"))
    assert listed(served) == list(range(0, 300, 3))
    assert links(served) == {"Next": {"type": ["package.served"], "to": ["400"],
                                      "from": ["298"]}}
    rest = text(client.get("/log?type=package.served&to=400&from=298"))
    assert listed(rest) == list(range(300, 400, 3))
    assert links(rest)["Previous"] == {"type": ["package.served"], "to": ["400"],
                                       "from": ["0"]}


@pytest.mark.parametrize(("query", "message"), [
    ("from=abc", "from: Not a valid integer."),
    ("from=-1", "from: Must be greater than or equal to 0."),
    ("from=9&to=3", "from: from must not be greater than to"),
    ("to=99", "to: the log has 3 entries"),
    ("from=99", "from: at most 3"),
    ("page=2", "page: Unknown field."),
    ("format=csv", "format: Unknown field."),
])
def test_bad_filters_say_why_and_list_nothing(client: FlaskClient, node: NodeSettings,
                                              query: str, message: str) -> None:
    append(node, *events(2))
    sign_in(client, "ivan")
    response = client.get(f"/log?{query}")
    assert response.status_code == 422
    assert f"Nothing is listed: {message}" in text(response)
    assert listed(text(response)) == []
    assert "<h2 id=\"checkpoints\">" in text(response)  # the rest of the page still shows


def test_what_entries_say_is_escaped(client: FlaskClient, node: NodeSettings) -> None:
    append(node, LogEvent("<b>bold</b>", T0, member="<script>alert(1)</script>",
                          agreement='"><img src=x>', fields={"why": "<img src=x onerror=y>"}))
    sign_in(client, "ivan")
    page = text(client.get("/log"))
    for raw in ("<script>alert(1)", "<img src=x", "<b>bold"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=y&gt;" in page
    assert '<option value="&lt;b&gt;bold&lt;/b&gt;">' in page


# --- checkpoints -------------------------------------------------------------------------


def sign_at(node: NodeSettings, n: int, *, cosigner: SigningKey | None = None,
            witness_problem: str | None = None) -> None:
    """Append ``n`` entries, then sign (and cosign) a checkpoint of the log."""
    with database(node) as session:
        size = LOG.size(session)
        LOG.append_many(session, events(n, size))
        row = LOG.sign_checkpoint(session, node_origin(ME), ME,
                                  load_signing_key(node.keys_dir), T0)
        if cosigner is not None:
            row.note = add_signature(row.note, REGISTRY_NAME, cosigner).decode()
            row.cosigned_at = T0 + timedelta(minutes=1)
        row.witness_problem = witness_problem
        session.commit()


def checkpoint_row(page: str, size: int) -> str:
    table = page.split('<table class="checkpoints">', 1)[1].split("</table>", 1)[0]
    for row in table.split("<tr")[2:]:
        if f'<td class="num">{size}</td>' in row:
            return row
    raise AssertionError(f"no checkpoint of size {size} on the page")


def checks(row: str) -> list[str]:
    return re.findall(r'<span class="check check-\w+">([\w ]+)</span>', row)


def test_each_checkpoint_shows_what_checking_it_found(client: FlaskClient,
                                                      node: NodeSettings) -> None:
    sign_at(node, 3, cosigner=REGISTRY_KEY)
    sign_at(node, 2, witness_problem="inconsistent with the checkpoint cosigned at size 3")
    sign_at(node, 1, cosigner=SigningKey.generate())  # a "registry" the node does not pin
    sign_at(node, 1)
    with database(node) as session:  # a stored checkpoint whose root was rewritten
        row = LOG.checkpoint_at(session, 7)
        row.root = bytes(32)
        session.commit()
    sign_in(client, "ivan")
    page = text(client.get("/log"))

    good = checkpoint_row(page, 3)
    assert checks(good) == ["valid", "valid", "matches"] and 'class="ok"' in good
    refused = checkpoint_row(page, 5)
    assert checks(refused) == ["valid", "missing", "matches"]
    assert "Witness refused: inconsistent with the checkpoint cosigned at size 3" in refused
    forged = checkpoint_row(page, 6)
    assert checks(forged) == ["valid", "invalid", "matches"] and 'class="bad"' in forged
    assert "the cosignature by corridor-registry does not verify" in forged
    rewritten = checkpoint_row(page, 7)
    assert checks(rewritten) == ["invalid", "missing", "differs"]
    assert "the root recomputed from the stored tree differs" in rewritten
    assert f"\u2014 {ME} " in good  # the note itself, for a reader to copy


def test_a_checkpoint_signed_by_another_key_is_invalid(app: Flask, node: NodeSettings) -> None:
    with database(node) as session:
        LOG.append_many(session, events(4))
        root = LOG.root(session, 4)
        stranger = sign_note(Checkpoint(node_origin(ME), 4, root).body(), ME,
                             SigningKey.generate()).decode()
        other_origin = sign_note(Checkpoint("corridor/cn-ntlnp", 4, root).body(), ME,
                                 load_signing_key(node.keys_dir)).decode()
        with app.test_request_context():
            audit = current_audit()
            trust = audit.trust()
            for note in (stranger, other_origin):
                row: Any = LOG.checkpoint(size=4, root=root, note=note, signed_at=T0)
                status = checkpoint_status(audit, session, row, trust)
                assert (status.signature, status.root_matches, status.ok) == (
                    "invalid", True, False)


def test_without_a_pinned_registry_key_a_cosignature_is_unknown(
        app: Flask, node: NodeSettings) -> None:
    sign_at(node, 2, cosigner=REGISTRY_KEY)
    (node.directory / "anchor.json").unlink()
    with app.test_request_context(), database(node) as session:
        audit = current_audit()
        trust = audit.trust()
        assert trust == CheckpointTrust(node_origin(ME), ME, trust.signer_keys, REGISTRY_NAME,
                                        [])
        status = checkpoint_status(audit, session, LOG.checkpoint_at(session, 2), trust)
        assert (status.signature, status.cosignature, status.ok) == ("valid", "unknown", True)


def test_a_checkpoint_beyond_the_log_is_a_problem(app: Flask, node: NodeSettings) -> None:
    sign_at(node, 2)
    with app.test_request_context(), database(node) as session:
        audit = current_audit()
        row = LOG.checkpoint_at(session, 2)
        row.size = 9
        status = checkpoint_status(audit, session, row, audit.trust())
        assert status.root_matches is None
        assert "the checkpoint is larger than the log" in status.problems
