"""The match ledger end to end: propose, confirm, reject, retract between two real nodes.

ru-lotl and cn-ntlnp each import their side of the demo data, in which the
same animal has unrelated local ids on the two sides (the generator's hidden
truth says which belong together). Links are made with the CLI as the parks'
data managers would; the attacks go straight to ``POST /links`` with real
tokens and real keys.
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key
from crypto.canonical import canonical_json
from crypto.jws import sign_compact
from crypto.keys import SigningKey
from crypto.tokens import LINKS_SCOPE
from node.app import create_app
from node.data.demo_data import cross_border_truth, individual_registry
from node.links.messages import LINK_TYP, MESSAGE_TYPE
from node.log.exchange_log import LOG
from node.settings import load_settings
from node.web.users import ACCOUNTS
from tests.conftest import fail, ok, run_cli

pytestmark = pytest.mark.storage

Federation = Any  # the fixture's class lives in tests/conftest.py

LEOPARD = "Panthera pardus orientalis"
TIGER = "Panthera tigris altaica"


def _recorded(node_dir: Path) -> set[str]:
    """The local ids in a node's generated individuals.csv."""
    [path] = (node_dir / "demo-data").glob("camtrap-*/individuals.csv")
    with path.open(encoding="utf-8") as fh:
        return {row["individualID"] for row in csv.DictReader(fh)}


def _pairs(fed: Federation, taxon: str) -> list[tuple[str, str]]:
    """(ru id, cn id) of crossers of ``taxon`` recorded by both nodes: the hidden truth."""
    ru, cn = _recorded(fed.nodes["ru-lotl"]), _recorded(fed.nodes["cn-ntlnp"])
    names = {a.individual_id: a.scientific_name for a in individual_registry(2024)}
    pairs = [(r, c) for animal, (r, c) in sorted(cross_border_truth(2024).items())
             if names[animal] == taxon and r in ru and c in cn]
    assert len(pairs) >= 2, pairs
    return pairs


def _link_id(printed: str) -> str:
    match = re.search(r"link (\S{36})", printed)
    assert match, printed
    return match.group(1)


def _listed(fed: Federation, member: str) -> dict[str, dict[str, Any]]:
    rows = json.loads(ok(fed.node(member, "links", "list", "--format", "json")))
    return {row["link"]: row for row in rows}


def _log(fed: Federation, member: str, kind: str) -> list[dict[str, Any]]:
    settings = load_settings(fed.nodes[member])
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            return [e.event() for e in LOG.entries(session, type_=kind)]
    finally:
        engine.dispose()


