"""Sign-in that holds against guessing, and sign-out that ends the session, on both services.

Through each service's real app: the sign-in page, the auditors' HTTP Basic on
``/log/...``, and the pages behind them. The clock is moved by hand.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import TestResponse

from corridor.db import make_engine, make_session_factory
from corridor.login_guard import (
    ACCOUNT_THRESHOLD,
    ADDRESS_THRESHOLD,
    FIRST_LOCKOUT,
    MAX_LOCKOUT,
)
from corridor.tlog import TransparencyLog
from corridor.users import Accounts
from deploy.loopback import LoopbackServer
from node.app import create_app as create_node_app
from node.cli import init_node
from node.log.exchange_log import LOG as NODE_LOG
from node.web.users import ACCOUNTS as NODE_ACCOUNTS
from registry.app import create_app as create_registry_app
from registry.cli import init_registry
from registry.log.exchange_log import LOG as REGISTRY_LOG
from registry.web.users import ACCOUNTS as REGISTRY_ACCOUNTS
from tests.conftest import FakeClock

pytestmark = pytest.mark.storage

PASSWORD = "correct horse battery"
WRONG = "tr0ub4dor&3-guess"
HERE = "192.0.2.10"
ELSEWHERE = "198.51.100.7"


@dataclass
class Service:
    """One service's app, its clock, log and accounts."""

    app: Flask
    clock: FakeClock
    sessions: sessionmaker[Session]
    log: TransparencyLog
    accounts: Accounts

    def client(self, address: str = HERE) -> FlaskClient:
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client

    def later(self, delta: timedelta) -> None:
        self.clock.offset += delta

    def entries(self, type_: str) -> list[dict[str, Any]]:
        with self.sessions() as session:
            return [e.event() for e in self.log.entries(session, 0, type_=type_)]

    def all_entries(self) -> str:
        with self.sessions() as session:
            return repr([e.event() for e in self.log.entries(session, 0)])


@pytest.fixture(params=["node", "registry"])
def service(request: pytest.FixtureRequest, tmp_path: Path, database_url: str
            ) -> Iterator[Service]:
    clock = FakeClock()
    if request.param == "node":
        settings = init_node(tmp_path / "node", "ru-lotl", "Land of the Leopard National Park",
                             "RU", database_url=database_url)
        app = create_node_app({"CORRIDOR_SETTINGS": settings, "CORRIDOR_CLOCK": clock})
        log, accounts = NODE_LOG, NODE_ACCOUNTS
    else:
        rsettings = init_registry(tmp_path / "registry", "Test Registry", "http://127.0.0.1:9",
                                  development=True, database_url=database_url)
        app = create_registry_app({"CORRIDOR_SETTINGS": rsettings, "CORRIDOR_CLOCK": clock})
        log, accounts = REGISTRY_LOG, REGISTRY_ACCOUNTS
    engine = make_engine(app.extensions["corridor_settings"].database_url)
    svc = Service(app, clock, make_session_factory(engine), log, accounts)
    with svc.sessions() as session:
        accounts.add(session, "ada", PASSWORD, "admin", now=clock())
        accounts.add(session, "ivan", PASSWORD, "auditor", now=clock())
        session.commit()
    yield svc
    engine.dispose()
    app.extensions["corridor_db"][0].dispose()


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> TestResponse:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "no CSRF token on the sign-in page"
    return client.post("/login", data={"csrf_token": token.group(1), "username": username,
                                       "password": password})


def sign_out(client: FlaskClient) -> TestResponse:
    page = client.get("/log").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "no CSRF token on the log page"
    return client.post("/logout", data={"csrf_token": token.group(1)})


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode())
            .decode()}


def signed_in(response: TestResponse) -> bool:
    return response.status_code == 302 and "/login" not in response.headers["Location"]


def to_login(response: TestResponse) -> bool:
    return response.status_code == 302 and "/login" in response.headers["Location"]


