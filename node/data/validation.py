"""Row validation for imports: typed field specs and a bounded problem log.

Camera-trap field specs are read from the published Camtrap DP 1.0.2 table
schemas bundled in ``node/schemas`` (the single source of truth for names,
types, enums, ranges and patterns). Darwin Core has no table schema, so the
terms Corridor relies on are specified here.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from policies.errors import did_you_mean

SCHEMA_DIR = Path(__file__).parent / "camtrap-dp-1.0.2"
CAMTRAP_RESOURCES = ("deployments", "media", "observations")

# Camtrap DP datetimes: "%Y-%m-%dT%H:%M:%S%z" with a mandatory offset ("Z" allowed).
# All patterns are matched against the whole value (fullmatch) and with ASCII
# digits only: "\d" would otherwise accept e.g. Arabic-Indic digits, which int() reads.
_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})", re.ASCII
)
_DATETIME_NO_OFFSET_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?", re.ASCII
)
_INTEGER_RE = re.compile(r"[+-]?\d{1,19}", re.ASCII)
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?", re.ASCII)
_INT64 = 2**63
_BOOLEANS = {"true": True, "false": False, "TRUE": True, "FALSE": False, "True": True,
             "False": False, "1": True, "0": False}


class FieldProblem(ValueError):
    """One field of one row is invalid; the message is the reason."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located precisely."""

    file: str
    row: int | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", line {self.row}"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.reason}"


@dataclass
class ProblemLog:
    """Keeps the first ``limit`` problems in full and counts all of them."""

    limit: int = 50
    problems: list[Problem] = field(default_factory=list)
    total: int = 0

    def add(self, problem: Problem) -> None:
        """Record one problem."""
        self.total += 1
        if len(self.problems) < self.limit:
            self.problems.append(problem)

    def __bool__(self) -> bool:
        return self.total > 0


def parse_datetime(raw: str) -> tuple[str, datetime]:
    """Parse an ISO 8601 datetime that must carry an offset; return (text, UTC value)."""
    if not _DATETIME_RE.fullmatch(raw):
        if _DATETIME_NO_OFFSET_RE.fullmatch(raw):
            raise FieldProblem(f"datetime {raw!r} has no timezone offset (e.g. +10:00 or Z)")
        raise FieldProblem(f"{raw!r} is not a datetime like 2024-05-30T04:57:37+10:00")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as e:
        raise FieldProblem(f"{raw!r} is not a valid datetime ({e})") from e
    return raw, value.astimezone(UTC)


def parse_integer(raw: str) -> int:
    """Parse an integer (no decimals, no exponent)."""
    if not _INTEGER_RE.fullmatch(raw):
        raise FieldProblem(f"{raw[:40]!r} is not an integer (at most 19 digits)")
    value = int(raw)
    if not -_INT64 <= value < _INT64:
        raise FieldProblem(f"{raw} is outside the 64-bit integer range")
    return value


def parse_number(raw: str) -> float:
    """Parse a finite decimal number (plain ASCII notation, as Table Schema defines it)."""
    # float() alone would also accept "1_000", " 1 ", "infinity" and non-ASCII digits.
    if not _NUMBER_RE.fullmatch(raw):
        raise FieldProblem(f"{raw[:40]!r} is not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise FieldProblem(f"{raw!r} is not a finite number")
    return value


def parse_boolean(raw: str) -> bool:
    """Parse a Table Schema boolean."""
    try:
        return _BOOLEANS[raw]
    except KeyError as e:
        raise FieldProblem(f"{raw!r} is not a boolean (true or false)") from e


_PARSERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "integer": parse_integer,
    "number": parse_number,
    "boolean": parse_boolean,
    # Table Schema "any": no type check. (exifData "should" be JSON, but the official
    # example package itself carries non-JSON text there, so it is kept verbatim.)
    "any": str,
}