def test_a_confirmed_link_is_held_by_both_nodes_with_both_signatures(parks: Federation) -> None:
    fed = parks
    ru_id, cn_id = _pairs(fed, LEOPARD)[0]
    printed = ok(fed.node("ru-lotl", "links", "propose", "cn-ntlnp", ru_id, cn_id,
                          "--method", "photo-id", "--evidence", "media:CN-M0000001",
                          "--confidence", "0.9", "--reason", "Same left-flank rosettes"))
    assert "delivered to cn-ntlnp" in printed
    link = _link_id(printed)
    there = _listed(fed, "cn-ntlnp")[link]
    assert (there["state"], there["mine"], there["theirs"], there["taxon"]) == (
        "proposed", cn_id, ru_id, LEOPARD)
    assert there["proposed_by"] == "ru-lotl"
    # The proposer cannot decide its own proposal.
    assert "proposed by this node" in fail(fed.node("ru-lotl", "links", "confirm", link))

    confirmed = ok(fed.node("cn-ntlnp", "links", "confirm", link, "--reason", "Agreed"))
    assert "now confirmed" in confirmed and "delivered to ru-lotl" in confirmed
    for member in ("ru-lotl", "cn-ntlnp"):
        assert _listed(fed, member)[link]["state"] == "confirmed"
        shown = ok(fed.node(member, "links", "show", link))
        assert "propose signed by ru-lotl" in shown and "confirm signed by cn-ntlnp" in shown
        assert "DOES NOT VERIFY" not in shown
        proposed = [e for e in _log(fed, member, "link.proposed") if e["link"] == link]
        decided = [e for e in _log(fed, member, "link.confirmed") if e["link"] == link]
        assert len(proposed) == len(decided) == 1
        assert proposed[0]["by"] == "ru-lotl" and decided[0]["by"] == "cn-ntlnp"
        assert {proposed[0]["direction"], decided[0]["direction"]} == {"sent", "received"}
        assert ru_id not in json.dumps(proposed + decided)  # the log holds digests, not ids
    assert "confirmed" in fail(fed.node("cn-ntlnp", "links", "reject", link, "--reason", "x"))

    retracted = ok(fed.node("cn-ntlnp", "links", "retract", link,
                            "--reason", "A second look at the right flank: not the same"))
    assert "now retracted" in retracted
    for member in ("ru-lotl", "cn-ntlnp"):
        assert _listed(fed, member)[link]["state"] == "retracted"
        assert len([e for e in _log(fed, member, "link.retracted") if e["link"] == link]) == 1
        assert "retract signed by cn-ntlnp" in ok(fed.node(member, "links", "show", link))
    # Retracted, the two animals are free to be linked again.
    again = ok(fed.node("ru-lotl", "links", "propose", "cn-ntlnp", ru_id, cn_id,
                        "--method", "genotype", "--confidence", "1", "--reason", "Same genotype"))
    assert "delivered" in again


def test_a_rejected_proposal_is_rejected_on_both_sides(parks: Federation) -> None:
    fed = parks
    ru_id, cn_id = _pairs(fed, TIGER)[0]
    link = _link_id(ok(fed.node("cn-ntlnp", "links", "propose", "ru-lotl", cn_id, ru_id,
                                "--method", "photo-id", "--confidence", "0.6",
                                "--reason", "Similar stripes")))
    ok(fed.node("ru-lotl", "links", "reject", link, "--reason", "Stripe count differs"))
    for member in ("ru-lotl", "cn-ntlnp"):
        assert _listed(fed, member)[link]["state"] == "rejected"
    assert len(_log(fed, "cn-ntlnp", "link.rejected")) == 1


def test_the_ledger_keeps_one_animal_to_one_and_one_taxon(parks: Federation) -> None:
    fed = parks
    (ru_a, cn_a), (ru_b, cn_b) = _pairs(fed, LEOPARD)[:2]
    ru_tiger, cn_tiger = _pairs(fed, TIGER)[0]
    args = ("--method", "photo-id", "--confidence", "0.8", "--reason", "r")
    first = _link_id(ok(fed.node("ru-lotl", "links", "propose", "cn-ntlnp", ru_a, cn_a, *args)))
    # The proposer's own ledger refuses a second partner for either animal.
    assert "one animal to two" in fail(fed.node("ru-lotl", "links", "propose", "cn-ntlnp",
                                                ru_b, cn_a, *args))
    assert "one animal to two" in fail(fed.node("ru-lotl", "links", "propose", "cn-ntlnp",
                                                ru_a, cn_b, *args))
    # cn-ntlnp holds the proposal too, so its ledger refuses cn_b for ru_a as well.
    assert "one animal to two" in fail(fed.node("cn-ntlnp", "links", "propose", "ru-lotl",
                                                cn_b, ru_a, *args))
    # And a proposal that skipped the sender's own check is refused where it arrives.
    ru_key = load_signing_key(load_settings(fed.nodes["ru-lotl"]).keys_dir)
    answer = _post(fed, fed.token_for("ru-lotl", "cn-ntlnp", LINKS_SCOPE),
                   {"message": _proposal(ru_key, from_id=ru_b, to_id=cn_a)})
    assert answer.status_code == 422 and "one animal to two" in answer.json()["detail"]
    # Two taxa: a leopard here, a tiger there (checked by the node that holds the tiger).
    refused = fail(fed.node("ru-lotl", "links", "propose", "cn-ntlnp", ru_b, cn_tiger, *args))
    assert "cn-ntlnp refused the proposal" in refused and "two taxa" in refused
    assert "now rejected here" in refused
    # An animal that is not in the node's data.
    assert "not an individual" in fail(fed.node("ru-lotl", "links", "propose", "cn-ntlnp",
                                               "PPO-RU-999", cn_b, *args))
    assert "not another active member" in fail(fed.node("ru-lotl", "links", "propose",
                                                        "mn-nobody", ru_b, cn_b, *args))
    states = {row["state"] for row in _listed(fed, "ru-lotl").values()}
    assert states <= {"proposed", "rejected"}
    assert _listed(fed, "cn-ntlnp")[first]["state"] == "proposed"
    assert cn_tiger not in {row["theirs"] for row in _listed(fed, "ru-lotl").values()
                            if row["state"] == "proposed"}
    assert ru_tiger not in {row["theirs"] for row in _listed(fed, "cn-ntlnp").values()}


