"""The owner's web pages: sign-in, CSRF, roles, decisions signed from a browser form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key, public_keys
from crypto.keys import KeySet, SigningKey
from node.app import create_app
from node.cli import node as node_command
from node.data.importer import Importer
from node.data.policy_store import set_policy
from node.exchange.agreements import STORE, restore, store_view
from node.models import Agreement as AgreementRow
from node.models import User
from node.settings import NodeSettings
from node.web.users import UserError, add_user, authenticate, remove_user
from policies.agreements import next_event, replay

pytestmark = pytest.mark.storage

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PARTNER = "cn-ntlnp"
PARTNER_KEY = SigningKey.generate()
AGREEMENT = "cn-ntlnp.0123456789abcdef"
DATASET = "camtrap-dp-example-dataset"
PASSWORD = "correct horse battery"
TERMS = {"provider": "ru-lotl", "dataset": f"ru-lotl/{DATASET}", "purpose": "joint-monitoring",
         "tier": "generalized", "until": "2027-06-30"}


class Clock:
    """The app's clock; tests move it forward between steps."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def database(settings: NodeSettings) -> Iterator[Session]:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def keys_for(settings: NodeSettings) -> Any:
    return lambda m: (KeySet([PARTNER_KEY.public_key]) if m == PARTNER
                      else public_keys(settings.keys_dir))


def file_request(settings: NodeSettings, *, reason: str = "Leopards cross the border here.",
                 agreement_id: str = AGREEMENT, **changes: Any) -> None:
    """The partner's signed request, as the node stores it after a sync."""
    event = next_event(None, action="request", actor=PARTNER, role="requester", at=T0,
                       key=PARTNER_KEY, terms={**TERMS, **changes}, reason=reason,
                       agreement_id=agreement_id)
    with database(settings) as session:
        store_view(session, {"id": agreement_id, "events": [event.jws]}, me=settings.member_id,
                   keys_for=keys_for(settings), now=T0)
        session.commit()


def partner_acts(settings: NodeSettings, action: str, at: datetime,
                 agreement_id: str = AGREEMENT, role: str = "requester") -> None:
    """The partner's next signed event (accept, approve, ...), merged as after a sync."""
    with database(settings) as session:
        row = STORE.get(session, agreement_id)
        event = next_event(restore(session, row), action=action, actor=PARTNER, role=role,
                           at=at, key=PARTNER_KEY)
        store_view(session, {"id": agreement_id,
                             "events": [*STORE.history(session, agreement_id), event.jws]},
                   me=settings.member_id, keys_for=keys_for(settings), now=at)
        session.commit()


def stored(settings: NodeSettings, agreement_id: str = AGREEMENT) -> tuple[AgreementRow,
                                                                           list[str]]:
    with database(settings) as session:
        return STORE.get(session, agreement_id), STORE.history(session, agreement_id)


def make_user(settings: NodeSettings, username: str, role: str) -> None:
    with database(settings) as session:
        add_user(session, username, PASSWORD, role, now=T0)
        session.commit()


@pytest.fixture
def node(node_settings: NodeSettings, camtrap_example: Path) -> NodeSettings:
    engine = make_engine(node_settings.database_url)
    Importer(engine).import_camtrap(camtrap_example)
    engine.dispose()
    make_user(node_settings, "olga", "owner")
    make_user(node_settings, "ivan", "auditor")
    return node_settings


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(node: NodeSettings, clock: Clock) -> Flask:
    return create_app({"CORRIDOR_SETTINGS": node, "CORRIDOR_CLOCK": clock})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_token(client: FlaskClient, path: str) -> str:
    """The token from a page's form, as a browser would submit it."""
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD,
            next_: str | None = None) -> TestResponse:
    data = {"csrf_token": csrf_token(client, "/login"), "username": username,
            "password": password}
    if next_ is not None:
        data["next"] = next_
    return client.post("/login", data=data)


