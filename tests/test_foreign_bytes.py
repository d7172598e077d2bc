"""Hypothesis over every parser that takes another party's bytes.

Tokens and signed JWS, signed notes (checkpoints), trust lists and data
packages each promise one kind of refusal for anything that is not theirs
(InvalidSignature, InvalidCheckpoint, TrustListRejected, a failed report).
Here they are given arbitrary bytes, arbitrary documents under a valid
signature (a registry or node that signs nonsense must still not crash its
peers), and valid documents with a change, and must keep that promise. Import
files are in tests/node/test_import_fuzz.py (they need a database).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.checkpoint import Checkpoint, InvalidCheckpoint, open_note, sign_note, verify_note
from crypto.errors import InvalidSignature
from crypto.jws import sign_compact, verify_compact
from crypto.jwt import decode_jwt
from crypto.keys import KeySet, SigningKey
from crypto.package_check import check_package
from crypto.tokens import ACCESS_TOKEN_TYP, verify_access_token
from crypto.trustlist import (
    TRUST_LIST_TYP,
    MemberEntry,
    TrustList,
    TrustListRejected,
    sign_trust_list,
    verify_trust_list,
)

KEY = SigningKey.generate()
KEYS = KeySet([KEY.public_key])
NOW = datetime(2026, 12, 8, tzinfo=UTC)
ISSUER = "https://registry.example"

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                  max_size=4),
    max_leaves=12)
TEXTISH = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)


T = TypeVar("T")


def refused_or(error: type[Exception], parse: Callable[..., T], *args: Any,
               **kwargs: Any) -> T | None:
    """``parse(*args, **kwargs)``, or None if it raised ``error`` (any other exception
    fails the test)."""
    try:
        return parse(*args, **kwargs)
    except error:
        return None


# --- JWS and tokens ------------------------------------------------------------------


@given(st.one_of(TEXTISH, st.binary(max_size=400),
                 st.lists(st.text(alphabet="AZaz09-_=+/", max_size=60), min_size=3,
                          max_size=3).map(".".join)))
def test_any_string_as_a_jws_or_token_is_refused_with_invalid_signature(
        presented: str | bytes) -> None:
    with pytest.raises(InvalidSignature):
        verify_compact(presented, KEYS)
    if isinstance(presented, str):
        with pytest.raises(InvalidSignature):
            verify_access_token(presented, KEYS, audience="cn-ntlnp", issuer=ISSUER,
                                now=int(NOW.timestamp()))


@given(payload=st.one_of(st.binary(max_size=300), JSON.map(lambda v: json.dumps(v).encode())),
       claims=st.dictionaries(st.sampled_from(["iss", "sub", "aud", "exp", "iat", "nbf", "jti",
                                               "scope", "client_id", "x"]), JSON, max_size=9))
def test_a_signed_token_with_any_payload_or_claims_is_refused_or_valid(
        payload: bytes, claims: dict[str, Any]) -> None:
    for body in (payload, json.dumps(claims).encode()):
        token = sign_compact(body, KEY, typ=ACCESS_TOKEN_TYP)
        decoded = refused_or(InvalidSignature, decode_jwt, token, KEYS,
                             now=int(NOW.timestamp()), audience="cn-ntlnp", typ=ACCESS_TOKEN_TYP)
        if decoded is not None:  # accepted: then it is for us, and not expired
            audience = decoded["aud"]
            assert audience == "cn-ntlnp" or (isinstance(audience, list)
                                              and "cn-ntlnp" in audience)
            assert decoded.get("exp", NOW.timestamp()) + 30 > NOW.timestamp()
        verified = refused_or(InvalidSignature, verify_access_token, token, KEYS,
                              audience="cn-ntlnp", issuer=ISSUER, now=int(NOW.timestamp()))
        if verified is not None:
            assert verified.audience == "cn-ntlnp" and verified.subject == verified.client_id


# --- signed notes (checkpoints) ------------------------------------------------------


@given(st.one_of(st.binary(max_size=600), TEXTISH))
def test_any_bytes_as_a_signed_note_are_refused_with_invalid_checkpoint(
        note: bytes | str) -> None:
    with pytest.raises(InvalidCheckpoint):
        open_note(note, {"ru-lotl": KEY.public_key})


@given(st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc"]),
                        max_size=50), min_size=1, max_size=6))
def test_any_signed_text_opens_as_a_checkpoint_or_is_refused(lines: list[str]) -> None:
    body = "".join(f"{line}\n" for line in lines).encode()
    try:
        note = sign_note(body, "ru-lotl", KEY)
    except ValueError:
        return  # not note text: nobody can sign it, so nobody can send it
    assert verify_note(note, {"ru-lotl": KEY.public_key})[0] == body
    try:
        checkpoint, _ = open_note(note, {"ru-lotl": KEY.public_key})
    except InvalidCheckpoint:
        return
    assert isinstance(checkpoint, Checkpoint) and checkpoint.size >= 0


# --- trust lists ---------------------------------------------------------------------


def trust_list_document() -> dict[str, Any]:
    """A valid trust list's document, as the registry signs it."""
    member = MemberEntry("ru-lotl", "Land of the Leopard", "RU", "https://ru.example",
                         KeySet([SigningKey.generate().public_key]))
    jws = sign_trust_list(version=3, issued_at=NOW - timedelta(hours=1),
                          expires_at=NOW + timedelta(days=7), registry_url=ISSUER,
                          registry_keys=KEYS, members=[member], key=KEY)
    document: dict[str, Any] = json.loads(verify_compact(jws, KEYS).payload)
    return document