# --- the sign-in page -----------------------------------------------------------------


def test_ten_wrong_passwords_lock_the_account_on_the_record(
        service: Service, caplog: pytest.LogCaptureFixture) -> None:
    client = service.client()
    caplog.set_level(logging.WARNING)
    answers = [sign_in(client, "ada", WRONG) for _ in range(10)]
    assert [a.status_code for a in answers] == [401] * (ACCOUNT_THRESHOLD - 1) + [429] * (
        10 - ACCOUNT_THRESHOLD + 1)
    locked = answers[-1]
    assert 0 < int(locked.headers["Retry-After"]) <= 60
    assert "Too many wrong passwords for this account" in locked.get_data(as_text=True)
    # The right password is not even checked while the lock holds.
    assert sign_in(client, "ada").status_code == 429
    assert sign_in(service.client(ELSEWHERE), "ada").status_code == 429  # per account
    # On the record: the lockout in the exchange log, each failure in the server log;
    # the password in neither.
    locks = service.entries("user.login_locked")
    assert locks and locks[0]["username"] == "ada" and locks[0]["address"] == HERE
    assert locks[0]["locked"] == "account" and locks[0]["channel"] == "page"
    failures = [r for r in caplog.records if "failed sign-in" in r.getMessage()]
    assert len(failures) == ACCOUNT_THRESHOLD  # the ones checked; locked tries cost nothing
    assert all("'ada'" in r.getMessage() and HERE in r.getMessage() for r in failures)
    assert WRONG not in caplog.text and WRONG not in service.all_entries()
    assert not service.entries("user.login")
    # Once the lock runs out, the right password works (and clears the count).
    service.later(FIRST_LOCKOUT * 2 ** (10 - ACCOUNT_THRESHOLD) + timedelta(seconds=1))
    assert signed_in(sign_in(client, "ada"))
    assert [e["username"] for e in service.entries("user.login")] == ["ada"]


def test_each_failure_after_the_threshold_doubles_the_lock(service: Service) -> None:
    client = service.client()
    for _ in range(ACCOUNT_THRESHOLD):
        sign_in(client, "ivan", WRONG)
    service.later(FIRST_LOCKOUT + timedelta(seconds=1))
    again = sign_in(client, "ivan", WRONG)  # the first guess after the lock: locked again
    assert again.status_code == 429
    assert 60 < int(again.headers["Retry-After"]) <= 120


def test_a_good_sign_in_clears_the_accounts_count(service: Service) -> None:
    client = service.client()
    for _ in range(ACCOUNT_THRESHOLD - 1):
        assert sign_in(client, "ivan", WRONG).status_code == 401
    assert signed_in(sign_in(client, "ivan"))
    for _ in range(ACCOUNT_THRESHOLD - 1):
        assert sign_in(service.client(), "ivan", WRONG).status_code == 401


def test_one_address_guessing_many_names_is_locked_out(service: Service) -> None:
    client = service.client()
    answers = [sign_in(client, f"guess{i}", WRONG).status_code
               for i in range(ADDRESS_THRESHOLD)]
    assert answers == [401] * (ADDRESS_THRESHOLD - 1) + [429]
    refused = sign_in(client, "ada")
    assert refused.status_code == 429
    assert "your address" in refused.get_data(as_text=True)
    assert signed_in(sign_in(service.client(ELSEWHERE), "ada"))
    locks = service.entries("user.login_locked")
    # Names of accounts that do not exist are not written down (they may be passwords).
    assert locks[-1]["locked"] == "address" and locks[-1]["username"] is None


def test_a_lock_on_a_name_that_does_not_exist_looks_the_same(service: Service) -> None:
    client = service.client()
    answers = [sign_in(client, "nobody", WRONG) for _ in range(ACCOUNT_THRESHOLD)]
    assert answers[-1].status_code == 429  # no way to tell which names exist
    assert "nobody" not in service.all_entries()