def decide(client: FlaskClient, decision: str, reason: str = "Fits our joint plan.",
           **fields: str) -> TestResponse:
    token = csrf_token(client, f"/requests/{AGREEMENT}")
    return client.post(f"/requests/{AGREEMENT}/decide",
                       data={"csrf_token": token, "decision": decision, "reason": reason,
                             **fields})


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


# --- signing in --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/inbox", "/agreements", f"/requests/{AGREEMENT}"])
def test_signed_out_visitors_are_sent_to_the_login_page(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.path, parse_qs(location.query)) == ("/login", {"next": [path]})


def test_sign_in_returns_to_the_page_asked_for(client: FlaskClient) -> None:
    assert client.get("/agreements").headers["Location"] == "/login?next=/agreements"
    response = sign_in(client, "olga", next_="/agreements")
    assert (response.status_code, response.headers["Location"]) == (302, "/agreements")
    assert "Agreements" in text(client.get("/agreements"))


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x",
                                    "/\\evil.example", "javascript:alert(1)",
                                    "http:/evil.example"])
def test_next_is_never_an_outside_url(client: FlaskClient, target: str) -> None:
    response = sign_in(client, "olga", next_=target)
    assert (response.status_code, response.headers["Location"]) == (302, "/inbox")


def test_a_next_with_a_nul_is_refused_outright(client: FlaskClient) -> None:
    assert client.get("/login?next=/%00x").status_code == 400


