"""RFC 8785 JSON Canonicalization Scheme (JCS).

:func:`canonical_json` turns a JSON-compatible Python value into the one byte
string RFC 8785 defines for it, so that two parties hashing or signing "the
same" JSON agree on the bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_json"]

# RFC 8785 §3.2.2.2: only '"', '\\' and the C0 controls are escaped; the five
# controls with a short form use it, the others use lowercase \u00xx.
_STRING_ESCAPES: dict[int, str] = {c: f"\\u{c:04x}" for c in range(0x20)}
_STRING_ESCAPES.update(
    {
        ord('"'): '\\"',
        ord("\\"): "\\\\",
        ord("\b"): "\\b",
        ord("\t"): "\\t",
        ord("\n"): "\\n",
        ord("\f"): "\\f",
        ord("\r"): "\\r",
    }
)

# Integers in this range are exact IEEE 754 doubles, which ECMAScript prints
# as plain digits, so they need no float formatting.
_MAX_SAFE_INTEGER = 2**53 - 1


def canonical_json(obj: Any) -> bytes:
    """Serialize ``obj`` to its RFC 8785 canonical UTF-8 bytes.

    Accepted values: ``None``, ``bool``, ``int``, ``float``, ``str``, lists
    and tuples (JSON arrays) and mappings with ``str`` keys (JSON objects).

    :raises ValueError: for NaN or infinite floats, integers outside the
        I-JSON safe range ±(2**53 - 1) (RFC 8785 numbers are IEEE 754 doubles;
        larger integers belong in strings), strings holding lone
        surrogates (not valid Unicode), and circular or too deeply nested
        values.
    :raises TypeError: for any other type, or a non-``str`` object key.
    """
    parts: list[str] = []
    try:
        _serialize(obj, parts)
    except RecursionError as e:
        raise ValueError("value nested too deeply, or circular") from e
    text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError("string contains a lone surrogate; not valid Unicode") from e


def _serialize(value: Any, out: list[str]) -> None:
    # bool before int: bool is an int subclass.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(_format_int(int(value)))
    elif isinstance(value, float):
        out.append(_format_float(float(value)))
    elif isinstance(value, str):
        out.append(_format_string(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _serialize(item, out)
        out.append("]")
    elif isinstance(value, Mapping):
        _serialize_object(value, out)
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _serialize_object(value: Mapping[Any, Any], out: list[str]) -> None:
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"object keys must be str, not {type(key).__name__}")
    # RFC 8785 §3.2.3: sort by UTF-16 code units. Big-endian UTF-16 bytes
    # compare exactly like the sequence of code units.
    keys = sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
    out.append("{")
    for index, key in enumerate(keys):
        if index:
            out.append(",")
        out.append(_format_string(key))
        out.append(":")
        _serialize(value[key], out)
    out.append("}")


def _format_string(value: str) -> str:
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def _format_int(value: int) -> str:
    # RFC 7493 §2.2 (cited by RFC 8785 §3.2.2.3): integers beyond 2**53 - 1 lose
    # precision as doubles, so they would not survive a verifier's round trip.
    if not -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
        raise ValueError(f"integer {value} is outside the I-JSON range; encode it as a string")
    return str(value)


def _format_float(value: float) -> str:
    """Format a double like ECMAScript ``Number.prototype.toString`` (ECMA-262 §7.1.12.1)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{value!r} is not allowed in JSON")
    if value == 0:
        return "0"  # also for -0.0
    sign = "-" if value < 0 else ""
    digits, n = _shortest_digits(abs(value))
    k = len(digits)
    # value = 0.digits * 10**n, i.e. digits * 10**(n - k), as in ECMA-262.
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        exponent = n - 1
        exp_text = ("+" if exponent > 0 else "-") + str(abs(exponent))
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = mantissa + "e" + exp_text
    return sign + body


def _shortest_digits(value: float) -> tuple[str, int]:
    """Return ``(digits, n)`` with ``value == 0.<digits> * 10**n``.

    ``repr`` of a float yields the shortest digit string that round-trips,
    choosing the closest such value, which is the digit selection ECMA-262
    §7.1.12.1 requires; only the layout differs, and is redone by the caller.
    """
    mantissa, _, exp_text = repr(value).partition("e")
    integer_part, _, fraction_part = mantissa.partition(".")
    all_digits = integer_part + fraction_part
    stripped = all_digits.lstrip("0")
    n = len(integer_part) + int(exp_text or "0") - (len(all_digits) - len(stripped))
    return stripped.rstrip("0"), n