@dataclass(frozen=True)
class FieldSpec:
    """How one column is parsed and constrained."""

    name: str
    type: str
    required: bool = False
    enum: frozenset[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: re.Pattern[str] | None = None
    unique: bool = False

    def parse(self, raw: str) -> Any:
        """Convert raw CSV text (already known to be non-missing) to a typed value."""
        if self.type == "datetime":
            return parse_datetime(raw)
        value = _PARSERS[self.type](raw)
        if self.enum is not None and value not in self.enum:
            allowed = ", ".join(sorted(self.enum))
            raise FieldProblem(f"{raw!r} is not one of the allowed values ({allowed})")
        if self.pattern is not None and not self.pattern.fullmatch(raw):
            raise FieldProblem(f"{raw!r} does not match the required pattern")
        if self.minimum is not None and value < self.minimum:
            raise FieldProblem(f"{raw} is below the minimum {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise FieldProblem(f"{raw} is above the maximum {self.maximum:g}")
        return value


@dataclass(frozen=True)
class TableSpec:
    """A table: its fields, key, and the text values that mean 'missing'."""

    name: str
    fields: tuple[FieldSpec, ...]
    primary_key: str
    missing_values: frozenset[str] = frozenset({""})
    foreign_keys: tuple[tuple[str, str], ...] = ()  # (field, referenced table)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of all fields, in schema order."""
        return tuple(f.name for f in self.fields)

    def by_name(self) -> Mapping[str, FieldSpec]:
        """Fields keyed by name."""
        return {f.name: f for f in self.fields}


def _field_from_schema(raw: Mapping[str, Any]) -> FieldSpec:
    constraints = raw.get("constraints", {})
    pattern = constraints.get("pattern")
    enum = constraints.get("enum")
    return FieldSpec(
        name=raw["name"],
        type=raw["type"],
        required=bool(constraints.get("required", False)),
        enum=frozenset(enum) if enum else None,
        minimum=constraints.get("minimum"),
        maximum=constraints.get("maximum"),
        pattern=re.compile(pattern) if pattern else None,
        unique=bool(constraints.get("unique", False)),
    )


@cache
def camtrap_table(resource: str) -> TableSpec:
    """The Camtrap DP 1.0.2 table spec for ``deployments``, ``media`` or ``observations``."""
    schema = json.loads((SCHEMA_DIR / f"{resource}-table-schema.json").read_text("utf-8"))
    foreign = tuple(
        (fk["fields"], fk["reference"]["resource"]) for fk in schema.get("foreignKeys", [])
    )
    return TableSpec(
        name=resource,
        fields=tuple(_field_from_schema(f) for f in schema["fields"]),
        primary_key=schema["primaryKey"],
        missing_values=frozenset(schema.get("missingValues", [""])),
        foreign_keys=foreign,
    )


# --- Darwin Core -------------------------------------------------------------

_DWC_DATE_PART = (
    r"\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)?)?"
)
_DWC_DATE_RE = re.compile(rf"({_DWC_DATE_PART})(?:/({_DWC_DATE_PART}))?", re.ASCII)


def _dwc_bound(part: str, *, end: bool) -> datetime:
    """Earliest (or latest) UTC instant of a possibly partial ISO 8601 date."""
    if "T" in part:
        if not re.search(r"(?:Z|[+-]\d{2}:?\d{2})\Z", part):
            raise FieldProblem(f"eventDate {part!r} has a time but no timezone offset")
        return datetime.fromisoformat(part).astimezone(UTC)
    pieces = [int(p) for p in part.split("-")]
    year, month, day = pieces[0], (pieces[1] if len(pieces) > 1 else None), (
        pieces[2] if len(pieces) > 2 else None
    )
    # Date-only values have no offset; they are taken as whole UTC days.
    start = datetime(year, month or 1, day or 1, tzinfo=UTC)
    if not end:
        return start
    if day is not None:
        return start + timedelta(days=1) - timedelta(microseconds=1)
    if month is not None:
        nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        return nxt - timedelta(microseconds=1)
    return datetime(year + 1, 1, 1, tzinfo=UTC) - timedelta(microseconds=1)


def parse_event_date(raw: str) -> tuple[str, datetime, datetime]:
    """Parse a Darwin Core eventDate (date, datetime or interval); return text, start, end."""
    match = _DWC_DATE_RE.fullmatch(raw)
    if not match:
        raise FieldProblem(f"{raw!r} is not an ISO 8601 date, datetime or interval")
    try:
        start = _dwc_bound(match.group(1), end=False)
        end = _dwc_bound(match.group(2) or match.group(1), end=True)
    except ValueError as e:
        raise FieldProblem(f"{raw!r} is not a valid date ({e})") from e
    if end < start:
        raise FieldProblem(f"interval {raw!r} ends before it starts")
    return raw, start, end


BASIS_OF_RECORD = frozenset({
    "HumanObservation", "MachineObservation", "PreservedSpecimen", "FossilSpecimen",
    "LivingSpecimen", "MaterialSample", "MaterialEntity", "MaterialCitation", "Occurrence",
})

DWC_EVENT = TableSpec(
    name="event",
    primary_key="eventID",
    fields=(
        FieldSpec("eventID", "string", required=True, unique=True),
        FieldSpec("parentEventID", "string"),
        FieldSpec("eventDate", "eventDate", required=True),
        FieldSpec("samplingProtocol", "string"),
        FieldSpec("locationID", "string"),
        FieldSpec("locality", "string"),
        FieldSpec("countryCode", "string", pattern=re.compile(r"[A-Z]{2}")),
        FieldSpec("decimalLatitude", "number", minimum=-90, maximum=90),
        FieldSpec("decimalLongitude", "number", minimum=-180, maximum=180),
        FieldSpec("coordinateUncertaintyInMeters", "number", minimum=1),
        # Numeric, but not bounded: published data (A Rocha Kenya) carries negative
        # durations here, and Corridor does not compute with this term.
        FieldSpec("sampleSizeValue", "number"),
        FieldSpec("individualCount", "integer", minimum=0),
    ),
)

DWC_OCCURRENCE = TableSpec(
    name="occurrence",
    primary_key="occurrenceID",
    foreign_keys=(("eventID", "event"),),
    fields=(
        FieldSpec("occurrenceID", "string", required=True, unique=True),
        FieldSpec("eventID", "string", required=True),
        FieldSpec("basisOfRecord", "string", required=True, enum=BASIS_OF_RECORD),
        FieldSpec("scientificName", "string", required=True),
        FieldSpec("taxonRank", "string"),
        FieldSpec("individualCount", "integer", minimum=0),
        FieldSpec("occurrenceStatus", "string", enum=frozenset({"present", "absent"})),
        FieldSpec("decimalLatitude", "number", minimum=-90, maximum=90),
        FieldSpec("decimalLongitude", "number", minimum=-180, maximum=180),
    ),
)

_TERM_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def check_header(
    spec: TableSpec, header: Sequence[str], file: str, log: ProblemLog, *, strict: bool
) -> bool:
    """Check a CSV header against a table spec; return False if rows cannot be read.

    ``strict`` (Camtrap DP) refuses columns the schema does not define; Darwin
    Core files choose their own terms, so there only malformed names are refused.
    """
    ok = True
    known = set(spec.field_names)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            log.add(Problem(file, 1, name, "column appears twice in the header"))
            ok = False
        seen.add(name)
        if strict and name not in known:
            log.add(Problem(file, 1, name, f"unknown column (not in the {spec.name} schema)"
                            + did_you_mean(name, known)))
            ok = False
        elif not strict and not _TERM_NAME_RE.fullmatch(name):
            log.add(Problem(file, 1, name, "column name is not a Darwin Core term name"))
            ok = False
    for f in spec.fields:
        if f.required and f.name not in seen:
            # A near miss in the header is the likely cause ("decimalLatitud").
            close = difflib.get_close_matches(f.name, sorted(seen - known), n=1)
            hint = f" (is {close[0]!r} meant to be {f.name!r}?)" if close else ""
            log.add(Problem(file, 1, f.name, "required column is missing" + hint))
            ok = False
    return ok


_PLAIN, _DATETIME, _EVENT_DATE = 0, 1, 2


class RowParser:
    """A table spec compiled for speed: one flat loop per row, no per-field generators.

    ``parse`` validates every field of the spec and returns the typed record
    (only the fields named in ``keep``), or ``None`` after logging every
    problem of the row. Datetime fields give their
    text under the field name and the UTC value under ``<field>_utc``; eventDate
    also gives ``eventDate_start_utc`` and ``eventDate_end_utc``.
    """

    def __init__(self, spec: TableSpec, keep: Iterable[str],
                 max_lengths: Mapping[str, int] | None = None) -> None:
        kept = set(keep)
        self.spec = spec
        #: Longest text each column stores (PostgreSQL refuses longer; SQLite would not).
        self.max_lengths = dict(max_lengths or {})
        self.missing = spec.missing_values
        self.plan: list[tuple[str, Callable[[str], Any] | None, bool, int]] = []
        self.dropped = frozenset(f.name for f in spec.fields if f.name not in kept)
        self.positions: list[int | None] = []
        for f in spec.fields:
            kind = {"datetime": _DATETIME, "eventDate": _EVENT_DATE}.get(f.type, _PLAIN)
            plain_string = (f.type in ("string", "any") and f.enum is None
                            and f.pattern is None)
            self.plan.append((f.name, None if plain_string else f.parse, f.required, kind))

    def bind(self, header: Sequence[str]) -> None:
        """Fix the column positions of a file's header (absent columns read as missing)."""
        index = {name: i for i, name in enumerate(header)}
        self.positions = [index.get(name) for name, *_ in self.plan]

    def parse(self, values: Sequence[str], file: str, line: int,
              log: ProblemLog) -> dict[str, Any] | None:
        """Validate and convert one CSV row (a list in the order of the bound header)."""
        out: dict[str, Any] = {}
        ok = True
        missing = self.missing
        for (name, convert, required, kind), pos in zip(self.plan, self.positions, strict=True):
            raw = None if pos is None else values[pos]
            if raw is None or raw in missing:
                if required:
                    log.add(Problem(file, line, name, "required value is missing"))
                    ok = False
                out[name] = None
                if kind == _DATETIME:
                    out[name + "_utc"] = None
                elif kind == _EVENT_DATE:
                    out[name + "_start_utc"] = out[name + "_end_utc"] = None
                continue
            if "\x00" in raw:  # PostgreSQL text cannot hold one, and no real value has one
                log.add(Problem(file, line, name, "holds a NUL character, which no field may "
                                                  "contain"))
                ok = False
                continue
            limit = self.max_lengths.get(name)
            if limit is not None and len(raw) > limit:
                log.add(Problem(file, line, name, f"is {len(raw):,} characters long; at most "
                                                  f"{limit:,} are stored"))
                ok = False
                continue
            if convert is None:
                out[name] = raw
                continue
            try:
                value: Any = parse_event_date(raw) if kind == _EVENT_DATE else convert(raw)
            except FieldProblem as e:
                log.add(Problem(file, line, name, str(e)))
                ok = False
                continue
            if kind == _DATETIME:
                out[name], out[name + "_utc"] = value
            elif kind == _EVENT_DATE:
                out[name], out[name + "_start_utc"], out[name + "_end_utc"] = value
            else:
                out[name] = value
        if not ok:
            return None
        for name in self.dropped:
            out.pop(name, None)
        return out