def test_an_undelivered_message_is_kept_and_pushed_later(parks: Federation) -> None:
    fed = parks
    ru_id, cn_id = _pairs(fed, LEOPARD)[0]
    cn_server = fed.servers["cn-ntlnp"]
    app, cn_server.app = cn_server.app, None  # cn-ntlnp's node answers 503 for a while
    printed = ok(fed.node("ru-lotl", "links", "propose", "cn-ntlnp", ru_id, cn_id,
                          "--method", "photo-id", "--confidence", "0.9", "--reason", "r"))
    assert "not yet delivered" in printed
    link = _link_id(printed)
    assert _listed(fed, "ru-lotl")[link]["undelivered"] == 1
    assert "still have undelivered" in fail(fed.node("ru-lotl", "links", "push"))
    cn_server.app = app
    assert "delivered to cn-ntlnp" in ok(fed.node("ru-lotl", "links", "push"))
    assert _listed(fed, "ru-lotl")[link]["undelivered"] is None
    assert _listed(fed, "cn-ntlnp")[link]["state"] == "proposed"
    assert "Nothing to deliver" in ok(fed.node("ru-lotl", "links", "push"))


# --------------------------------------------------------------------- attacks on POST /links


def _proposal(key: SigningKey, *, sender: str = "ru-lotl", recipient: str = "cn-ntlnp",
              at: datetime | None = None, **changes: Any) -> str:
    payload = {"type": MESSAGE_TYPE, "action": "propose", "link": str(uuid.uuid4()),
               "from": sender, "to": recipient,
               "at": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "taxon": LEOPARD, "from_id": "PPO-RU-001", "to_id": "CN-L01",
               "method": "photo-id", "evidence": [], "confidence": 0.5, "reason": "r"}
    payload.update(changes)
    return sign_compact(canonical_json(payload), key, typ=LINK_TYP)


