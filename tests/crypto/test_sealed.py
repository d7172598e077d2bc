"""Sealed tokens: what the node hands out comes back unaltered, or is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

import pytest

from crypto._encoding import b64url_decode, b64url_encode
from crypto.canonical import canonical_json
from crypto.errors import InvalidSignature
from crypto.sealed import MAX_SEALED_LENGTH, seal, unseal

KEY = bytes(range(32))
PURPOSE = "corridor-cursor/v1"
PAYLOAD = {"a": "ru-lotl.0123456789abcdef", "o": 1773, "c": {"Panthera pardus": "2026-01-01"}}


def test_a_sealed_token_opens_to_its_payload() -> None:
    assert unseal(KEY, PURPOSE, seal(KEY, PURPOSE, PAYLOAD)) == PAYLOAD


def test_the_payload_is_readable_but_not_secret() -> None:
    body, _, _ = seal(KEY, PURPOSE, PAYLOAD).partition(".")
    assert json.loads(b64url_decode(body)) == PAYLOAD  # authenticated, not encrypted


def test_an_altered_payload_is_refused() -> None:
    _, _, mac = seal(KEY, PURPOSE, PAYLOAD).partition(".")
    altered = b64url_encode(canonical_json({**PAYLOAD, "o": 0})) + "." + mac
    with pytest.raises(InvalidSignature) as refused:
        unseal(KEY, PURPOSE, altered)
    assert refused.value.reason == "sealed token MAC does not match"


def test_a_token_forged_without_the_key_is_refused() -> None:
    body = canonical_json(PAYLOAD)
    guess = hmac.new(secrets.token_bytes(32), body, hashlib.sha256).digest()
    with pytest.raises(InvalidSignature):
        unseal(KEY, PURPOSE, b64url_encode(body) + "." + b64url_encode(guess))


def test_another_key_or_purpose_is_refused() -> None:
    token = seal(KEY, PURPOSE, PAYLOAD)
    with pytest.raises(InvalidSignature):
        unseal(bytes(32), PURPOSE, token)
    with pytest.raises(InvalidSignature):
        unseal(KEY, "corridor-other/v1", token)


@pytest.mark.parametrize("token", [
    "", ".", "abc", "abc.def.ghi", "!!!.@@@", "a" * (MAX_SEALED_LENGTH + 1),
    "W10." + "A" * 43,  # '[]' with a wrong MAC
])
def test_malformed_or_oversize_tokens_are_refused_before_parsing(token: str) -> None:
    with pytest.raises(InvalidSignature):
        unseal(KEY, PURPOSE, token)


def test_deep_nesting_never_reaches_the_parser_without_the_key() -> None:
    body = b"[" * 2000 + b"]" * 2000
    with pytest.raises(InvalidSignature) as refused:
        unseal(KEY, PURPOSE, b64url_encode(body) + "." + b64url_encode(bytes(32)))
    assert refused.value.reason in {"sealed token missing or too long",
                                    "sealed token MAC does not match"}


def test_a_non_object_payload_is_refused_even_when_sealed() -> None:
    body = canonical_json([1, 2])
    mac = hmac.new(KEY, b"corridor-sealed\x00" + PURPOSE.encode() + b"\x00" + body,
                   hashlib.sha256).digest()
    with pytest.raises(InvalidSignature) as refused:
        unseal(KEY, PURPOSE, b64url_encode(body) + "." + b64url_encode(mac))
    assert refused.value.reason == "sealed payload is not an object"


def test_short_keys_and_oversize_payloads_cannot_be_sealed() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        seal(b"short", PURPOSE, PAYLOAD)
    with pytest.raises(ValueError, match="exceeds"):
        seal(KEY, PURPOSE, {"x": "y" * MAX_SEALED_LENGTH})
