"""The node's pages in a real browser: the owner sees the map of a request, narrows it and
revokes the agreement; an auditor filters the exchange log; an owner reads it as sentences.

Drives Debian's chromium through Playwright against the node served over
HTTP on loopback, clicking and typing as a person would. Screenshots (the
decided request, the filtered log) go to ``$CORRIDOR_TEST_ARTIFACTS`` (default
``test-artifacts/`` in the repository).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key, public_keys
from corridor.tlog import LogEvent, node_origin
from crypto.keys import KeySet, SigningKey
from node.app import create_app
from node.cli import init_node
from node.data.importer import Importer
from node.exchange.agreements import STORE, restore, store_view
from node.log.exchange_log import LOG
from node.settings import NodeSettings
from node.web.users import add_user
from policies.agreements import next_event

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:
    pytest.skip("playwright is not installed (pip install playwright): browser test skipped",
                allow_module_level=True)

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("no 'chromium' on PATH (apt-get install chromium): browser test skipped",
                allow_module_level=True)

pytestmark = [pytest.mark.storage, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PARTNER = "cn-ntlnp"
PARTNER_KEY = SigningKey.generate()
AGREEMENT = "cn-ntlnp.0123456789abcdef"
DATASET = "camtrap-dp-example-dataset"
PASSWORD = "correct horse battery"


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("CORRIDOR_TEST_ARTIFACTS") or REPO / "test-artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def partner_event(settings: NodeSettings, action: str, at: datetime, **kwargs: Any) -> None:
    """The partner signs its next event; the node stores it as after a sync."""
    engine = make_engine(settings.database_url)
    keys_for: Callable[[str], KeySet] = lambda m: (  # noqa: E731
        KeySet([PARTNER_KEY.public_key]) if m == PARTNER else public_keys(settings.keys_dir))
    with make_session_factory(engine)() as session:
        row = STORE.get(session, AGREEMENT)
        event = next_event(restore(session, row) if row else None, action=action, actor=PARTNER,
                           role="requester", at=at, key=PARTNER_KEY, **kwargs)
        history = STORE.history(session, AGREEMENT) if row else []
        store_view(session, {"id": AGREEMENT, "events": [*history, event.jws]},
                   me=settings.member_id, keys_for=keys_for, now=at)
        session.commit()
    engine.dispose()


@pytest.fixture
def node(tmp_path: Path, database_url: str, camtrap_example: Path) -> NodeSettings:
    settings = init_node(tmp_path / "node", "ru-lotl", "Land of the Leopard National Park",
                         "RU", database_url=database_url)
    engine = make_engine(settings.database_url)
    Importer(engine).import_camtrap(camtrap_example)
    with make_session_factory(engine)() as session:
        add_user(session, "olga", PASSWORD, "owner", now=datetime.now(UTC))
        session.commit()
    engine.dispose()
    return settings


def test_owner_narrows_a_request_then_revokes_it(node: NodeSettings, live_server: Any) -> None:
    today = datetime.now(UTC)
    asked_until = (today + timedelta(days=200)).date().isoformat()
    offered_until = (today + timedelta(days=100)).date().isoformat()
    partner_event(node, "request", today, agreement_id=AGREEMENT, reason="Foxes and martens "
                  "cross the border here; we want to compare activity.", terms={
                      "provider": "ru-lotl", "dataset": f"ru-lotl/{DATASET}",
                      "purpose": "joint-monitoring", "tier": "generalized",
                      "until": asked_until})
    server = live_server(create_app({"CORRIDOR_SETTINGS": node}))

    with chromium_page() as page:
        sign_in(page, server.url)
        expect(page.get_by_text("Signed in as olga (owner).")).to_be_visible()
        expect(page.get_by_text("1 waiting for a decision")).to_be_visible()
        open_request(page)
        screenshot(page, "request-pending.png")
        narrow_and_approve(page, offered_until)
        screenshot(page, "request-narrowed.png")

        partner_event(node, "accept", datetime.now(UTC))
        revoke(page)
        screenshot(page, "agreements-revoked.png")

    engine = make_engine(node.database_url)
    with make_session_factory(engine)() as session:
        row = STORE.get(session, AGREEMENT)
        assert row.state == "revoked"
        assert row.terms["until"] == offered_until and row.terms["taxa"] == ["Vulpes vulpes"]
        actions = [e.action for e in restore(session, row).events]
        assert actions == ["request", "narrow", "accept", "revoke"]
    engine.dispose()


def sign_in(page: Page, url: str, *, user: str = "olga", path: str = "/",
            lands_on: str = "Inbox") -> None:
    """Open ``path``, get sent to sign in, sign in as ``user`` and land back on it."""
    page.goto(url + path)
    expect(page).to_have_url(re.compile(rf"/login\?next={re.escape(path)}$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=lands_on)).to_be_visible()


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A fresh page of Debian's chromium, closed afterwards."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def screenshot(page: Page, name: str) -> None:
    path = artifacts_dir() / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def open_request(page: Page) -> None:
    page.get_by_role("link", name=AGREEMENT).click()
    expect(page.get_by_role("heading", name=f"Request {AGREEMENT}")).to_be_visible()
    expect(page.locator("blockquote")).to_contain_text("Foxes and martens cross the border")
    expect(page.get_by_text("What approval would release")).to_be_visible()
    expect(page.get_by_role("cell", name="observations")).to_be_visible()
    # The map of the cameras as stored and as released, drawn by the node itself.
    picture = page.get_by_role("img", name=re.compile(r"^Map of ru-lotl.camtrap"))
    picture.scroll_into_view_if_needed()
    expect(picture).to_be_visible()
    assert picture.evaluate("img => img.decode().then(() => img.naturalWidth)") == 700


def narrow_and_approve(page: Page, until: str) -> None:
    form = page.locator("form", has=page.get_by_role("button", name="Narrow and approve"))
    form.get_by_label("Until").fill(until)
    form.get_by_label("Taxa").fill("Vulpes vulpes")
    form.get_by_label("Reason").fill("Foxes only for a first season; we can widen it later.")
    form.get_by_role("button", name="Narrow and approve").click()
    expect(page.get_by_role("status")).to_contain_text(f"Narrowed and approved {AGREEMENT}")
    expect(page.locator("h1 .state")).to_have_text("approved")
    expect(page.get_by_text("Terms as narrowed by the provider")).to_be_visible()
    expect(page.get_by_role("button", name="Narrow and approve")).to_have_count(0)


def revoke(page: Page) -> None:
    page.get_by_role("link", name="Agreements", exact=True).click()
    expect(page.get_by_role("heading", name="Agreements")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=AGREEMENT)
    expect(row.locator(".state")).to_have_text("active")
    row.get_by_label(f"Reason for revoking {AGREEMENT}").fill("Poaching alert near camera 3")
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text(f"Revoked {AGREEMENT}")
    expect(row.locator(".state")).to_have_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)


# --- the auditor's exchange log ------------------------------------------------------------


@pytest.fixture
def audited_node(tmp_path: Path, database_url: str) -> NodeSettings:
    """A node with an auditor, forty exchanges on its log and a signed checkpoint."""
    settings = init_node(tmp_path / "audited", "ru-lotl", "Land of the Leopard National Park",
                         "RU", database_url=database_url)
    kinds = [("agreement.decided", "cn-ntlnp"), ("package.served", "cn-ntlnp"),
             ("package.received", "kr-nie"), ("package.served", "jp-mos")]
    # The last forty exchanges end today, so the per-day chart has bars.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=7 * 40)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        add_user(session, "ivan", PASSWORD, "auditor", now=datetime.now(UTC))
        add_user(session, "olga", PASSWORD, "owner", now=datetime.now(UTC))
        LOG.append_many(session, [
            LogEvent(kinds[i % 4][0], start + timedelta(minutes=7 * i), member=kinds[i % 4][1],
                     agreement=f"{kinds[i % 4][1]}.{i:016x}",
                     fields={"rows": {"observations": 40 * i}} if i % 2 else {"tier": "open"})
            for i in range(40)])
        LOG.sign_checkpoint(session, node_origin("ru-lotl"), "ru-lotl",
                            load_signing_key(settings.keys_dir), datetime.now(UTC))
        session.commit()
    engine.dispose()
    return settings


def test_auditor_filters_the_exchange_log(audited_node: NodeSettings, live_server: Any) -> None:
    server = live_server(create_app({"CORRIDOR_SETTINGS": audited_node}))
    with chromium_page() as page:
        sign_in(page, server.url, user="ivan", path="/log", lands_on="Exchange log")
        # 40 exchanges and this sign-in.
        expect(page.locator("table.log tbody tr")).to_have_count(41)

        page.get_by_label("Type").select_option("package.served")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"[?&]type=package\.served(&|$)"))
        rows = page.locator("table.log tbody tr")
        expect(rows).to_have_count(20)
        expect(rows.first).to_contain_text("package.served")
        expect(page.get_by_label("Type")).to_have_value("package.served")
        expect(page.get_by_role("link", name="Download CSV")).to_have_attribute(
            "href", re.compile(r"type=package\.served"))
        checkpoint = page.locator("table.checkpoints tbody tr")
        expect(checkpoint).to_have_count(1)
        expect(checkpoint.locator(".check").first).to_have_text("valid")
        screenshot(page, "audit-log.png")


def test_owner_reads_the_log_as_sentences_with_a_chart(audited_node: NodeSettings,
                                                       live_server: Any) -> None:
    server = live_server(create_app({"CORRIDOR_SETTINGS": audited_node}))
    with chromium_page() as page:
        sign_in(page, server.url)
        page.get_by_role("link", name="Log").click()
        expect(page.get_by_role("heading", name="Exchange log")).to_be_visible()
        sentences = page.locator("table.log p.sentence")
        expect(sentences.filter(has_text="Package served to cn-ntlnp under agreement "
                                          "cn-ntlnp.0000000000000001: 40 observations."))\
            .to_have_count(1)
        chart = page.get_by_role("img", name=re.compile(r"Exchanges and refusals per day"))
        expect(chart).to_be_visible()
        expect(page.locator("rect.bar-exchange")).to_have_count(30)
        assert page.locator("rect.bar-exchange").evaluate_all(
            "bars => bars.some(b => parseFloat(b.getAttribute('height')) > 0)")
        row = page.locator("table.log tbody tr").nth(1)
        row.get_by_text("as logged").click()
        expect(row.locator("pre.entry-json")).to_contain_text('"type": "package.served"')
        expect(page.get_by_role("link", name="Download CSV")).to_have_count(0)
        screenshot(page, "owner-log.png")

