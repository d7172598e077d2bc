"""The common grid and the aligned periods that joint counts are grouped by (DESIGN.md §9).

Two nodes can only add their counts if they put every camera in the same
cell and every record in the same period. So the grid is fixed: square
cells of 0.1°, 0.25°, 0.5° or 1°, aligned on whole multiples of their size
from 0° latitude and 0° longitude, each named by its south-west corner and
its size (``N43.1E131.2@0.1``); and periods are calendar months, quarters or
years in UTC (``2021-03``, ``2021-Q1``, ``2021``). Nothing else can be asked
for, so two answers can never be differenced into a finer cell or a
shorter period.

The arithmetic is decimal: 43.1 / 0.1 is 430.99999999999994 in binary
floating point, which would put a camera on the cell boundary into the cell
below. Coordinates are read from their shortest decimal representation
(``repr``), the one they were written in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal

__all__ = [
    "CELL_SIZES",
    "PERIOD_UNITS",
    "Cell",
    "GridError",
    "cell_of",
    "parse_cell",
    "parse_period",
    "period_bounds",
    "period_of",
    "periods_between",
]

#: The cell sizes of the common grid, in degrees, as they are written in cell names.
CELL_SIZES = ("0.1", "0.25", "0.5", "1")
#: The period units, finest first.
PERIOD_UNITS = ("month", "quarter", "year")
#: Most periods one query may span (ten years of months).
MAX_PERIODS = 120

_CELL_RE = re.compile(
    r"([NS])(\d{1,2}(?:\.\d{1,2})?)([EW])(\d{1,3}(?:\.\d{1,2})?)@(0\.1|0\.25|0\.5|1)")
_PERIOD_RE = {
    "month": re.compile(r"(\d{4})-(0[1-9]|1[0-2])"),
    "quarter": re.compile(r"(\d{4})-Q([1-4])"),
    "year": re.compile(r"(\d{4})"),
}


class GridError(ValueError):
    """A cell size, cell name, period unit or period that is not on the common grid."""


@dataclass(frozen=True, order=True)
class Cell:
    """One cell of the common grid: its south-west corner and its size, in degrees."""

    south: Decimal
    west: Decimal
    size: Decimal

    @property
    def name(self) -> str:
        """``N43.1E131.2@0.1``: hemisphere letters, the corner's degrees, ``@`` the size."""
        lat = ("N" if self.south >= 0 else "S") + _plain(abs(self.south))
        lon = ("E" if self.west >= 0 else "W") + _plain(abs(self.west))
        return f"{lat}{lon}@{_plain(self.size)}"

    def bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in degrees, for maps and GeoJSON."""
        return (float(self.west), float(self.south), float(self.west + self.size),
                float(self.south + self.size))


def _size(size: str) -> Decimal:
    if size not in CELL_SIZES:
        raise GridError(f"cell size {size!r} is not one of {', '.join(CELL_SIZES)} degrees")
    return Decimal(size)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def cell_of(latitude: float, longitude: float, size: str) -> Cell:
    """The cell of size ``size`` (one of :data:`CELL_SIZES`) that holds a point.

    A point on a boundary belongs to the cell to its north and east (cells
    are closed on their south and west sides).

    :raises GridError: unknown size, or a coordinate outside [-90, 90) x [-180, 180).
    """
    step = _size(size)
    if not (-90 <= latitude < 90 and -180 <= longitude < 180):
        raise GridError(f"({latitude}, {longitude}) is not a position on Earth's grid")
    lat, lon = Decimal(repr(float(latitude))), Decimal(repr(float(longitude)))
    south = (lat / step).to_integral_value(ROUND_FLOOR) * step
    west = (lon / step).to_integral_value(ROUND_FLOOR) * step
    return Cell(south, west, step)


def parse_cell(name: str) -> Cell:
    """The cell a name like ``N43.1E131.2@0.1`` denotes.

    :raises GridError: not a cell name, or a corner that is not aligned on its size.
    """
    match = _CELL_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise GridError(f"{str(name)[:40]!r} is not a cell name like N43.1E131.2@0.1")
    ns, lat, ew, lon, size = match.groups()
    step = Decimal(size)
    south = Decimal(lat) * (1 if ns == "N" else -1)
    west = Decimal(lon) * (1 if ew == "E" else -1)
    if south % step or west % step:
        raise GridError(f"{name}: the corner is not aligned on the {size}° grid")
    if not (south >= -90 and south + step <= 90 and west >= -180 and west + step <= 180):
        raise GridError(f"{name}: the cell lies outside [-90, 90] x [-180, 180]")
    cell = Cell(south, west, step)
    if cell.name != name:
        raise GridError(f"{name}: write it as {cell.name}")
    return cell


def period_of(moment: datetime, unit: str) -> str:
    """The name of the ``unit`` period holding ``moment`` (aware), in UTC.

    :raises GridError: unknown unit. :raises ValueError: naive ``moment``.
    """
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    at = moment.astimezone(UTC)
    if unit == "month":
        return f"{at.year:04d}-{at.month:02d}"
    if unit == "quarter":
        return f"{at.year:04d}-Q{(at.month - 1) // 3 + 1}"
    if unit == "year":
        return f"{at.year:04d}"
    raise GridError(f"period unit {unit!r} is not one of {', '.join(PERIOD_UNITS)}")


def parse_period(name: str, unit: str) -> tuple[int, int]:
    """``(year, index)`` of a period name of ``unit`` (index: month 1-12, quarter 1-4, 1).

    :raises GridError: unknown unit, or ``name`` is not a ``unit`` period.
    """
    pattern = _PERIOD_RE.get(unit)
    if pattern is None:
        raise GridError(f"period unit {unit!r} is not one of {', '.join(PERIOD_UNITS)}")
    match = pattern.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        example = {"month": "2021-03", "quarter": "2021-Q1", "year": "2021"}[unit]
        raise GridError(f"{str(name)[:20]!r} is not a {unit} (write it like {example})")
    year = int(match.group(1))
    if year < 1900:
        raise GridError(f"{name}: years before 1900 are not counted")
    return year, int(match.group(2)) if unit != "year" else 1


def period_bounds(name: str, unit: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a period, as aware UTC datetimes."""
    year, index = parse_period(name, unit)
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    first = (index - 1) * months  # months after January of ``year``
    start = datetime(year + first // 12, first % 12 + 1, 1, tzinfo=UTC)
    after = first + months
    end = datetime(year + after // 12, after % 12 + 1, 1, tzinfo=UTC)
    return start, end


def periods_between(first: str, last: str, unit: str) -> list[str]:
    """Every ``unit`` period from ``first`` to ``last``, both included, in order.

    :raises GridError: a name that is not a ``unit`` period, ``last`` before
        ``first``, or more than :data:`MAX_PERIODS` periods.
    """
    start, _ = period_bounds(first, unit)
    _, end = period_bounds(last, unit)
    if end <= start:
        raise GridError(f"the period ends ({last}) before it starts ({first})")
    out: list[str] = []
    moment = start
    while moment < end:
        name = period_of(moment, unit)
        out.append(name)
        if len(out) > MAX_PERIODS:
            raise GridError(f"{first}..{last} spans more than {MAX_PERIODS} {unit}s")
        moment = period_bounds(name, unit)[1]
    return out
