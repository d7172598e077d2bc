"""The registry's auditor pages: accounts on the CLI, sign-in, the log page, the witness page."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from corridor.tlog import REGISTRY_NAME, REGISTRY_ORIGIN, LogEvent, node_origin
from crypto.checkpoint import Checkpoint, add_signature, sign_note
from crypto.keys import SigningKey
from deploy.cli import main
from registry.log.exchange_log import LOG
from registry.models import User, WitnessedCheckpoint, WitnessRefusal
from registry.web.users import add_user

pytestmark = pytest.mark.storage

PASSWORD = "correct horse battery"


@pytest.fixture
def client(registry: Any) -> FlaskClient:
    with registry.sessions() as session:
        add_user(session, "ivan", PASSWORD, "auditor", now=registry.clock())
        add_user(session, "ada", PASSWORD, "admin", now=registry.clock())
        session.commit()
    client: FlaskClient = registry.app.test_client()
    return client


def csrf_token(client: FlaskClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(
        as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, username: str = "ivan", password: str = PASSWORD,
            **extra: str) -> TestResponse:
    return client.post("/login", data={"csrf_token": csrf_token(client, "/login"),
                                       "username": username, "password": password, **extra})


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def log_size(registry: Any) -> int:
    with registry.sessions() as session:
        return LOG.size(session)


# --- accounts on the CLI ----------------------------------------------------------------


def cli(registry: Any, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["registry", "--dir", str(registry.settings.directory),
                                     "users", *args], input=stdin)


def test_users_cli_adds_lists_and_removes_auditors(registry: Any) -> None:
    added = cli(registry, "add", "mei", "--role", "auditor", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert added.exit_code == 0 and "Added user mei (auditor)" in added.output
    prompted = cli(registry, "add", "root", "--role", "admin",
                   stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    listed = cli(registry, "list")
    assert re.search(r"mei\s+│\s+auditor\s+│.*│\s+never", listed.output), listed.output
    assert re.search(r"root\s+│\s+admin ", listed.output)
    rows = json.loads(cli(registry, "list", "--format", "json").output)
    assert [(r["user"], r["role"], r["last_sign_in"]) for r in rows] == [
        ("mei", "auditor", "never"), ("root", "admin", "never")]
    with registry.sessions() as session:
        user = session.get(User, "mei")
        assert user is not None and user.password_hash.startswith("scrypt:")
        assert PASSWORD not in user.password_hash
    assert cli(registry, "remove", "mei").exit_code == 0
    assert "mei" not in cli(registry, "list").output


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["add", "olga", "--role", "owner", "--password-stdin"], PASSWORD, "'owner' is not one of"),
    (["add", "mei", "--role", "auditor", "--password-stdin"], "short", "at least 12"),
    (["add", "Mei Li", "--role", "auditor", "--password-stdin"], PASSWORD, "not a valid"),
    (["remove", "nobody"], None, "no user nobody"),
])
def test_users_cli_refusals(registry: Any, args: list[str], stdin: str | None,
                            message: str) -> None:
    result = cli(registry, *args, stdin=stdin)
    assert result.exit_code != 0 and message in result.output
    assert "No users yet; add one with 'corridor registry users add NAME --role auditor'" \
        in cli(registry, "list").output


# --- signing in ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/log", "/witness", "/log?type=token.issued"])
def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.path, parse_qs(location.query)) == ("/login", {"next": [path]})


def test_the_login_form_needs_its_csrf_token(client: FlaskClient, registry: Any) -> None:
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post("/login", data={**data, "username": "ivan",
                                               "password": PASSWORD})
        assert response.status_code == 400 and "CSRF" in text(response)
    assert client.get("/log").status_code == 302
    assert log_size(registry) == 0


def test_wrong_password_and_unknown_user_look_the_same(client: FlaskClient,
                                                       registry: Any) -> None:
    wrong, unknown = sign_in(client, password="not the password"), sign_in(client, "nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password." in text(wrong) and "Wrong username" in text(unknown)
    assert log_size(registry) == 0


def test_sign_in_is_logged_and_opens_the_log(client: FlaskClient, registry: Any) -> None:
    response = sign_in(client, "ada")
    assert (response.status_code, response.headers["Location"]) == (302, "/log")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("corridor_registry_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    with registry.sessions() as session:
        [entry] = LOG.entries(session)
        leaf = json.loads(entry.leaf)
        assert {k: leaf[k] for k in ("type", "username", "role")} == {
            "type": "user.login", "username": "ada", "role": "admin"}
        user = session.get(User, "ada")
        assert user is not None and user.last_login_at == registry.clock()
    page = client.get("/log")
    assert page.status_code == 200 and "Signed in as ada (admin)." in text(page)
    assert "corridor registry users add NAME --role auditor" not in text(page)
    assert 'href="/witness">Witness</a>' in text(page)
    assert page.headers["X-Frame-Options"] == "DENY"


def test_next_never_leaves_the_registry(client: FlaskClient, registry: Any) -> None:
    response = sign_in(client, next="https://evil.example/")
    assert response.headers["Location"] == "/log"
    fresh = registry.app.test_client()
    assert sign_in(fresh, next="/witness").headers["Location"] == "/witness"


def test_sign_out_is_a_post(client: FlaskClient) -> None:
    sign_in(client)
    assert client.get("/logout").status_code == 405
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/log")})
    assert response.status_code == 302 and client.get("/log").status_code == 302


def test_the_login_page_tells_how_accounts_are_made(client: FlaskClient) -> None:
    page = text(client.get("/login"))
    assert "corridor registry users add NAME --role auditor" in page
    assert "/assets/corridor.css" in page
    assert client.get("/assets/corridor.css").status_code == 200


# --- the registry's log ------------------------------------------------------------------


def test_the_log_page_filters_and_escapes(client: FlaskClient, registry: Any) -> None:
    now = registry.clock()
    with registry.sessions() as session:
        LOG.append_many(session, [
            LogEvent("token.issued", now, member="cn-ntlnp", fields={"scope": "node:read"}),
            LogEvent("witness.refused", now, member="<i>kr</i>",
                     fields={"reason": "<script>alert(1)</script>"}),
            LogEvent("token.issued", now, member="ru-lotl")])
        LOG.sign_checkpoint(session, REGISTRY_ORIGIN, REGISTRY_NAME, registry.key, now)
        session.commit()
    sign_in(client)  # entry 3
    page = text(client.get("/log?type=token.issued"))
    assert re.findall(r'<td class="num">(\d+)</td>', page.split("<table class=\"log\">")[1]
                      .split("</table>")[0]) == ["0", "2"]
    page = text(client.get("/log?member=%3Ci%3Ekr%3C%2Fi%3E"))
    assert "<script>alert(1)" not in page and "<i>kr" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # The registry's own checkpoint: its signature checked, no witness column.
    checkpoints = page.split('<table class="checkpoints">')[1].split("</table>")[0]
    assert "Cosignature" not in checkpoints
    assert re.findall(r'class="check check-(\w+)"', checkpoints) == ["valid", "valid"]


def test_the_log_api_takes_the_pages_session(client: FlaskClient, registry: Any) -> None:
    assert client.get("/log/entries").status_code == 401
    sign_in(client)
    body = client.get("/log/entries").json
    assert body["size"] == 1 and json.loads(body["entries"][0]["leaf"])["type"] == "user.login"


# --- the witness ---------------------------------------------------------------------------


def member_note(registry: Any, member_id: str, size: int, *, witness: SigningKey) -> str:
    """A checkpoint of ``member_id``'s log signed by its key, cosigned by ``witness``."""
    key = registry.members[member_id].key
    body = Checkpoint(node_origin(member_id), size, bytes([size]) * 32).body()
    return add_signature(sign_note(body, member_id, key), REGISTRY_NAME, witness).decode()


