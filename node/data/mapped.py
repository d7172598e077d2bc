"""Import a table in a partner's own format through a declarative mapping to Darwin Core.

Flyway partners keep their counts in national formats: four-letter species
codes, a colony name instead of coordinates, a yearly total per country. A
mapping (YAML, see ``docs/mapped-import.md`` and the shipped ones under
``node/data/mappings/``) says how one row of the source table becomes a
survey event and an occurrence:

* every Darwin Core term is a **template**: text with ``{column}``
  placeholders (``{_line}`` is the row's line number); a list of templates
  takes the first whose placeholders all have values;
* ``codes`` are lookup tables (a file of the same delivery, a key column and
  a value column) used as ``{column|codes_name}``: a value with no entry is a
  problem, never passed through;
* ``joins`` bring in another file's columns by a key (``{join.column}``),
  e.g. a colony's coordinates;
* ``report_empty`` names terms that may stay empty but are reported row by
  row (coordinates that resolve to nothing are listed, not guessed).

Rows that share an ``eventID`` are one event (their event terms must agree).
The mapped rows are written as Darwin Core ``events.csv`` and
``occurrences.csv`` and imported by the ordinary Darwin Core import, so every
check of it applies, all or nothing. Every problem of the mapping itself
(unknown column, unknown code, an unparseable count, conflicting event terms)
is named as *file, line, term: reason*, and any problem refuses the whole
import.
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corridor.errors import CorridorError
from corridor.yaml_files import YamlFileError, read_yaml_file
from node.data.validation import DWC_EVENT, DWC_OCCURRENCE, Problem, ProblemLog

__all__ = ["MAPPINGS", "MappedImport", "MappingError", "MappingSpec", "load_mapping",
           "map_files", "shipped_mapping"]

#: The mappings Corridor ships (by name: ``corridor node import mapped NAME FILES``).
MAPPINGS = Path(__file__).parent / "mappings"


def shipped_mapping(spec: str) -> Path:
    """``spec`` as a path, or the shipped mapping of that name.

    :raises MappingError: neither a file nor a shipped mapping.
    """
    path = Path(spec)
    if path.is_file():
        return path
    shipped = MAPPINGS / f"{spec}.yaml"
    if path.name == spec and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in MAPPINGS.glob("*.yaml")))
    raise MappingError(f"{spec}: no such mapping file, and not a shipped mapping ({names})")

_PLACEHOLDER = re.compile(r"\{([^{}|]+)(?:\|([^{}]+))?\}")
#: The Darwin Core terms a mapping may fill: the ones Corridor reads, and a few
#: that it keeps verbatim (``Occurrence.terms``).
_EVENT_TERMS = (*(f.name for f in DWC_EVENT.fields), "eventRemarks", "recordedBy")
_OCCURRENCE_TERMS = (*(f.name for f in DWC_OCCURRENCE.fields), "behavior", "occurrenceRemarks",
                     "vernacularName")
_KEYS = {"name", "title", "table", "event", "occurrence", "codes", "joins", "report_empty"}


class MappingError(CorridorError):
    """The mapping file itself is wrong (422): it names the key and what to write."""

    status = 422
    title = "Mapping refused"


@dataclass(frozen=True)
class MappingSpec:
    """A validated mapping: the table, the term templates, code lists and joins."""

    name: str
    title: str | None
    table: str
    event: Mapping[str, tuple[str, ...]]
    occurrence: Mapping[str, tuple[str, ...]]
    codes: Mapping[str, tuple[str, str, str]]  # name -> (file, key column, value column)
    joins: Mapping[str, tuple[str, str, str]]  # name -> (file, its key column, table column)
    report_empty: tuple[str, ...]

    def files(self) -> set[str]:
        """Every file the mapping reads."""
        return {self.table} | {f for f, _, _ in self.codes.values()} \
            | {f for f, _, _ in self.joins.values()}


@dataclass
class MappedImport:
    """The Darwin Core files a mapping produced, and what it reported."""

    events: Path
    occurrences: Path
    rows: int = 0
    reported: list[str] = field(default_factory=list)  # rows imported with an empty term


def _templates(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MappingError(f"{where}: give a template (text with {{column}} placeholders) or a "
                       "list of templates")


def _terms(raw: Any, allowed: Sequence[str], where: str, required: Sequence[str]
           ) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: a mapping of Darwin Core terms to templates")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise MappingError(f"{where}.{unknown[0]}: not a term Corridor imports here; "
                           f"known: {', '.join(allowed)}")
    missing = [t for t in required if t not in raw]
    if missing:
        raise MappingError(f"{where}: {missing[0]} is required")
    return {term: _templates(value, f"{where}.{term}") for term, value in raw.items()}


def _lookups(raw: Any, where: str, columns: tuple[str, str]) -> dict[str, tuple[str, str, str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: a mapping of names to {{file, {columns[0]}, "
                           f"{columns[1]}}}")
    out = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or set(spec) != {"file", *columns} or not all(
                isinstance(v, str) for v in spec.values()):
            raise MappingError(f"{where}.{name}: give exactly file, {columns[0]} and "
                               f"{columns[1]}")
        out[str(name)] = (spec["file"], spec[columns[0]], spec[columns[1]])
    return out


def load_mapping(path: Path) -> MappingSpec:
    """Read and check a mapping file.

    :raises MappingError: unreadable, not YAML, an unknown key or term, a
        missing required term, a placeholder naming an unknown code list.
    """
    try:
        raw = read_yaml_file(path)
    except YamlFileError as e:
        raise MappingError(str(e)) from e
    if not isinstance(raw, dict):
        raise MappingError(f"{path.name}: the mapping must be a YAML mapping")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise MappingError(f"{path.name}: unknown key {unknown[0]!r}; keys: "
                           + ", ".join(sorted(_KEYS)))
    for key in ("name", "table"):
        if not isinstance(raw.get(key), str):
            raise MappingError(f"{path.name}: {key} is required (text)")
    event = _terms(raw.get("event"), _EVENT_TERMS, "event", ("eventID", "eventDate"))
    occurrence = _terms(raw.get("occurrence"), _OCCURRENCE_TERMS, "occurrence",
                        ("occurrenceID", "basisOfRecord", "scientificName"))
    codes = _lookups(raw.get("codes"), "codes", ("key", "value"))
    joins = _lookups(raw.get("joins"), "joins", ("key", "by"))
    for where, terms in (("event", event), ("occurrence", occurrence)):
        for term, templates in terms.items():
            for template in templates:
                for _, code in _PLACEHOLDER.findall(template):
                    if code and code not in codes:
                        raise MappingError(f"{where}.{term}: code list {code!r} is not under "
                                           "codes")
    report = raw.get("report_empty", [])
    if not isinstance(report, list) or not all(t in event or t in occurrence for t in report):
        raise MappingError("report_empty: a list of terms the mapping fills")
    return MappingSpec(raw["name"], raw.get("title"), raw["table"], event, occurrence, codes,
                    joins, tuple(report))


def _read(files: Mapping[str, Path], name: str) -> tuple[list[str], list[dict[str, str]]]:
    if name not in files:
        raise MappingError(f"the mapping reads {name}, which is not among the files given "
                           f"({', '.join(sorted(files)) or 'none'})")
    try:
        with files[name].open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise MappingError(f"{name}: cannot read it as UTF-8 CSV ({e})") from e


class _Row:
    """One source row seen through the mapping: its columns, joins and code lists."""

    def __init__(self, values: Mapping[str, str], line: int,
                 joined: Mapping[str, Mapping[str, str] | None],
                 codes: Mapping[str, Mapping[str, str]]) -> None:
        self.values, self.line, self.joined, self.codes = values, line, joined, codes

    def lookup(self, name: str) -> str | None:
        if name == "_line":
            return str(self.line)
        if "." in name and name.split(".", 1)[0] in self.joined:
            join, column = name.split(".", 1)
            other = self.joined[join]
            return None if other is None else (other.get(column) or None)
        value = self.values.get(name)
        return value.strip() if value and value.strip() else None

    def render(self, templates: Sequence[str]) -> str | None:
        """The first template whose placeholders all have values (codes applied)."""
        for template in templates:
            missing = False

            def fill(match: re.Match[str]) -> str:
                nonlocal missing
                value = self.lookup(match.group(1))
                if value is None:
                    missing = True
                    return ""
                code = match.group(2)
                if code:
                    mapped = self.codes[code].get(value)
                    if mapped is None:
                        raise _Unknown(value, code)
                    return mapped
                return value

            text = _PLACEHOLDER.sub(fill, template)
            if not missing:
                return text
        return None


class _Unknown(Exception):
    def __init__(self, value: str, code: str) -> None:
        super().__init__(value, code)
        self.value, self.code = value, code


def map_files(mapping: MappingSpec, files: Sequence[Path], log: ProblemLog,
              work: Path | None = None) -> MappedImport:
    """Map the source table to Darwin Core files in ``work`` (a new temporary directory).

    Problems go to ``log`` (the caller refuses the import if there are any).

    :raises MappingError: a file the mapping needs is missing, or a column it
        names is in no file.
    """
    by_name = {p.name: p for p in files}
    header, rows = _read(by_name, mapping.table)
    codes: dict[str, dict[str, str]] = {}
    for name, (file, key, value) in mapping.codes.items():
        columns, table = _read(by_name, file)
        for column in (key, value):
            if column not in columns:
                raise MappingError(f"codes.{name}: {file} has no column {column!r}")
        codes[name] = {r[key].strip(): r[value].strip() for r in table if r.get(key)}
    joins: dict[str, dict[str, dict[str, str]]] = {}
    for name, (file, key, by) in mapping.joins.items():
        columns, table = _read(by_name, file)
        if key not in columns or by not in header:
            raise MappingError(f"joins.{name}: {file} needs column {key!r} and "
                               f"{mapping.table} column {by!r}")
        joins[name] = {r[key].strip(): r for r in table if r.get(key)}
    _check_columns(mapping, header, {n: by_name[f] for n, (f, _, _) in mapping.joins.items()})

    work = work or Path(tempfile.mkdtemp(prefix="corridor-mapped-"))
    result = MappedImport(work / "events.csv", work / "occurrences.csv")
    events: dict[str, tuple[int, dict[str, str]]] = {}
    occurrences: list[dict[str, str]] = []
    file = mapping.table
    for line, values in enumerate(rows, start=2):
        joined = {name: table.get((values.get(mapping.joins[name][2]) or "").strip())
                  for name, table in joins.items()}
        row = _Row(values, line, joined, codes)
        try:
            event = {t: row.render(tpl) or "" for t, tpl in mapping.event.items()}
            occurrence = {t: row.render(tpl) or "" for t, tpl in mapping.occurrence.items()}
        except _Unknown as e:
            log.add(Problem(file, line, e.code, f"{e.value!r} is not in the code list {e.code}"))
            continue
        wrong = _typed_problem(event, _EVENT_TYPES) or _typed_problem(occurrence,
                                                                       _OCCURRENCE_TYPES)
        if wrong is not None:
            log.add(Problem(file, line, wrong[0], wrong[1]))
            continue
        empty = [t for t, v in [*event.items(), *occurrence.items()]
                 if not v and t in mapping.report_empty]
        if empty:
            result.reported.append(f"{file}, line {line}: {' and '.join(empty)} resolve"
                                   f"{'s' if len(empty) == 1 else ''} to nothing (left empty, "
                                   "not guessed)")
        occurrence["eventID"] = event["eventID"]
        seen = events.get(event["eventID"])
        if seen is None:
            events[event["eventID"]] = (line, event)
        elif seen[1] != event:
            differs = next(t for t in event if event[t] != seen[1].get(t))
            log.add(Problem(file, line, differs,
                            f"event {event['eventID']!r} has {event[differs]!r} here and "
                            f"{seen[1].get(differs)!r} on line {seen[0]}"))
            continue
        occurrences.append(occurrence)
        result.rows += 1
    _write(result.events, _EVENT_TERMS, [e for _, e in events.values()])
    _write(result.occurrences, _OCCURRENCE_TERMS, occurrences)
    return result


_EVENT_TYPES = {f.name: f.type for f in DWC_EVENT.fields}
_OCCURRENCE_TYPES = {f.name: f.type for f in DWC_OCCURRENCE.fields}


def _typed_problem(terms: Mapping[str, str], types: Mapping[str, str]
                   ) -> tuple[str, str] | None:
    """(term, reason) of the first number or integer the row maps to text that is not one."""
    for term, value in terms.items():
        kind = types.get(term)
        if not value or kind not in ("integer", "number"):
            continue
        try:
            float(value) if kind == "number" else int(value)
        except ValueError:
            return term, f"{value!r} is not {'an integer' if kind == 'integer' else 'a number'}"
    return None


def _check_columns(mapping: MappingSpec, header: Sequence[str],
                   join_files: Mapping[str, Path]) -> None:
    """Every placeholder names a column of the table, ``_line``, or a joined file's column."""
    join_columns = {}
    for name, path in join_files.items():
        with path.open(encoding="utf-8-sig", newline="") as fh:
            join_columns[name] = set(next(csv.reader(fh), []))
    for where, terms in (("event", mapping.event), ("occurrence", mapping.occurrence)):
        for term, templates in terms.items():
            for template in templates:
                for column, _ in _PLACEHOLDER.findall(template):
                    join, _, other = column.partition(".")
                    if column == "_line" or column in header or (
                            other and other in join_columns.get(join, ())):
                        continue
                    raise MappingError(f"{where}.{term}: {{{column}}} is no column of "
                                       f"{mapping.table} ({', '.join(header)}) nor of a join")


def _write(path: Path, terms: Sequence[str], rows: Sequence[Mapping[str, str]]) -> None:
    used = [t for t in terms if any(r.get(t) for r in rows)] or list(terms[:1])
    for required in ("eventID", "eventDate", "occurrenceID", "basisOfRecord",
                     "scientificName"):
        if required in terms and required not in used:
            used.append(required)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, [t for t in terms if t in used], extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
