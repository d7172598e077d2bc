"""Value transforms: rounding, uncertainty, timestamp coarsening, pseudonyms."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.sensitivity import PRECISION
from policies.transforms import (
    coarsen_event_date,
    coarsen_timestamp,
    pseudonym,
    round_coordinate,
    widened_uncertainty,
)

coordinates = st.floats(min_value=-180, max_value=180, allow_nan=False)
precisions = st.sampled_from(sorted(PRECISION.values()))


# --- round_coordinate ----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "precision", "expected"), [
    (43.1234, 0.1, 43.1),
    (43.15, 0.1, 43.2),        # tie, away from zero
    (-43.15, 0.1, -43.2),      # tie, away from zero (mirrored)
    (0.05, 0.1, 0.1),
    (-0.05, 0.1, -0.1),
    (131.005, 0.01, 131.01),   # decided on the written decimal, not on binary 131.00499...
    (131.0049, 0.01, 131.0),
    (42.99951, 0.001, 43.0),
    (130.0, 0.1, 130.0),
    (7, 0.01, 7.0),
])
def test_round_coordinate_examples(value: float, precision: float, expected: float) -> None:
    assert round_coordinate(value, precision) == expected


def test_round_coordinate_never_gives_negative_zero() -> None:
    rounded = round_coordinate(-0.04, 0.1)
    assert rounded == 0 and math.copysign(1, rounded) == 1
    assert str(rounded) == "0.0"


@pytest.mark.parametrize("precision", [0.5, 0.25, 0, -0.1, 2, 0.02, float("nan")])
def test_round_coordinate_refuses_precisions_that_are_not_powers_of_ten(
        precision: float) -> None:
    with pytest.raises(ValueError, match="power of ten"):
        round_coordinate(43.1, precision)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_round_coordinate_refuses_non_finite_values(value: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        round_coordinate(value, 0.1)


@given(coordinates, precisions)
def test_rounded_coordinate_is_a_multiple_of_the_precision_and_close(
        value: float, precision: float) -> None:
    rounded = round_coordinate(value, precision)
    steps = rounded / precision
    assert abs(steps - round(steps)) < 1e-6
    assert abs(value - rounded) <= precision / 2 + 1e-9


@given(coordinates, precisions)
def test_rounding_twice_is_rounding_once(value: float, precision: float) -> None:
    once = round_coordinate(value, precision)
    assert round_coordinate(once, precision) == once


@given(coordinates, precisions, precisions)
def test_rounding_then_coarser_rounding_is_never_finer(value: float, p: float,
                                                     q: float) -> None:
    coarse = max(p, q)
    twice = round_coordinate(round_coordinate(value, min(p, q)), coarse)
    steps = twice / coarse
    assert abs(steps - round(steps)) < 1e-6


@given(st.integers(-1_800_000_000, 1_800_000_000), st.integers(1, 7),
       st.sampled_from([1, 2, 3]))
def test_sqlite_round_agrees_for_coordinates_as_written(units: int, decimals: int,
                                                        digits: int) -> None:
    # What the exporter may rely on: for a coordinate written with up to seven
    # decimals, SQLite's round(x, k) gives the same double (apart from -0.0).
    value = float(f"{units / 10**7:.{decimals}f}")
    with sqlite3.connect(":memory:") as db:
        in_sql = db.execute("SELECT round(?, ?)", (value, digits)).fetchone()[0]
    assert in_sql + 0.0 == round_coordinate(value, 10.0 ** -digits)


# --- widened_uncertainty -------------------------------------------------------------------


def test_widened_uncertainty_is_the_half_diagonal_of_the_cell() -> None:
    # At the equator a 0.1° cell is 11132 m square: half-diagonal 7871.5 m.
    assert widened_uncertainty(None, 0.1, 0.0) == math.ceil(11132 * math.sqrt(2) / 2)
    # At 60°, the cell is half as wide as it is tall.
    assert widened_uncertainty(0, 0.1, 60.0) == math.ceil(math.hypot(11132, 5566) / 2)
    # Existing uncertainty adds.
    assert widened_uncertainty(250, 0.01, 0.0) == 250 + math.ceil(1113.2 * math.sqrt(2) / 2)


def test_widened_uncertainty_at_the_amur_leopards_latitude() -> None:
    # 43.1° N, category 2: about 6.9 km added.
    assert 6_800 < widened_uncertainty(None, 0.1, 43.1) < 7_000
    assert widened_uncertainty(30, 0.001, 43.1) in range(95, 105)


@given(st.floats(0, 10_000, allow_nan=False), precisions,
       st.floats(-90, 90, allow_nan=False))
def test_widened_uncertainty_covers_the_rounding(existing: float, precision: float,
                                                 latitude: float) -> None:
    widened = widened_uncertainty(existing, precision, latitude)
    assert isinstance(widened, int)
    assert widened >= existing + precision * 111_320 / 2  # at least half the cell height


@pytest.mark.parametrize(("uncertainty", "precision", "latitude"), [
    (None, 0.1, 91.0), (None, 0.0, 43.0), (None, -0.1, 43.0), (-5, 0.1, 43.0),
])
def test_widened_uncertainty_refuses_nonsense(uncertainty: int | None, precision: float,
                                              latitude: float) -> None:
    with pytest.raises(ValueError):
        widened_uncertainty(uncertainty, precision, latitude)


# --- coarsen_timestamp ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "unit", "expected"), [
    ("2024-05-30T04:57:37+10:00", "day", "2024-05-30T00:00:00+10:00"),
    ("2024-05-30T04:57:37+10:00", "month", "2024-05-01T00:00:00+10:00"),
    # A 5 a.m. Primorye record keeps its local date (in UTC it is the 29th).
    ("2024-05-30T04:57:37+10:00", "day", "2024-05-30T00:00:00+10:00"),
    ("2024-05-30T23:10:00+08:00", "day", "2024-05-30T00:00:00+08:00"),
    ("2024-05-30T04:57:37Z", "day", "2024-05-30T00:00:00Z"),
    ("2024-05-30T04:57:37.250+1000", "day", "2024-05-30T00:00:00+1000"),
    ("2021-12-31T23:59:59-03:00", "month", "2021-12-01T00:00:00-03:00"),
])
def test_coarsen_timestamp_examples(text: str, unit: str, expected: str) -> None:
    assert coarsen_timestamp(text, unit) == expected


@pytest.mark.parametrize("text", [
    "2024-05-30T04:57:37",          # no offset
    "2024-05-30 04:57:37+10:00",    # not ISO 8601 'T'
    "2024-02-30T04:57:37+10:00",    # no such day
    "2024-05-30T25:57:37+10:00",    # no such hour
    "2024-05-30",
    "",
])
def test_coarsen_timestamp_refuses_what_is_not_a_datetime_with_offset(text: str) -> None:
    with pytest.raises(ValueError):
        coarsen_timestamp(text, "day")


def test_coarsen_timestamp_refuses_unknown_units() -> None:
    with pytest.raises(ValueError, match="unit"):
        coarsen_timestamp("2024-05-30T04:57:37+10:00", "week")


timestamps = st.builds(
    lambda moment, minutes, fraction: (
        moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
        .isoformat(timespec="milliseconds" if fraction else "seconds")),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
    st.sampled_from([0, 480, 600, -180, 330, 525]),
    st.booleans(),
)


@given(timestamps, st.sampled_from(["day", "month"]))
def test_coarsening_twice_is_coarsening_once(text: str, unit: str) -> None:
    once = coarsen_timestamp(text, unit)
    assert coarsen_timestamp(once, unit) == once
    assert coarsen_timestamp(coarsen_timestamp(text, "day"), "month") == \
        coarsen_timestamp(text, "month")


@given(timestamps, st.sampled_from(["day", "month"]))
def test_coarsening_keeps_local_date_and_offset_and_never_moves_forward(text: str,
                                                                       unit: str) -> None:
    original = datetime.fromisoformat(text)
    coarse = datetime.fromisoformat(coarsen_timestamp(text, unit))
    assert coarse.utcoffset() == original.utcoffset()
    assert coarse <= original
    assert (coarse.year, coarse.month) == (original.year, original.month)
    if unit == "day":
        assert coarse.date() == original.date()


@pytest.mark.parametrize(("text", "unit", "expected"), [
    ("2024-05-03", "day", "2024-05-03"),
    ("2024-05-03", "month", "2024-05"),
    ("2024-05-03T06:10+08:00", "day", "2024-05-03"),
    ("2024-05-03T06:10:00Z/2024-05-03T09:40:00Z", "day", "2024-05-03"),
    ("2024-05-03/2024-06-02", "month", "2024-05/2024-06"),
    ("2024-05-03/2024-05-28", "month", "2024-05"),
    ("2024-05", "day", "2024-05"),
    ("2024", "month", "2024"),
])
def test_coarsen_event_date_examples(text: str, unit: str, expected: str) -> None:
    assert coarsen_event_date(text, unit) == expected
    assert coarsen_event_date(expected, unit) == expected


@pytest.mark.parametrize("text", ["", "May 2024", "2024-13-01", "2024/2025/2026", "2024-05-03/"])
def test_coarsen_event_date_refuses_what_is_not_a_date(text: str) -> None:
    with pytest.raises(ValueError):
        coarsen_event_date(text, "day")


# --- pseudonym -----------------------------------------------------------------------------

KEY = bytes(range(32))


def test_pseudonym_is_the_documented_hmac() -> None:
    expected = "ind-" + hmac.new(KEY, b"PPO-017", hashlib.sha256).hexdigest()[:16]
    assert pseudonym(KEY, "PPO-017") == expected
    assert re.fullmatch(r"ind-[0-9a-f]{16}", expected)


@given(st.text(min_size=1, max_size=40), st.binary(min_size=16, max_size=64))
def test_pseudonym_is_stable_within_an_agreement(individual: str, key: bytes) -> None:
    # "Applying the plan twice": the same raw id under the same key, same pseudonym.
    assert pseudonym(key, individual) == pseudonym(key, individual)
    assert re.fullmatch(r"ind-[0-9a-f]{16}", pseudonym(key, individual))


@given(st.text(min_size=1, max_size=40))
def test_pseudonym_is_unlinkable_across_agreements(individual: str) -> None:
    assert pseudonym(b"a" * 32, individual) != pseudonym(b"b" * 32, individual)


def test_pseudonyms_of_different_individuals_differ() -> None:
    names = [f"PTA-{n:03d}" for n in range(1000)]
    assert len({pseudonym(KEY, n) for n in names}) == len(names)


def test_pseudonym_does_not_pass_lookalike_ids_through() -> None:
    # An owner's id that happens to look like a pseudonym is still replaced.
    lookalike = pseudonym(KEY, "PPO-001")
    assert pseudonym(KEY, lookalike) != lookalike


def test_pseudonym_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        pseudonym(b"", "PPO-001")