def test_the_witness_page_shows_cosigned_checkpoints_and_refusals(
        client: FlaskClient, registry: Any) -> None:
    registry.add_member("cn-ntlnp")
    registry.add_member("ru-lotl")
    now = registry.clock()
    good = member_note(registry, "cn-ntlnp", 12, witness=registry.key)
    forged = member_note(registry, "ru-lotl", 4, witness=SigningKey.generate())
    offered = member_note(registry, "cn-ntlnp", 7, witness=registry.key)
    with registry.sessions() as session:
        session.add_all([
            WitnessedCheckpoint(member="cn-ntlnp", size=12, root=bytes([12]) * 32, note=good,
                                cosigned_at=now),
            WitnessedCheckpoint(member="ru-lotl", size=4, root=bytes([4]) * 32, note=forged,
                                cosigned_at=now),
            WitnessRefusal(member="cn-ntlnp", at=now + timedelta(minutes=1),
                           reason="smaller than the cosigned size 12 <b>shrunk</b>",
                           cosigned_note=good, offered_note=offered, proof=["AAAA", "BBBB"]),
        ])
        session.commit()
    sign_in(client)
    page = text(client.get("/witness"))
    cosigned = page.split('id="cosigned"')[1].split("</table>")[0]
    rows = cosigned.split("<tr")[2:]
    assert "cn-ntlnp" in rows[0] and re.findall(r"check-(\w+)", rows[0]) == ["valid", "valid"]
    assert "ru-lotl" in rows[1] and re.findall(r"check-(\w+)", rows[1]) == ["valid", "invalid"]
    assert bytes([12]).hex() * 32 in rows[0]
    refusals = page.split('id="refusals"')[1]
    assert "smaller than the cosigned size 12 &lt;b&gt;shrunk&lt;/b&gt;" in refusals
    assert "corridor/cn-ntlnp\n7\n" in refusals and "corridor/cn-ntlnp\n12\n" in refusals
    assert "proof (2 hashes)" in refusals and "AAAA\nBBBB" in refusals


def test_an_empty_witness_page_says_so(client: FlaskClient) -> None:
    sign_in(client)
    page = text(client.get("/witness"))
    assert "No member checkpoint has been cosigned yet." in page
    assert "No checkpoint has been refused." in page
