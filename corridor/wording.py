"""Numbers as people read them: counts with their nouns, coordinates with their hemispheres."""

from __future__ import annotations

from collections.abc import Mapping


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 occurrence``, ``2,345 occurrences``; ``plural_form`` for irregular nouns."""
    word = noun if count == 1 else (plural_form or f"{noun}s")
    return f"{count:,} {word}"


#: The singular of each table name a row count is given for.
_ROW_NOUNS = {"deployments": "deployment", "media": "medium", "observations": "observation",
              "individuals": "individual", "event": "event", "occurrence": "occurrence",
              "events": "event", "occurrences": "occurrence", "cards": "card"}


def rows_of(table: str, count: int) -> str:
    """A row count with its table's noun: ``1 individual``, ``423 media``, ``2 events``."""
    noun = _ROW_NOUNS.get(table)
    if noun is None:
        return f"{count:,} {table}"
    return plural(count, noun, "media" if noun == "medium" else None)


def rows_summary(counts: Mapping[str, int]) -> str:
    """``4 deployments, 423 media, 1 individual``: row counts per table, in their order."""
    return ", ".join(rows_of(table, n) for table, n in counts.items())


def article(word: str) -> str:
    """``a`` or ``an`` before a (field) name: ``an eventID``, ``a deploymentID``."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def latitude_range(south: float, north: float, digits: int = 3) -> str:
    """``3.330 .. 3.167 S``, ``43.100 .. 43.600 N``, ``0.500 S .. 1.200 N``."""
    return _range(south, north, "N", "S", digits)


def longitude_range(west: float, east: float, digits: int = 3) -> str:
    """``39.5 .. 40.1 E``, ``70.200 .. 69.800 W``, ``1.000 W .. 2.000 E``."""
    return _range(west, east, "E", "W", digits)


def _range(low: float, high: float, positive: str, negative: str, digits: int) -> str:
    def side(value: float) -> str:
        return positive if value >= 0 else negative

    if side(low) == side(high):
        return f"{abs(low):.{digits}f} .. {abs(high):.{digits}f} {side(low)}"
    return f"{abs(low):.{digits}f} {side(low)} .. {abs(high):.{digits}f} {side(high)}"
