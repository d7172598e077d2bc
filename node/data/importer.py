"""All-or-nothing imports of Camtrap DP packages and Darwin Core event/occurrence files.

Rows are streamed: each file is read once, every row is validated against its
table spec, and valid rows are inserted in batches inside **one** transaction.
Any problem anywhere (header, value, duplicate key, dangling foreign key) turns
the import into a refusal: the transaction is rolled back, nothing is written,
and the caller gets the first problems in full plus the total
(DESIGN.md §2.5, §4). Memory is bounded by the key sets needed for uniqueness
and foreign-key checks, not by the file sizes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, String, Table, func, select, update

from corridor.db import BulkWriter, table_of
from corridor.errors import CorridorError
from corridor.wording import article, plural
from node.data.encodings import BadByte, bad_byte
from node.data.sources import CountingReader, PackageSource, SourceError
from node.data.validation import (
    CAMTRAP_RESOURCES,
    DWC_EVENT,
    DWC_OCCURRENCE,
    Problem,
    ProblemLog,
    RowParser,
    TableSpec,
    camtrap_table,
    check_header,
)
from node.models import (
    PROFILE_CAMTRAP,
    PROFILE_DWC_EVENT,
    Dataset,
    Deployment,
    Event,
    Individual,
    Media,
    Observation,
    Occurrence,
)

# Longest physical CSV line accepted (exifData JSON runs to a few kB).
MAX_LINE_CHARS = 1 << 20
# Largest package accepted by default (uncompressed); bounds the work a zip bomb can cause.
DEFAULT_MAX_IMPORT_BYTES = 20 * (1 << 30)
DATASET_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

ProgressCallback = Callable[[int], None]


class ImportRefused(CorridorError):
    """The input has problems; nothing was written."""

    status = 422
    title = "Import refused"

    def __init__(self, log: ProblemLog) -> None:
        super().__init__(f"import refused: {plural(log.total, 'problem')}")
        self.problems = list(log.problems)
        self.total = log.total


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote."""

    dataset_id: int
    name: str
    version: int
    profile: str
    counts: Mapping[str, int]


@dataclass
class _Summary:
    """Accumulates the coverage of a dataset while its rows stream past."""

    taxa: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None
    west: float | None = None
    south: float | None = None
    east: float | None = None
    north: float | None = None

    def add_time(self, start: datetime | None, end: datetime | None) -> None:
        if start is not None and (self.first is None or start < self.first):
            self.first = start
        if end is not None and (self.last is None or end > self.last):
            self.last = end

    def add_point(self, lat: float | None, lon: float | None) -> None:
        if lat is None or lon is None:
            return
        self.south = lat if self.south is None else min(self.south, lat)
        self.north = lat if self.north is None else max(self.north, lat)
        self.west = lon if self.west is None else min(self.west, lon)
        self.east = lon if self.east is None else max(self.east, lon)

    def apply(self, dataset: dict[str, Any]) -> None:
        dataset.update(
            taxa=sorted(self.taxa),
            temporal_start=self.first.date().isoformat() if self.first else None,
            temporal_end=self.last.date().isoformat() if self.last else None,
            bbox_west=self.west, bbox_south=self.south,
            bbox_east=self.east, bbox_north=self.north,
        )


def check_dataset_name(name: str) -> str:
    """Validate a dataset name (lower-case slug); raise SourceError with the rule."""
    if not DATASET_NAME_RE.fullmatch(name):
        raise SourceError(
            f"dataset name {name!r} must be 1-64 lower-case letters, digits, '-' or '_'"
        )
    return name


class _LineTooLong(Exception):
    pass


class _NotUTF8(Exception):
    def __init__(self, where: BadByte) -> None:
        super().__init__(where.message())
        self.where = where


_BOM = b"\xef\xbb\xbf"
_BLOCK = 1 << 16


