"""JSON bodies nested thousands deep get a 400 problem, never a 500 from inside the parser.

Observed before: an unauthenticated ``POST /members`` and, with a token,
``POST /catalog``, ``/agreements``, ``/members/me/keys`` and
``/witness/MEMBER`` with JSON nested 15,000-50,000 deep answered 500
(``RecursionError`` inside the JSON parser).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx
import pytest

from corridor.web import MAX_JSON_DEPTH, json_depth
from registry.log.witness_api import MAX_BODY as WITNESS_MAX_BODY

if TYPE_CHECKING:
    from tests.registry.conftest import RegistryHarness

pytestmark = pytest.mark.storage

PATHS = ["/members", "/catalog", "/agreements", "/members/me/keys", "/witness/ru-lotl"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("depth", [15_000, 50_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_a_deeply_nested_body_is_refused_before_parsing(
        registry: RegistryHarness, path: str, depth: int, opener: str) -> None:
    member = registry.add_member("ru-lotl")
    closer = "]" if opener == "[" else "}"
    body = opener * depth + "1" + closer * depth
    headers = {"Content-Type": "application/json"}
    if path != "/members":
        headers["Authorization"] = f"Bearer {registry.token(member)}"
    response = httpx.post(registry.url + path, content=body, headers=headers, timeout=30)
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    if response.status_code == 413:  # larger than the route takes (the witness: 32 KiB)
        limit = WITNESS_MAX_BODY if path.startswith("/witness") else 200_000
        assert len(body) > limit and problem["title"] == "Request Entity Too Large"
        return
    assert response.status_code == 400, response.text[:300]
    assert problem["title"] == "JSON nested too deeply"
    assert f"{depth} levels" in problem["detail"]


def test_an_ordinary_body_still_reaches_its_endpoint(registry: RegistryHarness) -> None:
    response = httpx.post(registry.url + "/members", json={"member_id": "x"}, timeout=10)
    assert response.status_code == 422  # validated by the endpoint, not refused for depth


@pytest.mark.parametrize(("body", "depth"), [
    (b"", 0), (b"1", 0), (b"[]", 1), (b'{"a": [1, {"b": 2}]}', 3),
    (b'["[[[[", "{{{"]', 1),  # brackets in strings do not count
    (b'["\\"[[[["]', 1),  # nor after an escaped quote
    (b"[" * 40, 40),  # malformed still measured
])
def test_json_depth_counts_only_structure(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_the_limit_admits_every_corridor_document() -> None:
    terms = {"taxa": ["Panthera pardus"], "fields": {"observations": ["observationID"]},
             "bbox": [130.0, 42.0, 132.0, 44.0]}
    assert json_depth(json.dumps({"event": {"terms": terms}}).encode()) < MAX_JSON_DEPTH
