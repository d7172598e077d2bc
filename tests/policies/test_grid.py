"""The common grid: cell names, boundaries, parsing, and aligned UTC periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.grid import (
    CELL_SIZES,
    MAX_PERIODS,
    Cell,
    GridError,
    cell_of,
    parse_cell,
    parse_period,
    period_bounds,
    period_of,
    periods_between,
)


@pytest.mark.parametrize(("lat", "lon", "size", "name"), [
    (43.15, 131.27, "0.1", "N43.1E131.2@0.1"),
    (43.1, 131.2, "0.1", "N43.1E131.2@0.1"),  # on the corner: the cell to the north-east
    (43.09999, 131.19999, "0.1", "N43E131.1@0.1"),
    (0.3, 0.7, "0.1", "N0.3E0.7@0.1"),
    (-43.15, -131.25, "0.1", "S43.2W131.3@0.1"),  # south and west: the corner is further out
    (-43.2, -131.3, "0.1", "S43.2W131.3@0.1"),
    (-0.05, -0.05, "0.1", "S0.1W0.1@0.1"),
    (-0.05, 0.05, "1", "S1E0@1"),
    (0.0, -0.0, "1", "N0E0@1"),
    (43.3, 131.6, "0.25", "N43.25E131.5@0.25"),
    (43.25, 131.75, "0.25", "N43.25E131.75@0.25"),
    (43.24999, 131.74999, "0.25", "N43E131.5@0.25"),
    (-43.3, -131.6, "0.25", "S43.5W131.75@0.25"),
    (51.496, 4.774, "0.5", "N51E4.5@0.5"),
    (-51.496, -4.774, "0.5", "S51.5W5@0.5"),
    (50.699, 4.013, "1", "N50E4@1"),
    (-89.99, 179.99, "1", "S90E179@1"),
    (-90.0, -180.0, "1", "S90W180@1"),
    (89.99, 179.99, "0.25", "N89.75E179.75@0.25"),
])
def test_cell_of_names_the_south_west_corner(lat: float, lon: float, size: str,
                                             name: str) -> None:
    cell = cell_of(lat, lon, size)
    assert cell.name == name
    assert parse_cell(name) == cell


def test_a_boundary_point_is_not_lost_to_binary_floating_point() -> None:
    # 0.3 / 0.1 == 2.9999999999999996 in floats: flooring it would drop the camera a cell.
    assert 0.3 / 0.1 < 3 and 4.1 / 0.1 < 41 and 0.7 / 0.1 < 7
    assert cell_of(43.1, 131.2, "0.1") == Cell(Decimal("43.1"), Decimal("131.2"), Decimal("0.1"))
    assert cell_of(0.3, 0.7, "0.1").name == "N0.3E0.7@0.1"
    assert cell_of(4.1, 2.3, "0.1").name == "N4.1E2.3@0.1"
    assert cell_of(-0.3, -0.7, "0.1").name == "S0.3W0.7@0.1"


def test_cell_bounds_are_west_south_east_north() -> None:
    assert cell_of(-43.3, 131.6, "0.25").bounds() == (131.5, -43.5, 131.75, -43.25)
    assert cell_of(43.1, -131.2, "0.1").bounds() == pytest.approx((-131.2, 43.1, -131.1, 43.2))


@given(st.floats(-89.999, 89.999), st.floats(-179.999, 179.999), st.sampled_from(CELL_SIZES))
@settings(max_examples=200, deadline=None)
def test_every_point_lies_in_its_cell_and_the_name_round_trips(lat: float, lon: float,
                                                               size: str) -> None:
    cell = cell_of(lat, lon, size)
    assert cell.south <= Decimal(repr(lat)) < cell.south + cell.size
    assert cell.west <= Decimal(repr(lon)) < cell.west + cell.size
    assert cell.south % cell.size == 0 and cell.west % cell.size == 0
    assert parse_cell(cell.name) == cell


@pytest.mark.parametrize("size", ["0.2", "0.05", "2", "0.10", "1.0", ""])
def test_cell_sizes_off_the_grid_are_refused(size: str) -> None:
    with pytest.raises(GridError, match="cell size"):
        cell_of(43.1, 131.2, size)


@pytest.mark.parametrize(("lat", "lon"), [(90.0, 0.0), (-90.1, 0.0), (0.0, 180.0),
                                          (0.0, -180.5), (float("nan"), 0.0)])
def test_positions_off_the_earth_are_refused(lat: float, lon: float) -> None:
    with pytest.raises(GridError, match="not a position"):
        cell_of(lat, lon, "1")


@pytest.mark.parametrize(("name", "message"), [
    ("N43.3E131@0.25", "not aligned"),  # 43.3 is not a multiple of 0.25
    ("N43.1E131.5@0.5", "not aligned"),
    ("N43.5E131@1", "not aligned"),
    ("N43E131@0.2", "not a cell name"),  # not a grid size
    ("N43E131@0.10", "not a cell name"),
    ("N43.10E131.2@0.1", "write it as N43.1E131.2@0.1"),
    ("N43.0E131@1", "write it as N43E131@1"),
    ("S0E0@1", "write it as N0E0@1"),
    ("N0W0@1", "write it as N0E0@1"),
    ("N043.1E131.2@0.1", "not a cell name"),
    ("n43.1E131.2@0.1", "not a cell name"),
    (" N43E131@1", "not a cell name"),
    ("N43E131", "not a cell name"),
    ("", "not a cell name"),
    ("N90E0@1", "outside"),  # a cell north of the pole
    ("N89.9E180@0.1", "outside"),
    ("N0E999@1", "outside"),
    ("S91E0@1", "outside"),
])
def test_parse_cell_refuses_what_is_not_a_canonical_cell(name: str, message: str) -> None:
    with pytest.raises(GridError, match=message):
        parse_cell(name)


def test_parse_cell_refuses_a_non_string() -> None:
    with pytest.raises(GridError, match="not a cell name"):
        parse_cell(43.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(("moment", "month", "quarter", "year"), [
    (datetime(2021, 3, 15, 12, tzinfo=UTC), "2021-03", "2021-Q1", "2021"),
    (datetime(2021, 4, 1, tzinfo=UTC), "2021-04", "2021-Q2", "2021"),
    (datetime(2021, 12, 31, 23, 59, 59, tzinfo=UTC), "2021-12", "2021-Q4", "2021"),
    # 00:30 on 1 January at UTC+2 is still 2020 in UTC
    (datetime(2021, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))), "2020-12", "2020-Q4",
     "2020"),
    (datetime(2021, 6, 30, 20, tzinfo=timezone(timedelta(hours=-5))), "2021-07", "2021-Q3",
     "2021"),
])
def test_period_of_names_the_utc_period(moment: datetime, month: str, quarter: str,
                                        year: str) -> None:
    assert period_of(moment, "month") == month
    assert period_of(moment, "quarter") == quarter
    assert period_of(moment, "year") == year


def test_period_of_refuses_naive_moments_and_unknown_units() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_of(datetime(2021, 3, 1), "month")
    with pytest.raises(GridError, match="period unit 'week'"):
        period_of(datetime(2021, 3, 1, tzinfo=UTC), "week")


@pytest.mark.parametrize(("name", "unit", "start", "end"), [
    ("2021-02", "month", datetime(2021, 2, 1, tzinfo=UTC), datetime(2021, 3, 1, tzinfo=UTC)),
    ("2021-12", "month", datetime(2021, 12, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)),
    ("2021-Q1", "quarter", datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 4, 1, tzinfo=UTC)),
    ("2021-Q4", "quarter", datetime(2021, 10, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)),
    ("2020", "year", datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)),
])
def test_period_bounds_are_half_open_utc(name: str, unit: str, start: datetime,
                                         end: datetime) -> None:
    assert period_bounds(name, unit) == (start, end)
    assert period_of(start, unit) == name
    assert period_of(end - timedelta(microseconds=1), unit) == name
    assert period_of(end, unit) != name


@pytest.mark.parametrize(("name", "unit"), [
    ("2021-3", "month"), ("2021-13", "month"), ("2021-00", "month"), ("2021-Q1", "month"),
    ("2021-Q5", "quarter"), ("2021-Q0", "quarter"), ("2021-03", "quarter"),
    ("21", "year"), ("2021-01", "year"), ("1899", "year"), ("1899-12", "month"),
])
def test_period_names_off_the_grid_are_refused(name: str, unit: str) -> None:
    with pytest.raises(GridError):
        period_bounds(name, unit)


def test_parse_period_gives_year_and_index() -> None:
    assert parse_period("2021-07", "month") == (2021, 7)
    assert parse_period("2021-Q3", "quarter") == (2021, 3)
    assert parse_period("2021", "year") == (2021, 1)


def test_periods_between_lists_every_period_in_order() -> None:
    assert periods_between("2021-11", "2022-02", "month") == [
        "2021-11", "2021-12", "2022-01", "2022-02"]
    assert periods_between("2021-Q4", "2022-Q2", "quarter") == ["2021-Q4", "2022-Q1", "2022-Q2"]
    assert periods_between("2019", "2021", "year") == ["2019", "2020", "2021"]
    assert periods_between("2021-05", "2021-05", "month") == ["2021-05"]


def test_periods_between_refuses_a_last_before_the_first() -> None:
    with pytest.raises(GridError, match="before it starts"):
        periods_between("2021-03", "2021-02", "month")
    with pytest.raises(GridError, match="before it starts"):
        periods_between("2022", "2021", "year")


def test_periods_between_refuses_more_than_the_maximum() -> None:
    assert MAX_PERIODS == 120
    assert len(periods_between("2021-01", "2030-12", "month")) == 120
    with pytest.raises(GridError, match="more than 120 months"):
        periods_between("2021-01", "2031-01", "month")


def test_periods_between_refuses_an_unknown_unit() -> None:
    with pytest.raises(GridError, match="period unit 'week' is not one of month, quarter, year"):
        periods_between("2021", "2021", "week")