def _utf8_lines(binary: IO[bytes]) -> Iterator[str]:
    """Physical lines of a UTF-8 stream, decoded a block of whole lines at a time.

    A byte that is not UTF-8 raises :class:`_NotUTF8` naming its own line and
    position (a buffered text reader would fail a whole block early, at the
    wrong line); a line of more than :data:`MAX_LINE_CHARS` raises
    :class:`_LineTooLong`, so one huge line cannot exhaust memory.
    """
    before = 0  # physical lines before the current block
    pending = b""
    first = True
    while True:
        chunk = binary.read(_BLOCK)
        data = pending + chunk
        if first:
            data, first = data.removeprefix(_BOM), False
        if not chunk:  # the end: what is left is the last line, without its newline
            if not data:
                return
            cut = len(data)
        else:
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # no line ends in this block yet
                if len(data) > 4 * MAX_LINE_CHARS:
                    raise _LineTooLong
                pending = data
                continue
        block, pending = data[:cut], data[cut:]
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as e:
            start = block.rfind(b"\n", 0, e.start) + 1
            end = block.find(b"\n", e.start)
            line = block[start:end if end >= 0 else len(block)]
            raise _NotUTF8(bad_byte(line, before + block.count(b"\n", 0, start) + 1,
                                    UnicodeDecodeError("utf-8", line, e.start - start,
                                                       e.end - start, e.reason))) from None
        for line_text in text.splitlines(keepends=True):
            if len(line_text) > MAX_LINE_CHARS:
                raise _LineTooLong
            yield line_text
        before += block.count(b"\n")
        if not chunk:
            return


def _csv_rows(
    stream: IO[bytes], file: str, log: ProblemLog, on_bytes: ProgressCallback | None,
    digest: Any = None,
) -> Iterator[tuple[int, list[str], list[str]]]:
    """Yield (line, header, values) from a UTF-8 CSV stream; decoding problems are logged.

    Every byte read is fed to ``digest`` (when given), so the file is hashed in
    the same single pass that validates it. A file that is not UTF-8 stops
    the import there: nothing after the bad byte was read right, so checking
    on would only bury it under follow-on errors.

    :raises ImportRefused: the file is not UTF-8 (with every problem so far).
    """
    counting = CountingReader(stream, on_bytes, digest)
    reader = csv.reader(_utf8_lines(io.BufferedReader(counting, _BLOCK)))
    try:
        header = next(reader, [])
        if not header:
            log.add(Problem(file, None, None, "file is empty (no header row)"))
            return
        for values in reader:
            if values:  # csv.DictReader's convention: blank lines are skipped
                yield reader.line_num, header, values
        counting.drain()
    except _NotUTF8 as e:
        log.add(Problem(file, e.where.line, None, e.where.message()))
        raise ImportRefused(log) from None
    except _LineTooLong:
        log.add(Problem(file, reader.line_num + 1, None,
                        f"line longer than {MAX_LINE_CHARS:,} characters"))
    except csv.Error as e:
        log.add(Problem(file, reader.line_num, None, f"malformed CSV: {e}"))


def _shape_ok(values: list[str], header: list[str], file: str, line: int,
              log: ProblemLog) -> bool:
    if len(values) != len(header):
        log.add(Problem(file, line, None,
                        f"row has {len(values)} values, header has {len(header)}"))
        return False
    return True


class _TableLoader:
    """Validates one table's rows and inserts the good ones in batches."""

    def __init__(self, conn: Connection, table: Table, spec: TableSpec, dataset_id: int,
                 log: ProblemLog, batch_rows: int) -> None:
        self.conn = conn
        self.table = table
        self.spec = spec
        self.columns = {c.name for c in table.columns}
        self.dataset_id = dataset_id
        self.log = log
        self.batch_rows = batch_rows
        self.batch: list[dict[str, Any]] = []
        self.keys: set[str] = set()
        self.count = 0
        self.parser = RowParser(spec, self.columns, {
            c.name: c.type.length for c in table.columns
            if isinstance(c.type, String) and c.type.length})
        self.writer = BulkWriter(conn, table)

    def bind(self, header: list[str]) -> None:
        """Read rows of this header from now on."""
        self.parser.bind(header)
        self.pk_pos = header.index(self.spec.primary_key) if self.spec.primary_key in header \
            else None

    def parse(self, row: list[str], file: str, line: int) -> dict[str, Any] | None:
        """Validate one row; return the typed record, or None if it has problems."""
        pk = self.spec.primary_key
        key = None if self.pk_pos is None else row[self.pk_pos]
        if key:
            if key in self.keys:
                self.log.add(Problem(file, line, pk, f"duplicate {pk} {key!r}"))
                self.parser.parse(row, file, line, self.log)  # report its other problems too
                return None
            self.keys.add(key)
        return self.parser.parse(row, file, line, self.log)

    def add(self, record: dict[str, Any]) -> None:
        """Queue a valid record; nothing is inserted once any problem is known."""
        self.count += 1
        if self.log:
            self.batch.clear()
            return
        record["dataset_id"] = self.dataset_id
        record["source_row"] = self.count
        self.batch.append(record)
        if len(self.batch) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        """Insert queued records."""
        if self.batch and not self.log:
            self.writer.insert(self.batch)
        self.batch.clear()