DOCUMENT = trust_list_document()
PATHS = [("version",), ("issued_at",), ("expires_at",), ("registry",), ("registry", "url"),
         ("registry", "keys"), ("members",), ("members", 0), ("members", 0, "member_id"),
         ("members", 0, "keys"), ("members", 0, "keys", "keys"),
         ("members", 0, "keys", "keys", 0), ("members", 0, "keys", "keys", 0, "x")]


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``document`` with the value at ``path`` replaced (or removed: ...)."""
    copy = json.loads(json.dumps(document))
    *parents, last = path
    node = copy
    for step in parents:
        node = node[step]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return copy


@given(path=st.sampled_from(PATHS), value=st.one_of(JSON, st.just(...)))
def test_a_signed_trust_list_with_any_field_changed_is_refused_or_valid(
        path: tuple[Any, ...], value: Any) -> None:
    jws = sign_compact(json.dumps(replaced(DOCUMENT, path, value)).encode(), KEY,
                       typ=TRUST_LIST_TYP)
    accepted_trust_list_is_sound(refused_or(TrustListRejected, verify_trust_list, jws,
                                            anchor=KEYS, now=NOW))


@given(st.one_of(st.binary(max_size=300), JSON.map(lambda v: json.dumps(v).encode())))
def test_a_signed_trust_list_of_any_payload_is_refused_or_valid(payload: bytes) -> None:
    accepted_trust_list_is_sound(refused_or(
        TrustListRejected, verify_trust_list, sign_compact(payload, KEY, typ=TRUST_LIST_TYP),
        anchor=KEYS, now=NOW))


def accepted_trust_list_is_sound(trust_list: TrustList | None) -> None:
    """A list that was accepted has a version, has not expired and was not issued ahead."""
    if trust_list is not None:
        assert trust_list.version >= 1 and trust_list.expires_at > NOW
        assert trust_list.issued_at <= NOW + timedelta(minutes=5)


@given(TEXTISH)
def test_any_text_as_a_trust_list_is_refused(jws: str) -> None:
    with pytest.raises(TrustListRejected):
        verify_trust_list(jws, anchor=KEYS, now=NOW)


# --- data packages -------------------------------------------------------------------


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, KeySet]:
    """A real package exported by a node, and the node's keys."""
    from corridor.keystore import public_keys
    from node.cli import generate_and_import, init_node
    from tests.node.test_export import DEFAULT_POLICY_DOCUMENT, export

    root = tmp_path_factory.mktemp("fuzzed-package")
    node = init_node(root / "ru", "ru-lotl", "Land of the Leopard", "RU")
    generate_and_import(node, root / "gen", side="ru", observations=60, seed=3,
                        bird_counts=False)
    out: Path = root / "package.zip"
    export(node, "corridor-demo-ru-lotl", json.loads(json.dumps(DEFAULT_POLICY_DOCUMENT)),
           tier="generalized", now=NOW, out=out)
    return out.read_bytes(), public_keys(node.keys_dir)


def test_the_fuzzed_package_verifies_as_exported(package: tuple[bytes, KeySet]) -> None:
    data, keys = package
    report = check_package(io.BytesIO(data), "package.zip", keys)
    assert report.ok, report.failure


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None,
          max_examples=150)
@given(edit=st.one_of(
    st.tuples(st.just("flip"), st.integers(0), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0), st.integers(0, 255)),
    st.tuples(st.just("append"), st.integers(1, 64), st.integers(0, 255))))
def test_any_change_to_a_package_fails_its_report_and_never_raises(
        package: tuple[bytes, KeySet], edit: tuple[str, int, int]) -> None:
    data, keys = package
    kind, position, value = edit
    at = position % len(data)
    changed = bytearray(data)
    if kind == "flip":
        changed[at] ^= value
    elif kind == "cut":
        del changed[at:]
    elif kind == "insert":
        changed.insert(at, value)
    else:
        changed += bytes([value]) * position
    report = check_package(io.BytesIO(bytes(changed)), "package.zip", keys)
    assert not report.ok, f"{kind} at {at} ({value}) went unnoticed"
    assert report.failure


@given(st.binary(max_size=2000))
def test_any_bytes_as_a_package_get_a_failed_report(data: bytes) -> None:
    report = check_package(io.BytesIO(data), "package.zip", KEYS)
    assert not report.ok and report.failure
