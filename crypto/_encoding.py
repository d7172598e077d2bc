"""Strict base64url and JSON decoding shared by the JOSE modules (package-internal).

Both decoders accept exactly one spelling of each value, so that what this
package verifies is never something a more lenient parser elsewhere would read
differently.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, NoReturn

__all__ = ["b64url_decode", "b64url_encode", "strict_json_loads"]

_B64URL_ALPHABET = re.compile(rb"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str | bytes) -> bytes:
    """Decode unpadded base64url, rejecting anything but its canonical spelling.

    :raises ValueError: on padding, characters outside the alphabet, an
        impossible length, or non-zero trailing bits.
    """
    raw = data.encode("ascii") if isinstance(data, str) else bytes(data)
    if not _B64URL_ALPHABET.fullmatch(raw) or len(raw) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except binascii.Error as e:
        raise ValueError("not unpadded base64url") from e
    # Non-zero unused trailing bits give a second spelling of the same bytes.
    if b64url_encode(decoded).encode("ascii") != raw:
        raise ValueError("non-canonical base64url")
    return decoded


def strict_json_loads(data: bytes) -> Any:
    """Parse UTF-8 JSON, rejecting duplicate names, NaN/Infinity and deep nesting.

    :raises ValueError: whenever the input is not such a JSON text.
    """
    try:
        text = data.decode("utf-8")
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicate_names,
            parse_constant=_reject_constant,
        )
    except RecursionError as e:
        raise ValueError("JSON nested too deeply") from e


def _reject_duplicate_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 §5.2 step 4: reject (or use the last of) duplicate names; we reject.
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate JSON member {name!r}")
        result[name] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")