def _check_reference(record: Mapping[str, Any], field_name: str, keys: set[str], target: str,
                     file: str, line: int, log: ProblemLog) -> bool:
    value = record.get(field_name)
    if value is not None and value not in keys:
        log.add(Problem(file, line, field_name,
                        f"{value!r} is not {article(target)} {target} in this dataset"))
        return False
    return True


def _check_order(record: Mapping[str, Any], start: str, end: str, file: str, line: int,
                 log: ProblemLog) -> bool:
    a, b = record.get(f"{start}_utc"), record.get(f"{end}_utc")
    if a is not None and b is not None and b < a:
        log.add(Problem(file, line, end, f"{end} is before {start}"))
        return False
    return True


class Importer:
    """Imports datasets into one node database."""

    def __init__(self, engine: Engine, *, batch_rows: int = 5_000, max_problems: int = 50,
                 max_bytes: int = DEFAULT_MAX_IMPORT_BYTES,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.batch_rows = batch_rows
        self.max_problems = max_problems
        self.max_bytes = max_bytes
        self.clock = clock

    def _check_size(self, total: int, on_total: ProgressCallback | None) -> None:
        if total > self.max_bytes:
            raise SourceError(f"input is {total:,} bytes uncompressed, more than the "
                              f"{self.max_bytes:,} bytes this node accepts in one import")
        if on_total is not None:
            on_total(total)

    # -- shared --------------------------------------------------------------

    def _new_version(self, conn: Connection, values: dict[str, Any]) -> int:
        table = table_of(Dataset)
        latest = conn.scalar(
            select(func.max(table.c.version)).where(table.c.name == values["name"]))
        values["version"] = (latest or 0) + 1
        result = conn.execute(table.insert().values(**values, current=False))
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def _finish(self, conn: Connection, dataset_id: int, name: str, values: dict[str, Any]) -> None:
        table = table_of(Dataset)
        conn.execute(update(table).where(table.c.name == name).values(current=False))
        conn.execute(update(table).where(table.c.id == dataset_id).values(**values, current=True))

    # -- Camtrap DP ----------------------------------------------------------

    def import_camtrap(self, location: Path, *, name: str | None = None,
                       on_bytes: ProgressCallback | None = None,
                       on_total: ProgressCallback | None = None) -> ImportResult:
        """Import a Camtrap DP package (directory or zip) as a new dataset version.

        Raises:
            SourceError: the package cannot be read at all.
            ImportRefused: rows or headers have problems; nothing was written.
        """
        source = PackageSource(location)
        try:
            return self._import_camtrap(source, name, on_bytes, on_total)
        finally:
            source.close()

    def _import_camtrap(self, source: PackageSource, name: str | None,
                        on_bytes: ProgressCallback | None,
                        on_total: ProgressCallback | None) -> ImportResult:
        descriptor, raw_descriptor = source.descriptor()
        resource_list = descriptor.get("resources")
        if not isinstance(resource_list, list):
            raise SourceError("datapackage.json: 'resources' must be a list")
        # Only resources named by a string can be one of ours (a list as a name is not).
        resources = {r["name"]: r for r in resource_list
                     if isinstance(r, dict) and isinstance(r.get("name"), str)}
        paths: dict[str, str] = {}
        for resource in CAMTRAP_RESOURCES:
            path = resources.get(resource, {}).get("path")
            if not isinstance(path, str):
                raise SourceError(
                    f"datapackage.json: resource {resource!r} with a 'path' is required"
                )
            paths[resource] = path
        name = check_dataset_name(name or str(descriptor.get("name") or ""))
        individuals = resources.get("individuals")
        members = [*paths.values()]
        if individuals and isinstance(individuals.get("path"), str):
            members.append(individuals["path"])
        self._check_size(sum(source.size(m) for m in members), on_total)
        meta = _camtrap_metadata(descriptor)
        digest = hashlib.sha256(b"datapackage.json\0" + raw_descriptor)
        log = ProblemLog(self.max_problems)
        summary = _Summary()

        with self.engine.connect() as conn, conn.begin() as tx:
            dataset_id = self._new_version(conn, {
                **meta, "name": name, "profile": PROFILE_CAMTRAP, "source_sha256": "",
                "imported_at": self.clock(), "counts": {},
            })
            loaders = {
                "deployments": _TableLoader(conn, table_of(Deployment),
                                            camtrap_table("deployments"), dataset_id, log,
                                            self.batch_rows),
                "media": _TableLoader(conn, table_of(Media), camtrap_table("media"),
                                      dataset_id, log, self.batch_rows),
                "observations": _TableLoader(conn, table_of(Observation),
                                             camtrap_table("observations"), dataset_id, log,
                                             self.batch_rows),
            }
            for resource in CAMTRAP_RESOURCES:
                self._load_camtrap_resource(source, paths[resource], loaders, resource, log,
                                            summary, on_bytes, digest)
            n_individuals = self._load_individuals(conn, source, individuals, dataset_id, log,
                                                   on_bytes, digest)
            if log:
                tx.rollback()
                raise ImportRefused(log)
            counts = {r: loaders[r].count for r in CAMTRAP_RESOURCES}
            counts["individuals"] = n_individuals
            values: dict[str, Any] = {"counts": counts, "source_sha256": digest.hexdigest()}
            summary.apply(values)
            self._finish(conn, dataset_id, name, values)
            version = conn.scalar(select(table_of(Dataset).c.version)
                                  .where(table_of(Dataset).c.id == dataset_id))
            tx.commit()
        return ImportResult(dataset_id, name, int(version or 0), PROFILE_CAMTRAP, counts)

    def _load_camtrap_resource(self, source: PackageSource, path: str,
                               loaders: Mapping[str, _TableLoader], resource: str,
                               log: ProblemLog, summary: _Summary,
                               on_bytes: ProgressCallback | None, digest: Any) -> None:
        loader = loaders[resource]
        file = path
        digest.update(path.encode() + b"\0")
        with source.open(path) as stream:
            header_checked = False
            for line, header, row in _csv_rows(stream, file, log, on_bytes, digest):
                if not header_checked:
                    header_checked = True
                    if not check_header(loader.spec, header, file, log, strict=True):
                        return
                    loader.bind(header)
                if not _shape_ok(row, header, file, line, log):
                    continue
                record = loader.parse(row, file, line)
                if record is None:
                    continue
                ok = True
                if resource == "deployments":
                    ok = _check_order(record, "deploymentStart", "deploymentEnd", file, line, log)
                    summary.add_point(record["latitude"], record["longitude"])
                else:
                    ok = _check_reference(record, "deploymentID", loaders["deployments"].keys,
                                          "deploymentID", file, line, log)
                if resource == "observations":
                    ok = _check_reference(record, "mediaID", loaders["media"].keys, "mediaID",
                                          file, line, log) and ok
                    ok = _check_order(record, "eventStart", "eventEnd", file, line, log) and ok
                    summary.add_time(record["eventStart_utc"], record["eventEnd_utc"])
                    if record["observationType"] == "animal" and record["scientificName"]:
                        summary.taxa.add(record["scientificName"])
                if ok:
                    loader.add(record)
            loader.flush()

    def _load_individuals(self, conn: Connection, source: PackageSource,
                          resource: Mapping[str, Any] | None, dataset_id: int,
                          log: ProblemLog, on_bytes: ProgressCallback | None,
                          digest: Any) -> int:
        """Load the optional ``individuals`` resource (inline ``data`` or a CSV ``path``)."""
        if not resource:
            return 0
        writer = BulkWriter(conn, table_of(Individual))
        seen: set[str] = set()
        batch: list[dict[str, Any]] = []
        for file, line, row in _individual_rows(source, resource, log, on_bytes, digest):
            ident = row.get("individualID", row.get("id"))
            if ident in (None, ""):
                log.add(Problem(file, line, "individualID", "required value is missing"))
                continue
            ident = str(ident)
            if ident in seen:
                log.add(Problem(file, line, "individualID", f"duplicate individualID {ident!r}"))
                continue
            seen.add(ident)
            name = row.get("scientificName")
            if log:
                continue
            batch.append({"dataset_id": dataset_id, "individualID": ident,
                          "scientificName": str(name) if name else None, "record": row})
            if len(batch) >= self.batch_rows:
                writer.insert(batch)
                batch.clear()
        if batch and not log:
            writer.insert(batch)
        return len(seen)

    # -- Darwin Core -----------------------------------------------------------

    def import_dwc(self, events: Path, occurrences: Path, *, name: str,
                   title: str | None = None, on_bytes: ProgressCallback | None = None,
                   on_total: ProgressCallback | None = None) -> ImportResult:
        """Import a Darwin Core sampling-event dataset (event core + occurrences).

        Raises:
            SourceError: a file is missing or the name is invalid.
            ImportRefused: rows or headers have problems; nothing was written.
        """
        name = check_dataset_name(name)
        for path in (events, occurrences):
            if not path.is_file():
                raise SourceError(f"{path}: no such file")
        self._check_size(events.stat().st_size + occurrences.stat().st_size, on_total)
        digest = hashlib.sha256()
        log = ProblemLog(self.max_problems)
        summary = _Summary()
        columns: dict[str, list[str]] = {}
        licences: set[str] = set()

        with self.engine.connect() as conn, conn.begin() as tx:
            dataset_id = self._new_version(conn, {
                "name": name, "profile": PROFILE_DWC_EVENT, "title": title or name,
                "source_sha256": "", "imported_at": self.clock(), "counts": {},
                "contributors": [], "licenses": [], "descriptor": {},
            })
            event_loader = _TableLoader(conn, table_of(Event), DWC_EVENT, dataset_id, log,
                                        self.batch_rows)
            occ_loader = _TableLoader(conn, table_of(Occurrence), DWC_OCCURRENCE, dataset_id,
                                      log, self.batch_rows)
            for path, loader in ((events, event_loader), (occurrences, occ_loader)):
                file = path.name
                digest.update(file.encode() + b"\0")
                with path.open("rb") as stream:
                    first = True
                    for line, header, row in _csv_rows(stream, file, log, on_bytes, digest):
                        if first:
                            first = False
                            columns[loader.spec.name] = header
                            if not check_header(loader.spec, header, file, log, strict=False):
                                break
                            loader.bind(header)
                            licence_pos = header.index("license") if "license" in header else None
                        if not _shape_ok(row, header, file, line, log):
                            continue
                        record = loader.parse(row, file, line)
                        if record is None:
                            continue
                        if loader is event_loader:
                            summary.add_point(record["decimalLatitude"],
                                              record["decimalLongitude"])
                            summary.add_time(record["eventDate_start_utc"],
                                             record["eventDate_end_utc"])
                            if licence_pos is not None and row[licence_pos]:
                                licences.add(row[licence_pos])
                        else:
                            if not _check_reference(record, "eventID", event_loader.keys,
                                                    "eventID of events", file, line, log):
                                continue
                            summary.taxa.add(record["scientificName"])
                        record["terms"] = dict(zip(header, row, strict=True))
                        loader.add(record)
                    loader.flush()
            if log:
                tx.rollback()
                raise ImportRefused(log)
            counts = {"events": event_loader.count, "occurrences": occ_loader.count}
            values: dict[str, Any] = {
                "counts": counts, "descriptor": {"columns": columns},
                "source_sha256": digest.hexdigest(),
                "licenses": [{"path": lic} for lic in sorted(licences)],
            }
            summary.apply(values)
            self._finish(conn, dataset_id, name, values)
            version = conn.scalar(select(table_of(Dataset).c.version)
                                  .where(table_of(Dataset).c.id == dataset_id))
            tx.commit()
        return ImportResult(dataset_id, name, int(version or 0), PROFILE_DWC_EVENT, counts)


def _individual_rows(source: PackageSource, resource: Mapping[str, Any], log: ProblemLog,
                     on_bytes: ProgressCallback | None, digest: Any,
                     ) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Rows of the individuals resource as dicts, streamed; shape problems are logged."""
    data = resource.get("data")
    if isinstance(data, list):
        for i, row in enumerate(data):
            if isinstance(row, dict):
                yield "individuals", i + 1, row
            else:
                log.add(Problem("individuals", i + 1, None, "individual is not an object"))
        return
    path = resource.get("path")
    if not isinstance(path, str):
        return
    digest.update(path.encode() + b"\0")
    with source.open(path) as stream:
        first = True
        for line, header, values in _csv_rows(stream, path, log, on_bytes, digest):
            if first and not {"individualID", "id"} & set(header):
                log.add(Problem(path, 1, "individualID", "required column is missing"))
                return
            first = False
            if _shape_ok(values, header, path, line, log):
                yield path, line, dict(zip(header, values, strict=True))


def _camtrap_metadata(descriptor: Mapping[str, Any]) -> dict[str, Any]:
    """Dataset-table columns taken from a Camtrap DP descriptor (inline data dropped)."""
    kept = {k: v for k, v in descriptor.items() if k != "resources"}
    kept["resources"] = [
        {k: v for k, v in r.items() if k != "data"} if isinstance(r, dict) else r
        for r in descriptor.get("resources", [])
    ]
    for key in ("contributors", "licenses"):
        if not isinstance(descriptor.get(key) or [], list):
            raise SourceError(f"datapackage.json: {key!r} must be a list")
    description = descriptor.get("description")
    return {
        "title": str(descriptor.get("title") or descriptor.get("name") or "untitled"),
        "description": str(description) if description is not None else None,
        "contributors": list(descriptor.get("contributors") or []),
        "licenses": list(descriptor.get("licenses") or []),
        "package_version": str(descriptor["version"]) if descriptor.get("version") else None,
        "descriptor": kept,
    }