# --- HTTP Basic on the log API ------------------------------------------------------------


def test_http_basic_guesses_are_counted_and_locked_like_the_page(service: Service) -> None:
    client = service.client()
    assert sign_in(client, "ivan", WRONG).status_code == 401  # one on the page ...
    answers = [client.get("/log/entries", headers=basic("ivan", WRONG))
               for _ in range(ACCOUNT_THRESHOLD - 1)]  # ... and the rest over Basic
    assert [a.status_code for a in answers] == [401] * (ACCOUNT_THRESHOLD - 2) + [429]
    locked = client.get("/log/entries", headers=basic("ivan"))
    assert locked.status_code == 429
    assert locked.headers["Content-Type"] == "application/problem+json"
    assert locked.json is not None and locked.json["status"] == 429
    assert "Too many wrong passwords" in locked.json["detail"]
    assert int(locked.headers["Retry-After"]) > 0
    assert service.entries("user.login_locked")[-1]["channel"] == "basic"
    service.later(FIRST_LOCKOUT + timedelta(seconds=1))
    assert client.get("/log/entries", headers=basic("ivan")).status_code == 200


def test_parallel_guesses_check_no_more_passwords_than_the_threshold(service: Service) -> None:
    # Over real HTTP with a threaded server: the guesses race for the same account's count.
    server = LoopbackServer(service.app)
    try:
        def guess(_: int) -> int:
            with httpx.Client(timeout=60) as http:
                return http.get(server.url + "/log/entries",
                                headers=basic("ivan", WRONG)).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(guess, range(32)))
    finally:
        server.stop()
    assert not [a for a in answers if a >= 500], answers
    assert answers.count(401) <= ACCOUNT_THRESHOLD - 1, answers  # the 5th failure locks: 429
    assert set(answers) <= {401, 429}


def test_a_nul_in_a_username_is_a_4xx_on_the_page_and_over_basic(service: Service) -> None:
    client = service.client()
    assert sign_in(client, "iv\x00an", WRONG).status_code == 400
    answer = client.get("/log/entries", headers=basic("iv\x00an", WRONG))
    assert answer.status_code in (400, 401), answer.get_data(as_text=True)
    assert answer.headers["Content-Type"] == "application/problem+json"


def test_an_administrator_can_end_a_lock_from_the_command_line(service: Service) -> None:
    from click.testing import CliRunner

    from deploy.cli import main as corridor_command

    client = service.client()
    for _ in range(ACCOUNT_THRESHOLD):
        sign_in(client, "ivan", WRONG)
    assert sign_in(client, "ivan").status_code == 429
    which = "node" if "ru-lotl" in repr(service.app.extensions["corridor_settings"]) \
        else "registry"
    directory = str(service.app.extensions["corridor_settings"].directory)
    runner = CliRunner()
    done = runner.invoke(corridor_command, [which, "--dir", directory, "users", "unlock", "ivan"])
    assert done.exit_code == 0 and "Cleared" in done.output, done.output
    assert signed_in(sign_in(client, "ivan"))
    again = runner.invoke(corridor_command, [which, "--dir", directory, "users", "unlock", "ivan"])
    assert "No failed sign-ins" in again.output
    assert runner.invoke(corridor_command, [which, "--dir", directory, "users",
                                            "unlock"]).exit_code != 0


