"""The value transforms a plan applies, as small pure functions.

The node's exporter runs these row by row, or mirrors them in SQL; each
docstring states the exact rule so the two can agree to the byte. All are
deterministic (same input, same output, on every machine), and all except
:func:`pseudonym` and :func:`widened_uncertainty` are idempotent: applying
them to their own output changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal

__all__ = [
    "METRES_PER_DEGREE",
    "coarsen_event_date",
    "coarsen_timestamp",
    "pseudonym",
    "round_coordinate",
    "widened_uncertainty",
]

#: Metres per degree of latitude, and of longitude at the equator: the figure
#: GBIF's georeferencing guidance uses for quick uncertainty estimates
#: (Chapman & Wieczorek 2020, *Georeferencing Best Practices*, GBIF
#: Secretariat, https://doi.org/10.15468/doc-gg7h-s853).
METRES_PER_DEGREE = 111_320

# Wide enough for every finite double with three decimals (about 310 digits).
_DECIMAL = Context(prec=400, rounding=ROUND_HALF_UP)


def _quantum(precision: float) -> Decimal:
    quantum = Decimal(repr(precision)).normalize()
    sign, digits, exponent = quantum.as_tuple()
    if sign or digits != (1,) or not isinstance(exponent, int) or exponent > 0:
        raise ValueError(f"precision {precision!r} is not a power of ten such as 0.1 or 0.01")
    return quantum


def round_coordinate(value: float, precision: float) -> float:
    """Round a coordinate to the nearest multiple of ``precision``, ties away from zero.

    Exactly: ``float(Decimal(repr(value)).quantize(Decimal(repr(precision)),
    ROUND_HALF_UP))``, with ``-0.0`` returned as ``0.0``. ``repr`` gives the
    shortest decimal that reads back as the same double, so the tie is decided
    on the number as written in the CSV (``43.15`` at 0.1 gives ``43.2``,
    ``-43.15`` gives ``-43.2``), not on its binary approximation. Never
    random: generalization must be repeatable (Chapman 2020). Idempotent.

    :raises ValueError: if ``value`` is not finite, or ``precision`` is not a
        power of ten (1, 0.1, 0.01, 0.001, ...).
    """
    if not math.isfinite(value):
        raise ValueError(f"coordinate {value!r} is not a finite number")
    rounded = float(_DECIMAL.quantize(Decimal(repr(float(value))), _quantum(precision)))
    return rounded + 0.0  # -0.0 + 0.0 == 0.0: no "-0" in the output


def widened_uncertainty(uncertainty_m: float | None, precision: float, latitude: float) -> int:
    """The coordinate uncertainty, in whole metres, of a point rounded to ``precision``.

    Rounding moves a point by at most half a cell in each direction, i.e. by
    the half-diagonal of a ``precision`` by ``precision`` cell; that distance
    adds to the uncertainty the point already had (Chapman & Wieczorek 2020,
    *Georeferencing Best Practices* — uncertainties from independent sources
    are summed into one maximum error distance; Chapman 2020, *Generalizing
    Sensitive Species Occurrence Data* — widen ``coordinateUncertainty`` when
    generalizing)::

        dy = precision * 111320                       # metres, north-south
        dx = precision * 111320 * cos(radians(latitude))  # metres, east-west
        result = ceil((uncertainty_m or 0) + sqrt(dx**2 + dy**2) / 2)

    Pass the *released* (already rounded) latitude, so the result reveals
    nothing finer than the released coordinate. Not idempotent: it adds.

    :raises ValueError: for a latitude outside -90..90, a precision that is
        not positive, or a negative uncertainty.
    """
    if not -90 <= latitude <= 90:
        raise ValueError(f"latitude {latitude!r} is outside -90..90")
    if not precision > 0 or not math.isfinite(precision):
        raise ValueError(f"precision {precision!r} must be a positive number of degrees")
    existing = uncertainty_m or 0
    if existing < 0 or not math.isfinite(existing):
        raise ValueError(f"uncertainty {uncertainty_m!r} must be a non-negative number of metres")
    dy = precision * METRES_PER_DEGREE
    dx = dy * math.cos(math.radians(latitude))
    return math.ceil(existing + math.hypot(dx, dy) / 2)


# Camtrap DP datetimes: %Y-%m-%dT%H:%M:%S%z, optional fraction, mandatory offset.
_TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})", re.ASCII)
_UNITS = ("day", "month")


def coarsen_timestamp(text: str, unit: str) -> str:
    """Coarsen an ISO 8601 datetime to the start of its day or month, in its own local time.

    The offset is kept exactly as written (``Z``, ``+10:00`` or ``+1000``);
    the fraction of a second is dropped::

        coarsen_timestamp("2024-05-30T04:57:37+10:00", "day")   -> "2024-05-30T00:00:00+10:00"
        coarsen_timestamp("2024-05-30T04:57:37+10:00", "month") -> "2024-05-01T00:00:00+10:00"

    i.e. ``text[:10] + "T00:00:00" + offset`` (day) or ``text[:8] + "01T00:00:00"
    + offset`` (month). The local date is kept because it is the date the
    record's owner and readers see; converting to UTC first would move a
    5 a.m. Primorye record to the previous day. Idempotent.

    :raises ValueError: for an unknown unit, or text that is not a datetime
        with an offset.
    """
    if unit not in _UNITS:
        raise ValueError(f"unit {unit!r} is not 'day' or 'month'")
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a datetime like 2024-05-30T04:57:37+10:00")
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise ValueError(f"{text!r} is not a valid datetime ({e})") from e
    year, month, day, offset = match.group(1), match.group(2), match.group(3), match.group(8)
    if unit == "month":
        day = "01"
    return f"{year}-{month}-{day}T00:00:00{offset}"


_DWC_PART_RE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?)?)?",
                          re.ASCII)


def _coarsen_dwc_part(part: str, unit: str) -> str:
    match = _DWC_PART_RE.fullmatch(part)
    if match is None:
        raise ValueError(f"{part!r} is not an ISO 8601 date or datetime")
    year, month, day = match.group(1), match.group(2), match.group(3)
    try:
        date(int(year), int(month or 1), int(day or 1))
    except ValueError as e:
        raise ValueError(f"{part!r} is not a valid date ({e})") from e
    if month is None:
        return year
    if unit == "month" or day is None:
        return f"{year}-{month}"
    return f"{year}-{month}-{day}"


def coarsen_event_date(text: str, unit: str) -> str:
    """Coarsen a Darwin Core ``eventDate`` (date, datetime or ``start/end`` interval).

    Each part keeps its local date and loses its time (``day``), or keeps
    only year and month (``month``); parts already coarser stay as they are.
    An interval whose two parts become equal collapses to one value::

        "2024-05-03T06:10+08:00/2024-05-03T09:40+08:00", "day" -> "2024-05-03"
        "2024-05-03/2024-06-02", "month"                       -> "2024-05/2024-06"

    Idempotent.

    :raises ValueError: for an unknown unit or text that is not a date.
    """
    if unit not in _UNITS:
        raise ValueError(f"unit {unit!r} is not 'day' or 'month'")
    parts = text.split("/")
    if len(parts) > 2 or not all(parts):
        raise ValueError(f"{text!r} is not an ISO 8601 date, datetime or interval")
    coarse = [_coarsen_dwc_part(p, unit) for p in parts]
    if len(coarse) == 2 and coarse[0] == coarse[1]:
        return coarse[0]
    return "/".join(coarse)


def pseudonym(key: bytes, individual_id: str) -> str:
    """The pseudonym of an individual under one agreement's key.

    ``"ind-" + HMAC-SHA256(key, individual_id as UTF-8).hexdigest()[:16]``:
    the same key gives the same pseudonym every time (counts of distinct
    individuals and recaptures still work within an agreement), a different
    key gives an unrelated one (two partners cannot join their extracts on
    it), and without the key it cannot be reversed. 64 bits keep accidental
    collisions negligible for any realistic number of individuals.

    Deliberately not idempotent: passing ids that merely look like
    pseudonyms through unchanged would release them linkably.

    :raises ValueError: for an empty key.
    """
    if not key:
        raise ValueError("a pseudonym key is required")
    digest = hmac.new(key, individual_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return "ind-" + digest[:16]
