"""``corridor census`` across two nodes: signed country totals added up, no site crossing.

cn-ntlnp holds the real Taiwan Black-faced Spoonbill series (imported through
its shipped mapping); ru-lotl holds the demo's flyway counts. ru-lotl runs the
census with an aggregate agreement and its own dataset; the sum must equal
each node's own census added by hand, and what cn-ntlnp sent must name no site.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.federation import stored_trust_list
from node.exchange.census import verify_census
from node.settings import load_settings
from tests.conftest import fail, ok, run_cli

pytestmark = pytest.mark.storage

Federation = Any  # the fixture's class lives in tests/conftest.py

SERIES = "black_faced_spoonbill_annual_max_zh.csv"
WINDOW = ("--window", "01-01..01-31")


@pytest.fixture
def flyway(federation: Federation, taiwan_spoonbill: Path) -> tuple[Federation, str]:
    fed = federation
    fed.join_and_admit()
    ok(fed.node("cn-ntlnp", "import", "mapped", "taiwan-black-faced-spoonbill",
                taiwan_spoonbill / SERIES))
    ok(fed.node("ru-lotl", "generate-demo", "--observations", "200"))
    return fed, fed.agreement("taiwan-black-faced-spoonbill", "aggregate")


def _own(fed: Federation, member: str, dataset: str, year: int) -> dict[str, Any]:
    shown = ok(fed.node(member, "census", dataset, "--taxon", "Platalea minor", "--year",
                        str(year), *WINDOW, "--format", "json"))
    return dict(json.loads(shown)["species"][0])


def test_the_flyway_census_adds_each_nodes_signed_totals(flyway: tuple[Federation, str],
                                                          tmp_path: Path) -> None:
    fed, agreement = flyway
    out = tmp_path / "census.json"
    printed = ok(run_cli("census", "--dir", fed.nodes["ru-lotl"], "--agreement", agreement,
                         "--own", "flyway-counts", "--taxon", "Platalea minor",
                         "--year", "2022",
                         *WINDOW, "--out", out))
    assert "cn-ntlnp: taiwan-black-faced-spoonbill v1, signature verified" in printed
    assert "flyway (all countries)" in printed
    written = json.loads(out.read_text(encoding="utf-8"))
    [species] = written["census"]["species"]
    cn = _own(fed, "cn-ntlnp", "taiwan-black-faced-spoonbill", 2022)
    ru = _own(fed, "ru-lotl", "flyway-counts", 2022)
    countries = {r["country"]: r for r in species["countries"]}
    ru_tw = next(r["total"] for r in ru["countries"] if r["country"] == "TW")
    assert countries["TW"]["total"] == ru_tw + 3824  # the series' 2022 value, added
    assert countries["TW"]["sites"] == 2
    assert species["flyway"]["total"] == ru["flyway"]["total"] + cn["flyway"]["total"]
    assert ru["flyway"]["previous"] is None  # the demo counts begin in 2022
    assert species["flyway"]["previous"] == 3132  # so 2021 is cn-ntlnp's alone
    received = json.dumps(written["sources"]["cn-ntlnp"], ensure_ascii=False)
    assert "TW-ALL" not in received and '"sites": [' not in received  # no site crosses
    # Every source stays verifiable, and a changed figure is caught.
    trust = stored_trust_list(load_settings(fed.nodes["ru-lotl"]))
    signed = written["sources"]["cn-ntlnp"]
    verify_census(signed, trust, provider="cn-ntlnp", recipient="ru-lotl", agreement=agreement)
    signed["result"]["species"][0]["flyway"]["total"] += 1
    with pytest.raises(ValueError, match="does not verify"):
        verify_census(signed, trust, provider="cn-ntlnp", recipient="ru-lotl",
                      agreement=agreement)
    with pytest.raises(ValueError, match="recipient"):
        signed["result"]["species"][0]["flyway"]["total"] -= 1
        verify_census(signed, trust, provider="cn-ntlnp", recipient="kr-nie",
                      agreement=agreement)


def test_the_census_endpoint_refuses_what_it_should(flyway: tuple[Federation, str]) -> None:
    fed, agreement = flyway
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:counts", agreement=agreement)
    url = f"{fed.servers['cn-ntlnp'].url}/agreements/{agreement}/census"

    def post(body: Any, bearer: str | None = token) -> httpx.Response:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return httpx.post(url, json=body, headers=headers, timeout=30)

    good = {"taxa": ["Platalea minor"], "year": 2022, "window": "01-01..01-31"}
    assert post(good).status_code == 200
    assert post(good, None).status_code == 401
    fetch = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    assert post(good, fetch).status_code == 403
    bad_window = post({**good, "window": "01-19..01-17"})
    assert bad_window.status_code == 422 and "before the first" in bad_window.json()["detail"]
    assert post({**good, "year": "2022"}).status_code == 422
    assert post({**good, "sites": True}).status_code == 422
    assert post({**good, "taxa": []}).status_code == 422
    refused = fail(run_cli("census", "--dir", fed.nodes["ru-lotl"], "--agreement",
                           "ru-lotl.0000000000000000", "--taxon", "Platalea minor",
                           "--year", "2022"))
    assert "census stopped" in refused or "no agreement" in refused