def test_wrong_password_and_unknown_user_look_the_same(client: FlaskClient) -> None:
    wrong = sign_in(client, "olga", "not the password at all")
    unknown = sign_in(client, "nobody", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password." in text(wrong)
    assert "Wrong username or password." in text(unknown)
    assert client.get("/inbox").status_code == 302  # still signed out


def test_passwords_are_used_verbatim(client: FlaskClient, node: NodeSettings) -> None:
    with database(node) as session:
        add_user(session, "kim", "  spaces count too  ", "owner", now=T0)
        session.commit()
    assert sign_in(client, "kim", "spaces count too").status_code == 401
    assert sign_in(client, "kim", "  spaces count too  ").status_code == 302


def test_sign_in_records_the_time_and_a_removed_user_is_signed_out(
        client: FlaskClient, node: NodeSettings, clock: Clock) -> None:
    clock.now = T0 + timedelta(minutes=5)
    assert sign_in(client, "olga").status_code == 302
    assert client.get("/inbox").status_code == 200
    with database(node) as session:
        user = session.get(User, "olga")
        assert user is not None and user.last_login_at == clock.now
        remove_user(session, "olga")
        session.commit()
    response = client.get("/inbox")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_sign_out_is_a_post_and_ends_the_session(client: FlaskClient) -> None:
    sign_in(client, "olga")
    assert client.get("/logout").status_code == 405
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox")})
    assert response.status_code == 302
    assert client.get("/inbox").status_code == 302


def test_session_cookie_is_http_only_and_same_site(client: FlaskClient) -> None:
    cookie = client.get("/login").headers["Set-Cookie"]
    assert cookie.startswith("corridor_node_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # no URL configured: development on loopback
    signed_in = sign_in(client, "olga").headers["Set-Cookie"]
    assert "Expires=" in signed_in  # a permanent session: 12 hours, then sign in again


def test_session_cookie_is_secure_on_an_https_node(node: NodeSettings, clock: Clock) -> None:
    app = create_app({"CORRIDOR_SETTINGS": node.with_overrides(url="https://node.example.org"),
                      "CORRIDOR_CLOCK": clock})
    assert app.permanent_session_lifetime == timedelta(hours=12)  # as the server's row
    cookie = app.test_client().get("/login", base_url="https://node.example.org"
                                   ).headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_pages_cannot_be_framed_or_cached(client: FlaskClient) -> None:
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


# --- CSRF -------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_a_post_without_a_valid_csrf_token_changes_nothing(
        client: FlaskClient, node: NodeSettings, token: str | None) -> None:
    file_request(node)
    sign_in(client, "olga")
    data = {"decision": "approve", "reason": "looks fine"}
    if token is not None:
        data["csrf_token"] = token
    response = client.post(f"/requests/{AGREEMENT}/decide", data=data)
    assert response.status_code == 400
    assert "CSRF" in text(response) and "nothing was changed" in text(response)
    row, history = stored(node)
    assert row.state == "requested" and len(history) == 1


def test_the_token_api_is_not_csrf_checked(client: FlaskClient) -> None:
    # An API POST reaches routing (405), not the CSRF check (400), and needs no session.
    assert client.post("/datasets").status_code == 405
    response = client.get("/datasets")
    assert response.status_code == 200 and response.is_json


# --- roles ------------------------------------------------------------------------


def test_an_auditor_sees_everything_but_cannot_decide(client: FlaskClient,
                                                      node: NodeSettings) -> None:
    file_request(node)
    sign_in(client, "ivan")
    page = text(client.get(f"/requests/{AGREEMENT}"))
    assert "Leopards cross the border here." in page and "cn-ntlnp" in page
    assert 'value="approve"' not in page and "Narrow and approve" not in page
    assert "can view this request but not decide it" in page
    response = decide(client, "approve")
    assert response.status_code == 403 and "auditor" in text(response)
    token = csrf_token(client, "/agreements")
    assert client.post(f"/agreements/{AGREEMENT}/revoke",
                       data={"csrf_token": token, "reason": "x"}).status_code == 403
    row, history = stored(node)
    assert row.state == "requested" and len(history) == 1


# --- the inbox and one request ----------------------------------------------------------


def test_inbox_lists_pending_requests_first(client: FlaskClient, node: NodeSettings) -> None:
    file_request(node, agreement_id="cn-ntlnp.aaaaaaaaaaaaaaaa")
    file_request(node)
    sign_in(client, "olga")
    decide(client, "refuse", "not now")  # the newer request is decided: it goes below
    page = text(client.get("/inbox"))
    assert "1 waiting for a decision" in page
    table = page[page.index("<tbody>"):]
    assert table.index("cn-ntlnp.aaaaaaaaaaaaaaaa") < table.index(AGREEMENT)
    assert "Your requests" in page


def test_request_page_shows_terms_policy_plan_and_row_estimate(
        client: FlaskClient, node: NodeSettings) -> None:
    file_request(node)
    sign_in(client, "olga")
    page = text(client.get(f"/requests/{AGREEMENT}"))
    assert "Requested terms" in page and "joint-monitoring" in page and "2027-06-30" in page
    assert f"Policy of ru-lotl/{DATASET}" in page and "730 days" in page
    assert "tier generalized for cn-ntlnp, purpose joint-monitoring" in page
    assert re.search(r"<td>observations</td><td class=\"num\">[\d,]+</td>", page)
    assert "History" in page and "request" in page


def test_the_request_page_maps_the_cameras_as_stored_and_as_released(
        client: FlaskClient, node: NodeSettings) -> None:
    file_request(node)
    sign_in(client, "olga")
    page = text(client.get(f"/requests/{AGREEMENT}"))
    assert f'<img src="/requests/{AGREEMENT}/map.png"' in page
    first = client.get(f"/requests/{AGREEMENT}/map.png")
    assert first.status_code == 200 and first.mimetype == "image/png"
    png = first.get_data()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (700, 600)
    cached = list((node.directory / "cache" / "maps").glob("*.png"))
    assert len(cached) == 1 and cached[0].read_bytes() == png
    assert oct(cached[0].stat().st_mode & 0o777) == "0o600"  # true positions: owner only
    assert client.get(f"/requests/{AGREEMENT}/map.png").get_data() == png  # from the cache
    stranger = client.application.test_client()
    assert stranger.get(f"/requests/{AGREEMENT}/map.png").status_code == 302  # sign in first


def test_the_narrow_form_offers_no_tier_wider_than_the_request(
        client: FlaskClient, node: NodeSettings) -> None:
    with database(node) as session:
        set_policy(session, DATASET, {"tiers": {"aggregate": {"aggregate_only": True},
                                                "generalized": {},
                                                "full": {"apply_sensitivity": False}},
                                      "purposes": ["joint-monitoring"], "partners": ["*"]}, T0)
        session.commit()
    file_request(node)  # generalized
    sign_in(client, "olga")
    page = text(client.get(f"/requests/{AGREEMENT}"))
    offered = re.findall(r'<option value="(\w+)"(?: selected)?>\1</option>', page)
    assert offered == ["generalized", "aggregate"], offered


def test_aggregate_tier_has_no_row_package(client: FlaskClient, node: NodeSettings) -> None:
    file_request(node, tier="aggregate")
    sign_in(client, "olga")
    page = text(client.get(f"/requests/{AGREEMENT}"))
    assert "No row package" in page and "aggregate-only" in page


def test_request_the_policy_refuses_says_so(client: FlaskClient, node: NodeSettings) -> None:
    file_request(node)
    with database(node) as session:
        set_policy(session, DATASET, {"tiers": {"generalized": {}}, "purposes": ["research"],
                                      "partners": ["*"]}, T0)
        session.commit()
    sign_in(client, "olga")
    page = text(client.get(f"/requests/{AGREEMENT}"))
    assert "Approval would be refused: purpose" in page
    response = decide(client, "approve")
    assert response.status_code == 422 and "Nothing was recorded" in text(response)
    assert stored(node)[0].state == "requested"


def test_unknown_request_is_a_404_page(client: FlaskClient) -> None:
    sign_in(client, "olga")
    response = client.get("/requests/cn-ntlnp.ffffffffffffffff")
    assert response.status_code == 404 and "no agreement" in text(response)
    assert response.mimetype == "text/html"


def test_a_justification_is_shown_escaped(client: FlaskClient, node: NodeSettings) -> None:
    file_request(node, reason="<script>alert(1)</script> & <b>bold</b>")
    sign_in(client, "olga")
    page = text(client.get(f"/requests/{AGREEMENT}"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>" not in page and "<b>bold" not in page


# --- decisions --------------------------------------------------------------------------


def test_owner_approves_and_the_signed_event_verifies(client: FlaskClient,
                                                      node: NodeSettings) -> None:
    file_request(node)
    sign_in(client, "olga")
    response = decide(client, "approve", "Fits the transboundary plan.")
    assert (response.status_code, response.headers["Location"]) == (
        302, f"/requests/{AGREEMENT}")
    page = text(client.get(f"/requests/{AGREEMENT}"))
    assert "Approved cn-ntlnp.0123456789abcdef" in page and "no registry" in page
    row, history = stored(node)
    assert row.state == "approved" and len(history) == 2
    agreement = replay(history, keys_for=keys_for(node))  # every signature checked again
    assert agreement.state == "approved"
    assert (agreement.events[1].actor, agreement.events[1].reason) == (
        "ru-lotl", "Fits the transboundary plan.")


def test_a_reason_is_required(client: FlaskClient, node: NodeSettings) -> None:
    file_request(node)
    sign_in(client, "olga")
    response = decide(client, "refuse", "   ")
    assert response.status_code == 422 and "give a reason" in text(response)
    assert stored(node)[0].state == "requested"


def test_narrowing_stores_the_narrower_terms(client: FlaskClient, node: NodeSettings) -> None:
    file_request(node)
    sign_in(client, "olga")
    response = decide(client, "narrow", "Foxes only, until spring.", tier="generalized",
                      until="2027-03-31", taxa="Vulpes vulpes", time_from="", time_to="",
                      bbox_west="", bbox_south="", bbox_east="", bbox_north="")
    assert response.status_code == 302
    row, history = stored(node)
    assert row.state == "approved" and len(history) == 2
    assert row.terms == {**TERMS, "until": "2027-03-31", "taxa": ["Vulpes vulpes"]}
    assert replay(history, keys_for=keys_for(node)).terms == row.terms


def test_narrowing_that_widens_is_refused_and_nothing_stored(client: FlaskClient,
                                                             node: NodeSettings) -> None:
    file_request(node)
    sign_in(client, "olga")
    response = decide(client, "narrow", "a longer one", until="2027-12-31")
    page = text(response)
    assert response.status_code == 422
    assert "Nothing was recorded: until: 2027-12-31 is later than the requested 2027-06-30" \
        in page
    assert 'value="2027-12-31"' in page  # the form keeps what was typed
    row, history = stored(node)
    assert row.state == "requested" and len(history) == 1


def test_a_malformed_area_is_refused(client: FlaskClient, node: NodeSettings) -> None:
    file_request(node)
    sign_in(client, "olga")
    response = decide(client, "narrow", "smaller", bbox_west="4", bbox_south="x",
                      bbox_east="5", bbox_north="52")
    assert response.status_code == 422 and "bbox: give all four numbers" in text(response)
    assert stored(node)[0].state == "requested"


def test_owner_refuses(client: FlaskClient, node: NodeSettings) -> None:
    file_request(node)
    sign_in(client, "olga")
    decide(client, "refuse", "Camera sites are too sensitive this year.")
    page = text(client.get(f"/requests/{AGREEMENT}"))
    assert "Camera sites are too sensitive this year." in page
    assert 'value="approve"' not in page  # decided: no more forms
    assert stored(node)[0].state == "refused"
    assert decide(client, "approve").status_code == 422  # a forged post after the fact


def test_revoke_after_the_partner_accepts(client: FlaskClient, node: NodeSettings,
                                          clock: Clock) -> None:
    file_request(node)
    sign_in(client, "olga")
    decide(client, "approve")
    assert 'class="revoke"' not in text(client.get("/agreements"))  # not active yet
    partner_acts(node, "accept", T0 + timedelta(hours=1))
    clock.now = T0 + timedelta(days=3)
    sign_in(client, "olga")  # the morning's session has expired by now
    page = text(client.get("/agreements"))
    assert "active" in page and 'class="revoke"' in page
    token = csrf_token(client, "/agreements")
    response = client.post(f"/agreements/{AGREEMENT}/revoke",
                           data={"csrf_token": token, "reason": "Poaching alert"})
    assert (response.status_code, response.headers["Location"]) == (302, "/agreements")
    page = text(client.get("/agreements"))
    assert "Revoked cn-ntlnp.0123456789abcdef" in page and "revoked" in page
    row, history = stored(node)
    assert row.state == "revoked"
    assert replay(history, keys_for=keys_for(node)).events[-1].reason == "Poaching alert"
    page = text(client.get(f"/requests/{AGREEMENT}"))
    assert "Poaching alert" in page and "2026-11-25 09:00 UTC" in page
    assert "What the agreement releases" not in page  # it releases nothing any more


def test_revoking_what_is_not_active_is_refused(client: FlaskClient,
                                                node: NodeSettings) -> None:
    file_request(node)
    sign_in(client, "olga")
    token = csrf_token(client, "/agreements")
    response = client.post(f"/agreements/{AGREEMENT}/revoke",
                           data={"csrf_token": token, "reason": "why not"})
    assert response.status_code == 422
    assert "cannot revoke an agreement that is requested" in text(response)
    assert stored(node)[0].state == "requested"


def test_an_unreachable_registry_gets_the_decision_at_the_next_sync(
        node: NodeSettings, clock: Clock) -> None:
    offline = node.with_overrides(registry_url="http://127.0.0.1:9")
    client = create_app({"CORRIDOR_SETTINGS": offline, "CORRIDOR_CLOCK": clock}).test_client()
    file_request(node)
    sign_in(client, "olga")
    decide(client, "approve")
    page = text(client.get(f"/requests/{AGREEMENT}"))
    assert "Recorded here; it will be sent to the registry at the next sync" in page
    row, _ = stored(node)
    assert row.state == "approved" and row.pushed < row.events


def test_as_requester_the_node_accepts_an_offer(client: FlaskClient, node: NodeSettings,
                                                clock: Clock) -> None:
    mine = "ru-lotl.00000000000000aa"
    request = next_event(None, action="request", actor="ru-lotl", role="requester", at=T0,
                         key=load_signing_key(node.keys_dir),
                         terms={**TERMS, "provider": PARTNER, "dataset": f"{PARTNER}/tigers"},
                         reason="For the joint census.", agreement_id=mine)
    with database(node) as session:
        store_view(session, {"id": mine, "events": [request.jws]}, me=node.member_id,
                   keys_for=keys_for(node), now=T0)
        session.commit()
    partner_acts(node, "approve", T0 + timedelta(hours=1), agreement_id=mine, role="provider")
    clock.now = T0 + timedelta(hours=2)
    sign_in(client, "olga")
    page = text(client.get("/inbox"))
    assert "Your requests" in page and mine in page
    page = text(client.get(f"/requests/{mine}"))
    assert "Accept these terms" in page and "Policy of" not in page
    token = csrf_token(client, f"/requests/{mine}")
    response = client.post(f"/requests/{mine}/decide",
                           data={"csrf_token": token, "decision": "accept", "reason": ""})
    assert response.status_code == 302
    assert stored(node, mine)[0].state == "active"


# --- accounts -------------------------------------------------------------------------


def test_accounts_are_checked(node: NodeSettings) -> None:
    with database(node) as session:
        with pytest.raises(UserError, match="at least 12 characters"):
            add_user(session, "kim", "short", "owner", now=T0)
        with pytest.raises(UserError, match="already exists"):
            add_user(session, "olga", PASSWORD, "owner", now=T0)
        with pytest.raises(UserError, match="unknown role"):
            add_user(session, "kim", PASSWORD, "root", now=T0)
        with pytest.raises(UserError, match="not a valid username"):
            add_user(session, "Kim Smith", PASSWORD, "owner", now=T0)
        user = authenticate(session, "olga", PASSWORD, now=T0)
        assert user is not None and user.password_hash.startswith("scrypt:")
        assert PASSWORD not in user.password_hash


def test_users_cli_adds_and_lists(node: NodeSettings) -> None:
    runner = CliRunner()
    at = ["--dir", str(node.directory), "users"]
    added = runner.invoke(node_command, [*at, "add", "kim", "--role", "admin", "--password-stdin"],
                          input="a long enough secret\n")
    assert added.exit_code == 0, added.output
    prompted = runner.invoke(node_command, [*at, "add", "lee", "--role", "auditor"],
                             input="another long secret\nanother long secret\n")
    assert prompted.exit_code == 0, prompted.output
    assert "another long secret" not in prompted.output  # hidden input
    short = runner.invoke(node_command, [*at, "add", "max", "--role", "owner", "--password-stdin"],
                          input="too short\n")
    assert short.exit_code == 1
    listed = runner.invoke(node_command, [*at, "list"])
    assert listed.exit_code == 0
    assert re.search(r"kim\s+│\s+admin", listed.output), listed.output
    assert re.search(r"lee\s+│\s+auditor", listed.output)
    assert "max" not in listed.output
    table = runner.invoke(node_command, [*at, "list", "--format", "csv"]).output
    assert table.splitlines()[0] == "user,role,created,last_sign_in"
    assert {line.split(",")[0] for line in table.splitlines()[1:]} >= {"kim", "lee"}
    with database(node) as session:
        assert authenticate(session, "kim", "a long enough secret", now=T0) is not None
    removed = runner.invoke(node_command, [*at, "remove", "kim"])
    assert removed.exit_code == 0
    assert "kim" not in runner.invoke(node_command, [*at, "list"]).output
