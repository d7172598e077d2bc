"""RFC 8785 JSON Canonicalization Scheme."""

from __future__ import annotations

import json
import math
import random
import struct
from collections import OrderedDict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.canonical import canonical_json

# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
APPENDIX_B_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def double(bits: str) -> float:
    """The double with this big-endian hex bit pattern."""
    value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    return value


def test_rfc8785_section_3_2_2_example() -> None:
    # RFC 8785 §3.2.2: the input as text, parsed, then canonicalized.
    text = r"""
    {
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }
    """
    expected = (
        '{"literals":[null,true,false],'
        '"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(text)) == expected.encode("utf-8")


def test_rfc8785_section_3_2_3_sorting_example() -> None:
    # Sorting is by UTF-16 code units: the emoji (a surrogate pair starting
    # 0xD83D) sorts before U+FB33 although its code point is larger.
    text = r"""
    {
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }
    """
    out = json.loads(canonical_json(json.loads(text)), object_pairs_hook=list)
    assert [value for _, value in out] == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B_NUMBERS)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    assert canonical_json(double(bits)) == expected.encode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1e30, "1e+30"), (4.5, "4.5"), (0.002, "0.002"), (1e-7, "1e-7"), (-0.0, "0"), (100.0, "100")],
)
def test_number_examples(value: float, expected: str) -> None:
    assert canonical_json(value) == expected.encode()


def test_integers_are_plain_digits() -> None:
    assert canonical_json([0, -1, 1700000000, 2**53 - 1, -(2**53 - 1)]) == (
        b"[0,-1,1700000000,9007199254740991,-9007199254740991]"
    )


def test_literals_and_nesting_without_whitespace() -> None:
    value: dict[str, Any] = {"b": [True, False, None, {"z": [], "a": {}}], "a": ("x",)}
    assert canonical_json(value) == b'{"a":["x"],"b":[true,false,null,{"a":{},"z":[]}]}'


def test_string_escaping_is_minimal() -> None:
    # RFC 8785 §3.2.2.2: short escapes where defined, lowercase \u00xx for other
    # controls, and nothing else escaped (not '/', not DEL, not non-ASCII).
    value = '\b\t\n\f\r\x00\x1f"\\/\x7f\u00e9\U0001f600'
    assert canonical_json(value) == (
        '"\\b\\t\\n\\f\\r\\u0000\\u001f\\"\\\\/\x7f\u00e9\U0001f600"'.encode()
    )


def json_values(max_float: float = math.inf) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values, with floats bounded by ``max_float`` in magnitude."""
    floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: abs(f) < max_float)
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
        | floats
        | st.text(),
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(st.text(max_size=8), children, max_size=5)
        ),
        max_leaves=25,
    )


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return OrderedDict((k, _shuffled(v, rng)) for k, v in items)
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@given(json_values(), st.randoms(use_true_random=False))
def test_stable_under_key_reordering(value: Any, rng: random.Random) -> None:
    assert canonical_json(_shuffled(value, rng)) == canonical_json(value)


@given(json_values())
def test_output_parses_back_to_an_equal_value(value: Any) -> None:
    # JCS numbers are doubles: read them back as an ECMAScript parser would.
    assert json.loads(canonical_json(value), parse_int=float) == value


@given(json_values(max_float=2.0**53))
def test_canonical_form_is_a_fixed_point(value: Any) -> None:
    # Bounded floats: an integral double >= 2**53 prints as digits that
    # Python's json reads back as an int outside the I-JSON range, which
    # canonical_json then refuses (see test_rejects_integers_outside_ijson_range).
    out = canonical_json(value)
    assert canonical_json(json.loads(out)) == out


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, double("7fffffffffffffff"), double("7ff0000000000000")]
)
def test_rejects_nan_and_infinity(value: float) -> None:
    with pytest.raises(ValueError):
        canonical_json({"n": [value]})


@pytest.mark.parametrize("value", [2**53, -(2**53), 10**30])
def test_rejects_integers_outside_ijson_range(value: int) -> None:
    with pytest.raises(ValueError, match="I-JSON"):
        canonical_json(value)


@pytest.mark.parametrize("value", ["\ud800", {"\udfff": 1}])
def test_rejects_lone_surrogates(value: Any) -> None:
    with pytest.raises(ValueError, match="surrogate"):
        canonical_json(value)


@pytest.mark.parametrize("value", [{1: "a"}, {None: "a"}, {("a",): 1}])
def test_rejects_non_string_keys(value: Any) -> None:
    with pytest.raises(TypeError):
        canonical_json(value)


@pytest.mark.parametrize(
    "value",
    [
        b"bytes",
        {1, 2},
        object(),
        1j,
        [bytearray(b"x")],
        Decimal("1.5"),
        datetime(2024, 1, 1, tzinfo=UTC),
        {"k": frozenset()},
    ],
)
def test_rejects_non_json_types(value: Any) -> None:
    with pytest.raises(TypeError):
        canonical_json(value)


def test_rejects_circular_value() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="circular"):
        canonical_json(loop)


def test_rejects_too_deep_nesting() -> None:
    deep: Any = "leaf"
    for _ in range(100_000):
        deep = {"a": deep}
    with pytest.raises(ValueError, match="too deeply"):
        canonical_json(deep)
