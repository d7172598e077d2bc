"""PSI-CA on edwards25519's prime-order group: the count is exact, the values reveal nothing."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.psi import (
    PointInvalid,
    blind,
    decode_points,
    encode_points,
    hash_to_group,
    intersection_size,
    new_scalar,
)


def overlap(mine: set[str], theirs: set[str], context: str = "s1") -> int:
    """Both rounds of the protocol, as the two parties would run them."""
    a, b = new_scalar(), new_scalar()
    sent = blind((hash_to_group(x, context=context) for x in mine), a)          # A -> B
    double_mine = blind(decode_points(encode_points(sent)), b)                  # B -> A
    single_theirs = blind((hash_to_group(y, context=context) for y in theirs), b)
    double_theirs = blind(decode_points(encode_points(single_theirs)), a)       # A
    return intersection_size(double_mine, double_theirs)


@pytest.mark.parametrize(("n_a", "n_b", "shared"), [(0, 0, 0), (1, 1, 1), (1, 1, 0), (5, 9, 3),
                                                    (40, 25, 25), (300, 200, 17),
                                                    (1000, 1500, 400)])
def test_the_count_is_the_plain_intersection_size(n_a: int, n_b: int, shared: int) -> None:
    rng = random.Random(n_a * 7919 + n_b)
    common = {f"MS-{rng.getrandbits(48):012x}" for _ in range(shared)}
    mine = common | {f"MS-a{i}" for i in range(n_a - shared)}
    theirs = common | {f"MS-b{i}" for i in range(n_b - shared)}
    assert overlap(mine, theirs) == len(mine & theirs) == shared


@settings(max_examples=40, deadline=None)
@given(st.sets(st.text(min_size=1, max_size=12), max_size=30),
       st.sets(st.text(min_size=1, max_size=12), max_size=30))
def test_any_two_sets(mine: set[str], theirs: set[str]) -> None:
    assert overlap(mine, theirs) == len(mine & theirs)


def test_blinded_values_do_not_repeat_across_sessions_or_scalars() -> None:
    one = blind([hash_to_group("MS-1", context="s1")], new_scalar())
    again = blind([hash_to_group("MS-1", context="s1")], new_scalar())
    other = blind([hash_to_group("MS-1", context="s2")], new_scalar())
    assert one != again and one != other
    assert hash_to_group("MS-1", context="s1") != hash_to_group("MS-1", context="s2")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_received_points_are_checked() -> None:
    good = encode_points(blind([hash_to_group(str(i), context="c") for i in range(3)],
                               new_scalar()))
    assert len(decode_points(good)) == 3
    identity = _b64(bytes([1] + [0] * 31))
    low_order = _b64(bytes(32))  # (0, -1)... a point of small order
    off_curve = _b64(bytes([2] + [0] * 31))
    non_canonical = _b64(bytes([0xED] + [0xFF] * 30 + [0x7F]))  # y >= p
    for bad, words in ((identity, "prime-order"), (low_order, "prime-order"),
                       (off_curve, "prime-order"), (non_canonical, "prime-order"),
                       ("x" * 43, "canonical"), ("short", "43 characters"),
                       (good[0][:-1] + "_", None)):
        with pytest.raises(PointInvalid) as raised:
            decode_points(sorted([bad]))
        assert words is None or words in str(raised.value)
    with pytest.raises(PointInvalid, match="not sorted"):
        # Reversed, not sorted(reverse=True): the order is the bytes', and base64url's
        # alphabet does not sort like the bytes it encodes (that made this test flaky).
        decode_points(list(reversed(good)))
    with pytest.raises(PointInvalid, match="duplicates"):
        decode_points([good[0], good[0]])
    with pytest.raises(PointInvalid, match="more than"):
        decode_points(good, limit=2)
    with pytest.raises(PointInvalid, match="list"):
        decode_points({"points": good})
    with pytest.raises(PointInvalid, match="43 characters"):
        decode_points([1])


def test_the_scalar_never_prints() -> None:
    assert "secret" in repr(new_scalar())