def _post(fed: Federation, token: str | None, body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(fed.servers["cn-ntlnp"].url + "/links", json=body, headers=headers,
                      timeout=10)


def test_post_links_refuses_what_it_cannot_trust(parks: Federation) -> None:
    fed = parks
    ru_key = load_signing_key(load_settings(fed.nodes["ru-lotl"]).keys_dir)
    ru_id, cn_id = _pairs(fed, LEOPARD)[0]
    token = fed.token_for("ru-lotl", "cn-ntlnp", LINKS_SCOPE)
    good = _proposal(ru_key, from_id=ru_id, to_id=cn_id)

    assert _post(fed, None, {"message": good}).status_code == 401
    assert _post(fed, fed.token_for("ru-lotl", "cn-ntlnp"), {"message": good}).status_code == 403
    wrong_audience = fed.token_for("cn-ntlnp", "ru-lotl", LINKS_SCOPE)
    assert _post(fed, wrong_audience, {"message": good}).status_code == 401

    def refused(message: Any, why: str, status: int = 422) -> None:
        answer = _post(fed, token, {"message": message})
        assert answer.status_code == status, answer.text
        assert why in answer.json()["detail"], answer.json()

    refused(_proposal(SigningKey.generate(), from_id=ru_id, to_id=cn_id), "does not verify")
    refused(_proposal(ru_key, sender="cn-ntlnp", recipient="ru-lotl"), "cn-ntlnp")
    refused(_proposal(ru_key, recipient="mn-other"), "addressed to mn-other")
    refused(_proposal(ru_key, confidence=2), "confidence")
    refused(_proposal(ru_key, method="guess"), "method")
    refused(_proposal(ru_key, surprise=1), "surprise")
    refused(_proposal(ru_key, at=datetime.now(UTC) + timedelta(hours=1)), "in the future")
    refused(good[:-4] + "AAAA", "does not verify")
    refused("not.a.jws", "does not verify")
    answer = _post(fed, token, {"message": good, "extra": 1})
    assert answer.status_code == 422
    assert _post(fed, token, {"message": "x" * 40_000}).status_code == 413
    unknown = sign_compact(canonical_json({
        "type": MESSAGE_TYPE, "action": "confirm", "link": str(uuid.uuid4()), "from": "ru-lotl",
        "to": "cn-ntlnp", "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "proposal": "sha256:" + "0" * 64, "reason": ""}), ru_key, typ=LINK_TYP)
    refused(unknown, "no link", status=409)

    # Replayed: the same proposal twice is taken once.
    first = _post(fed, token, {"message": good})
    assert first.status_code == 200 and first.json()["applied"] is True
    second = _post(fed, token, {"message": good})
    assert second.status_code == 200 and second.json()["applied"] is False
    link = first.json()["link"]
    assert len([e for e in _log(fed, "cn-ntlnp", "link.proposed") if e["link"] == link]) == 1
    refusals = _log(fed, "cn-ntlnp", "link.refused")
    assert len(refusals) >= 10 and all(e["member"] == "ru-lotl" for e in refusals)


# --------------------------------------------------------------------- joint count of individuals


def test_joint_count_of_individuals_subtracts_confirmed_links(parks: Federation,
                                                              tmp_path: Path) -> None:
    fed = parks
    agreement = fed.agreement("corridor-demo-cn-ntlnp", "aggregate")
    pairs = _pairs(fed, LEOPARD)
    confirmed = pairs[:2]
    for ru_id, cn_id in confirmed:
        link = _link_id(ok(fed.node("ru-lotl", "links", "propose", "cn-ntlnp", ru_id, cn_id,
                                    "--method", "photo-id", "--confidence", "0.9",
                                    "--reason", "r")))
        ok(fed.node("cn-ntlnp", "links", "confirm", link))
    if len(pairs) > 2:  # a third pair only proposed: not confirmed, so not used
        ok(fed.node("ru-lotl", "links", "propose", "cn-ntlnp", *pairs[2], "--method",
                    "photo-id", "--confidence", "0.5", "--reason", "r"))
    out_dir = tmp_path / "joint"
    printed = ok(run_cli("joint-count", "--dir", fed.nodes["ru-lotl"], "--agreement", agreement,
                         "--own", "corridor-demo-ru-lotl", "--taxon", LEOPARD, "--cell", "0.1",
                         "--unit", "year", "--from", "2023", "--to", "2024", "--individuals",
                         "--out", out_dir))
    assert "Distinct individuals across the border" in printed
    with (out_dir / "individuals.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["period"] for r in rows] == ["2023", "2024"]
    for row in rows:
        assert not row["suppressed"]
        both = int(row["both"])
        assert both <= len(confirmed)
        assert int(row["total"]) == int(row["ru-lotl"]) + int(row["cn-ntlnp"]) - both
        assert int(row["only ru-lotl"]) == int(row["ru-lotl"]) - both
        assert len([x for x in row["links"].split(";") if x]) == both, row
    assert sum(int(r["both"]) for r in rows) >= 1
    # The provider's signed answer names links, never its animals' ids.
    signed = (out_dir / "sources" / f"{agreement}.json").read_text(encoding="utf-8")
    assert '"crossers"' in signed
    assert not any(cn_id in signed for _, cn_id in pairs)


def test_a_crossers_section_needs_the_individuals_metric(parks: Federation) -> None:
    fed = parks
    agreement = fed.agreement("corridor-demo-cn-ntlnp", "aggregate")
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:counts", agreement=agreement)
    query = {"metrics": ["events"], "taxa": [LEOPARD], "cell_size": "0.1",
             "period": {"unit": "year", "from": "2023", "to": "2023"}, "crossers": True}
    answer = httpx.post(f"{fed.servers['cn-ntlnp'].url}/agreements/{agreement}/counts",
                        json=query, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 422 and "individuals metric" in answer.json()["detail"]
    query["crossers"] = "yes"
    answer = httpx.post(f"{fed.servers['cn-ntlnp'].url}/agreements/{agreement}/counts",
                        json=query, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 422


# --------------------------------------------------------------------- the ledger page


def _signed_in(fed: Federation, member: str, user: str, role: str) -> Any:
    """A test client of ``member``'s pages, signed in as a new ``role`` account."""
    settings = load_settings(fed.nodes[member])
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            ACCOUNTS.add(session, user, "correct horse battery", role, now=datetime.now(UTC))
            session.commit()
    finally:
        engine.dispose()
    client = create_app({"CORRIDOR_SETTINGS": settings}).test_client()
    client.post("/login", data={"csrf_token": _csrf(client.get("/login")), "username": user,
                                "password": "correct horse battery"})
    return client


def _csrf(response: Any) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert token, response.get_data(as_text=True)[:500]
    return token.group(1)


def test_the_owner_decides_a_proposal_on_the_ledger_page(parks: Federation) -> None:
    fed = parks
    ru_id, cn_id = _pairs(fed, TIGER)[0]
    link = _link_id(ok(fed.node("ru-lotl", "links", "propose", "cn-ntlnp", ru_id, cn_id,
                                "--method", "genotype", "--evidence", "sample:RU-2024-17",
                                "--confidence", "0.95", "--reason", "Same microsatellites")))
    auditor = _signed_in(fed, "cn-ntlnp", "ivan", "auditor")
    page = auditor.get("/ledger")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert link in text and "sample:RU-2024-17" in text and "Same microsatellites" in text
    assert "Confirm</button>" not in text  # auditors see no forms
    refused = auditor.post(f"/ledger/{link}", data={"csrf_token": _csrf(page),
                                                    "action": "confirm"})
    assert refused.status_code == 403

    owner = _signed_in(fed, "cn-ntlnp", "olga", "owner")
    page = owner.get("/ledger")
    assert "Confirm</button>" in page.get_data(as_text=True)
    no_reason = owner.post(f"/ledger/{link}", data={"csrf_token": _csrf(page),
                                                    "action": "reject"})
    assert no_reason.status_code == 422 and "Nothing was recorded" in no_reason.get_data(
        as_text=True)
    assert owner.post(f"/ledger/{link}", data={"action": "confirm"}).status_code == 400  # CSRF
    done = owner.post(f"/ledger/{link}", data={"csrf_token": _csrf(page), "action": "confirm"},
                      follow_redirects=True)
    assert "is now confirmed, signed and delivered to ru-lotl" in done.get_data(as_text=True)
    for member in ("ru-lotl", "cn-ntlnp"):
        assert _listed(fed, member)[link]["state"] == "confirmed"
    assert owner.post("/ledger/not-a-link", data={"csrf_token": _csrf(page),
                                                  "action": "confirm"}).status_code == 404
