"""The private overlap count between two real nodes: the right number, and nothing else on the wire.

Both parks import their side of the demo data, in which a genotyped animal
carries the same marker-panel code on either side. cn-ntlnp's aggregate tier
names the ``genotype`` column; ru-lotl runs ``corridor node overlap`` and
gets the size of the intersection, which the test computes in the clear from
both files. Every byte to and from cn-ntlnp's overlap endpoint is recorded
and searched for identifiers.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from corridor.keystore import load_signing_key
from crypto.canonical import canonical_json
from crypto.jws import sign_compact
from crypto.keys import SigningKey
from crypto.psi import MAX_SET, blind, encode_points, hash_to_group, new_scalar
from crypto.tokens import OVERLAP_SCOPE
from node.links.overlap import MESSAGE_TYPE, OVERLAP_TYP
from node.settings import load_settings
from tests.conftest import fail, ok

pytestmark = pytest.mark.storage

Federation = Any  # the fixture's class lives in tests/conftest.py

DATASET = "corridor-demo-cn-ntlnp"


def _policy(overlap: str | None) -> dict[str, Any]:
    tier: dict[str, Any] = {"aggregate_only": True}
    if overlap:
        tier["private_overlap"] = overlap
    return {"tiers": {"aggregate": tier}, "purposes": ["joint-monitoring"], "partners": ["*"],
            "max_duration_days": 365}


def _genotypes(node_dir: Path) -> dict[str, str]:
    [path] = (node_dir / "demo-data").glob("camtrap-*/individuals.csv")
    with path.open(encoding="utf-8") as fh:
        return {r["genotype"]: r["individualID"] for r in csv.DictReader(fh) if r["genotype"]}


class Recorder:
    """WSGI middleware keeping every request and response body of one path prefix."""

    def __init__(self, app: Callable[..., Iterable[bytes]], prefix: str) -> None:
        self.app, self.prefix, self.seen = app, prefix, bytearray()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(self.prefix):
            return self.app(environ, start_response)
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size)
        self.seen += body
        environ["wsgi.input"] = io.BytesIO(body)
        chunks = list(self.app(environ, start_response))
        for chunk in chunks:
            self.seen += chunk
        return chunks


def _agreement(fed: Federation, tmp_path: Path, overlap: str | None) -> str:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(_policy(overlap)))
    return str(fed.agreement(DATASET, "aggregate", policy=policy))


def test_the_overlap_count_is_the_true_intersection_and_no_identifier_travels(
        parks: Federation, tmp_path: Path) -> None:
    fed = parks
    agreement = _agreement(fed, tmp_path, "genotype")
    ru, cn = _genotypes(fed.nodes["ru-lotl"]), _genotypes(fed.nodes["cn-ntlnp"])
    shared = set(ru) & set(cn)
    assert shared and set(ru) - shared and set(cn) - shared  # a real test: partly overlapping
    server = fed.servers["cn-ntlnp"]
    recorder = Recorder(server.app, f"/agreements/{agreement}/overlap")
    server.app = recorder
    printed = ok(fed.node("ru-lotl", "overlap", agreement, "--field", "genotype"))
    assert f"{len(shared)} of this node's {len(ru)} and cn-ntlnp's {len(cn)}" in printed
    [kept] = (fed.nodes["ru-lotl"] / "received" / "overlap").glob("*.json")
    document = json.loads(kept.read_text(encoding="utf-8"))
    assert document["result"]["count"] == len(shared)
    assert {"provider_jws", "requester_jws"} <= set(document)

    traffic = bytes(recorder.seen)
    assert len(traffic) > 1000
    for code, local_id in [*ru.items(), *cn.items()]:
        for needle in (code, local_id, hashlib.sha256(code.encode()).hexdigest(),
                       hashlib.sha512(code.encode()).hexdigest()[:32]):
            assert needle.encode() not in traffic, needle
    # The same run, replayed: step 3 of a concluded session is refused.
    steps = re.findall(rb'"message":\s*"([^"]+)"', traffic)
    step3 = next(s for s in steps if b'"step":3' in _payload(s))
    token = fed.token_for("ru-lotl", "cn-ntlnp", OVERLAP_SCOPE, agreement=agreement)
    again = _post(fed, agreement, token, {"step": 3, "message": step3.decode()})
    assert again.status_code == 409 and "concluded already" in again.json()["detail"]


def _payload(jws: bytes) -> bytes:
    part = jws.split(b".")[1]
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))


def _post(fed: Federation, agreement: str, token: str, body: Any) -> httpx.Response:
    return httpx.post(f"{fed.servers['cn-ntlnp'].url}/agreements/{agreement}/overlap",
                      json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _step1(key: SigningKey, agreement: str, points: list[str], **changes: Any) -> str:
    payload = {"type": MESSAGE_TYPE, "step": 1, "session": str(uuid.uuid4()),
               "agreement": agreement, "from": "ru-lotl", "to": "cn-ntlnp",
               "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "points": points}
    payload.update(changes)
    return sign_compact(canonical_json(payload), key, typ=OVERLAP_TYP)


def test_the_overlap_endpoint_refuses_what_it_cannot_trust(parks: Federation,
                                                            tmp_path: Path) -> None:
    fed = parks
    agreement = _agreement(fed, tmp_path, "genotype")
    key = load_signing_key(load_settings(fed.nodes["ru-lotl"]).keys_dir)
    token = fed.token_for("ru-lotl", "cn-ntlnp", OVERLAP_SCOPE, agreement=agreement)
    good = encode_points(blind([hash_to_group(f"MS-{i}", context="x") for i in range(5)],
                               new_scalar()))
    assert _post(fed, agreement, token, {"step": 1, "message": _step1(key, agreement, good)}
                 ).status_code == 200

    def refused(body: Any, status: int, words: str) -> None:
        answer = _post(fed, agreement, token, body)
        assert answer.status_code == status, answer.text
        assert words in answer.text, answer.text

    counts = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:counts", agreement=agreement)
    answer = _post(fed, agreement, counts, {"step": 1, "message": _step1(key, agreement, good)})
    assert answer.status_code == 403
    refused({"step": 1, "message": _step1(SigningKey.generate(), agreement, good)}, 422,
            "does not verify")
    refused({"step": 1, "message": _step1(key, agreement, good, to="mn-other")}, 422, "to")
    refused({"step": 1, "message": _step1(key, "ru-lotl.0000000000000000", good)}, 422,
            "agreement")
    refused({"step": 1, "message": _step1(key, agreement, list(reversed(good)))}, 422,
            "not sorted")
    non_canonical = "7f" + "_" * 41  # not a point encoding at all
    refused({"step": 1, "message": _step1(key, agreement, [non_canonical])}, 422, "point 0")
    small_order = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"  # 32 zero bytes
    refused({"step": 1, "message": _step1(key, agreement, [small_order])}, 422, "prime-order")
    refused({"step": 2, "message": "x"}, 422, "step")
    too_many = encode_points(blind([hash_to_group(str(i), context="big")
                                    for i in range(MAX_SET + 1)], new_scalar()))
    refused({"step": 1, "message": _step1(key, agreement, too_many)}, 422, "more than")


def test_a_tier_that_names_no_identifier_offers_no_overlap(parks: Federation,
                                                           tmp_path: Path) -> None:
    fed = parks
    agreement = _agreement(fed, tmp_path, None)
    refused = fail(fed.node("ru-lotl", "overlap", agreement, "--field", "genotype"))
    assert "does not offer the private overlap count" in refused