def test_over_tls_the_session_cookie_is_secure_even_without_a_configured_url(
        service: Service) -> None:
    # The fixture's node has no URL (and its registry one on http loopback): development.
    plain = service.client()
    assert signed_in(answer := sign_in(plain, "ivan"))
    assert "Secure" not in answer.headers["Set-Cookie"]
    tls = service.app.test_client()
    tls.environ_base.update({"REMOTE_ADDR": HERE, "wsgi.url_scheme": "https"})
    page = tls.get("/login", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    answer = tls.post("/login", base_url="https://localhost",
                      headers={"Referer": "https://localhost/login"},  # CSRF checks it on TLS
                      data={"csrf_token": token.group(1), "username": "ivan",
                            "password": PASSWORD})
    assert answer.status_code == 302
    assert "Secure" in answer.headers["Set-Cookie"]


def test_a_capped_lock_does_not_reset_the_count(service: Service) -> None:
    client = service.client()
    wait = 0
    while wait < MAX_LOCKOUT.total_seconds():  # each guess right after the lock ends ...
        service.later(timedelta(seconds=wait + 1))
        answer = sign_in(client, "ivan", WRONG)
        wait = int(answer.headers.get("Retry-After", 0))
    # ... until the lock is at its cap, an hour; the first guess after that hour ...
    service.later(timedelta(seconds=wait + 1))
    again = sign_in(client, "ivan", WRONG)
    assert again.status_code == 429  # ... locks for another hour, not a fresh five guesses
    assert int(again.headers["Retry-After"]) > MAX_LOCKOUT.total_seconds() - 5


# --- server-side sessions ---------------------------------------------------------------------


def test_a_copied_cookie_stops_working_at_sign_out(service: Service) -> None:
    client = service.client()
    assert signed_in(sign_in(client, "ivan"))
    name = service.app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    assert cookie is not None
    thief = service.client(ELSEWHERE)
    thief.set_cookie(name, cookie.value)
    assert thief.get("/log").status_code == 200
    assert thief.get("/log/entries").status_code == 200  # the log API takes the session too
    assert to_login(sign_out(client))
    assert to_login(thief.get("/log"))
    assert thief.get("/log/entries").status_code == 401
    assert to_login(client.get("/log"))


def test_sessions_end_with_their_account_and_their_lifetime(service: Service) -> None:
    ivan, ada = service.client(), service.client()
    assert signed_in(sign_in(ivan, "ivan")) and signed_in(sign_in(ada, "ada"))
    with service.sessions() as session:
        service.accounts.remove(session, "ivan")
        session.commit()
    assert to_login(ivan.get("/log"))
    assert ada.get("/log").status_code == 200
    service.later(timedelta(hours=12, seconds=1))
    assert to_login(ada.get("/log"))


def test_a_forged_session_id_is_nobody(service: Service) -> None:
    client = service.client()
    for forged in ("ivan", "x" * 43, 7, None):
        with client.session_transaction() as session:
            session["sid"] = forged
        assert to_login(client.get("/log"))


def test_behind_a_trusted_proxy_the_address_is_the_clients(service: Service) -> None:
    service.app.wsgi_app = ProxyFix(service.app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    proxy = service.client("127.0.0.1")
    for i in range(ADDRESS_THRESHOLD):
        proxy.environ_base["HTTP_X_FORWARDED_FOR"] = HERE
        sign_in(proxy, f"guess{i}", WRONG)
    assert service.entries("user.login_locked")[-1]["address"] == HERE
    proxy.environ_base["HTTP_X_FORWARDED_FOR"] = ELSEWHERE  # another client, same proxy
    assert signed_in(sign_in(proxy, "ada"))


@pytest.mark.parametrize("proxies", [0, 1])
def test_the_node_trusts_forwarded_addresses_only_when_told(tmp_path: Path, database_url: str,
                                                            proxies: int) -> None:
    settings = init_node(tmp_path / "node", "ru-lotl", "Land of the Leopard National Park",
                         "RU", database_url=database_url)
    app = create_node_app({"CORRIDOR_SETTINGS": settings.with_overrides(proxies=proxies)})
    seen: list[str | None] = []
    app.before_request(lambda: seen.append(request.remote_addr) and None)
    app.test_client().get("/login", environ_base={"REMOTE_ADDR": "127.0.0.1",
                                                  "HTTP_X_FORWARDED_FOR": HERE})
    assert seen == [HERE if proxies else "127.0.0.1"]
