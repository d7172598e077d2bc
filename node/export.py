"""Policy-filtered, signed data packages, streamed (DESIGN.md §7, §8).

The plan compiled by :mod:`policies.engine` is applied here, table by table:

* ``deployments`` (a few thousand rows) are read in Python: cameras that
  recorded a category-1 taxon are dropped with all their rows; the others get
  the coarsest rounding any sensitive taxon recorded there requires
  (generalization follows the camera), with ``coordinateUncertainty`` widened,
  using exactly :mod:`policies.transforms`.
* ``media`` and ``observations`` (millions of rows) are filtered, projected
  and time-coarsened inside the database query; Python only pseudonymizes the
  individual IDs and hands the rows to the C ``csv`` writer in batches, which
  stream into the zip. Memory stays flat in the number of rows.

Camtrap DP keeps coordinates only in ``deployments``, so no observation or
media row can carry a finer location than its camera's.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol

from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    and_,
    case,
    func,
    literal,
    not_,
    null,
    or_,
    select,
)

from corridor.db import stream_tuples, table_of
from corridor.package_writer import PackageWriter
from crypto.keys import SigningKey
from crypto.package import content_digest
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
from node.validation import camtrap_table
from policies.engine import TIME_FIELDS, Plan
from policies.transforms import (
    coarsen_event_date,
    pseudonym,
    round_coordinate,
    widened_uncertainty,
)

CAMTRAP_RESOURCES = ("deployments", "media", "observations", "individuals")
WITHHELD = "withheld"  # placeholder for a required text field the policy withholds
CAMTRAP_SCHEMA = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/{}-table-schema.json"
BATCH_ROWS = 10_000


class ByteSink(Protocol):
    """Where CSV bytes go (a zip member stream)."""

    def write(self, data: bytes, /) -> Any:
        """Accept bytes."""


class ExportError(Exception):
    """The dataset cannot be exported as asked (the message says why)."""


@dataclass(frozen=True)
class Cursor:
    """Where an incremental export resumes.

    It records the dataset version, the last observation and media rows sent,
    and the embargo cutoffs that held rows back, so the next export sends the
    new rows *and* the rows those embargoes have released since: nothing is
    skipped and nothing is sent twice.
    """

    version: int
    observations: int
    media: int
    cutoffs: Mapping[str, datetime] = field(default_factory=dict)
    media_cutoff: datetime | None = None

    def encode(self) -> str:
        """Opaque, URL-safe text."""
        raw = json.dumps({
            "v": self.version, "o": self.observations, "m": self.media,
            "c": {k: v.isoformat() for k, v in sorted(self.cutoffs.items())},
            "mc": self.media_cutoff.isoformat() if self.media_cutoff else None,
        }, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor from a previous package.

        Raises:
            ExportError: not a cursor this node issued.
        """
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            return cls(int(raw["v"]), int(raw["o"]), int(raw["m"]),
                       {k: datetime.fromisoformat(v) for k, v in raw["c"].items()},
                       datetime.fromisoformat(raw["mc"]) if raw["mc"] else None)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ExportError(f"{text[:40]!r} is not a valid export cursor") from e


@dataclass
class ExportResult:
    """What a package contains (also written into its datapackage.json)."""

    rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    cursor: str = ""
    descriptor_sha256: str = ""
    plan_digest: str = ""
    content_sha256: str = ""


#: Called once every resource is written and before the descriptor is signed,
#: with the result so far (rows, cursor, ``content_sha256``); returns properties
#: to add to the descriptor's ``corridor`` object (the provider's log index of
#: the package). If it raises, the package is abandoned unsigned.
Seal = Callable[[ExportResult], Mapping[str, Any]]


def _stored_names(engine: Engine, dataset_id: int) -> list[str]:
    """The distinct scientific names as written in the dataset's observations."""
    obs = table_of(Observation)
    with engine.connect() as conn:
        return sorted(conn.scalars(select(obs.c.scientificName).distinct().where(
            obs.c.dataset_id == dataset_id, obs.c.scientificName.is_not(None))))


def _camera_taxa(engine: Engine, dataset_id: int, taxa: Iterable[str]) -> dict[str, set[str]]:
    """deploymentID -> the given taxa (stored names) ever recorded at that camera."""
    names = sorted(set(taxa))
    if not names:
        return {}
    obs = table_of(Observation)
    query = (select(obs.c.deploymentID, obs.c.scientificName)
             .where(obs.c.dataset_id == dataset_id, obs.c.scientificName.in_(names))
             .group_by(obs.c.deploymentID, obs.c.scientificName))
    found: dict[str, set[str]] = {}
    with engine.connect() as conn:
        for deployment, taxon in conn.execute(query):
            found.setdefault(deployment, set()).add(taxon)
    return found


def _coarsened(column: Column[Any], unit: str | None) -> ColumnElement[Any]:
    """SQL for :func:`policies.transforms.coarsen_timestamp` on ISO text with an offset."""
    if unit is None:
        return column
    keep = 10 if unit == "day" else 7
    middle = "T00:00:00" if unit == "day" else "-01T00:00:00"
    length = func.length(column)
    offset = case((func.substr(column, length) == "Z", literal("Z")),
                  (func.substr(column, length - 2, 1) == ":", func.substr(column, length - 5)),
                  else_=func.substr(column, length - 4))
    return case((column.is_(None), null()),
                else_=func.substr(column, 1, keep) + literal(middle) + offset)


def _boolean_text(column: Column[Any]) -> ColumnElement[Any]:
    return case((column.is_(None), null()), (column.is_(True), literal("true")),
                else_=literal("false"))


class CamtrapExporter:
    """Writes one Camtrap DP dataset as a signed, policy-filtered package."""

    def __init__(self, engine: Engine, dataset: Dataset, plan: Plan, *, provider: str,
                 key: SigningKey, now: datetime, recipient: str | None = None,
                 agreement: str | None = None, since: str | None = None) -> None:
        if dataset.profile != PROFILE_CAMTRAP:
            raise ExportError(f"{dataset.name} is a {dataset.profile} dataset")
        if plan.aggregate_only:
            raise ExportError(f"tier {plan.tier!r} is aggregate-only: no rows can be exported")
        self.engine, self.dataset, self.plan = engine, dataset, plan
        self.provider, self.key, self.now = provider, key, now
        self.recipient, self.agreement = recipient, agreement
        self.since = Cursor.decode(since) if since else None
        if self.since is not None and self.since.version != dataset.version:
            self.since = None  # re-imported since: restart from the beginning (documented)
        # The plan speaks of taxa (any spelling, synonyms); the SQL needs the names as stored.
        names = _stored_names(engine, dataset.id)
        self.drop_names = [n for n in names if plan.is_dropped(n)]
        self.taxa_names = None if plan.taxa is None else [n for n in names if plan.in_taxa(n)]
        self.embargo_names = {n: c for n in names if (c := plan.embargo_cutoff(n)) is not None}
        self.sensitive_names = [n for n in names
                                if plan.precision_of(n) is not None or plan.is_dropped(n)]

    # -- deployments --------------------------------------------------------------

    def _deployments(self) -> tuple[list[dict[str, Any]], set[str], dict[str, float]]:
        """(exported rows, cameras left out, camera id -> precision applied).

        Generalization follows the camera: a camera that ever recorded a
        sensitive taxon is rounded for all its rows, whatever this export's
        filters keep. The area filter tests the released coordinates, so box
        edges cannot pin a generalized camera down.
        """
        plan = self.plan
        recorded = _camera_taxa(self.engine, self.dataset.id, self.sensitive_names)
        table = table_of(Deployment)
        rows, left_out, precisions = [], set(), {}
        spec = camtrap_table("deployments")
        withheld = plan.withheld.get("deployments", frozenset())
        with self.engine.connect() as conn:
            query = select(table).where(table.c.dataset_id == self.dataset.id) \
                .order_by(table.c.source_row)
            for record in conn.execute(query).mappings():
                camera = record["deploymentID"]
                row = {f.name: record[f.name] for f in spec.fields}
                precision = plan.deployment_precision(recorded.get(camera, set()))
                if precision is not None:
                    precisions[camera] = precision
                    row["latitude"] = round_coordinate(record["latitude"], precision)
                    row["longitude"] = round_coordinate(record["longitude"], precision)
                    row["coordinateUncertainty"] = widened_uncertainty(
                        record["coordinateUncertainty"], precision, row["latitude"])
                if plan.bbox is not None and not _inside(plan.bbox, row["latitude"],
                                                         row["longitude"]):
                    left_out.add(camera)
                    continue
                for name in withheld:
                    row[name] = None
                for name in ("timestampIssues", "baitUse"):
                    if row[name] is not None:
                        row[name] = "true" if row[name] else "false"
                rows.append(row)
        return rows, left_out, precisions

    # -- filters shared by media and observations -------------------------------

    def _embargo_clause(self, taxon: Column[Any], start: Column[Any]) -> ColumnElement[bool]:
        """Rows of embargoed taxa newer than their cutoff are out."""
        clauses = [and_(taxon == name, start > cutoff)
                   for name, cutoff in sorted(self.embargo_names.items())]
        if not clauses:
            return literal(True)
        # "taxon IS NULL OR": NOT(NULL = 'x' AND ...) is NULL in SQL, which would silently
        # drop every row without a scientific name (blanks, people, vehicles).
        return or_(taxon.is_(None), not_(or_(*clauses)))

    def _observation_filter(self, dropped: set[str]) -> list[ColumnElement[bool]]:
        plan, obs = self.plan, table_of(Observation)
        where: list[ColumnElement[bool]] = [obs.c.dataset_id == self.dataset.id]
        if dropped:
            where.append(obs.c.deploymentID.not_in(sorted(dropped)))
        if self.drop_names:
            where.append(or_(obs.c.scientificName.is_(None),
                             obs.c.scientificName.not_in(self.drop_names)))
        if self.taxa_names is not None:
            where.append(obs.c.scientificName.in_(self.taxa_names))
        if plan.time_from is not None:
            where.append(obs.c.eventStart_utc >= plan.time_from)
        if plan.time_to is not None:
            where.append(obs.c.eventStart_utc < plan.time_to)
        where.append(self._embargo_clause(obs.c.scientificName, obs.c.eventStart_utc))
        return where

    # -- streaming tables ------------------------------------------------------------

    def _stream_rows(self, query: Any, out: ByteSink, header: Sequence[str],
                     pseudonym_index: int | None = None) -> int:
        """Run ``query`` and write its rows as CSV into ``out``; return the row count."""
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(header)
        key = self.plan.pseudonym_key if self.plan.pseudonymize else None
        # Few animals, many rows: compute each pseudonym once per export.
        pseudonyms: dict[str, str] = {}
        count = 0
        with self.engine.connect() as conn:
            for batch in stream_tuples(conn, query, BATCH_ROWS):
                rows: Sequence[Sequence[Any]] = batch
                if pseudonym_index is not None and key is not None:
                    i = pseudonym_index
                    rows = [row if row[i] is None else
                            (*row[:i], pseudonyms.get(row[i]) or pseudonyms.setdefault(
                                row[i], pseudonym(key, row[i])), *row[i + 1:])
                            for row in batch]
                writer.writerows(rows)
                count += len(batch)
                out.write(text.getvalue().encode("utf-8"))
                text.seek(0)
                text.truncate()
        out.write(text.getvalue().encode("utf-8"))
        return count

    def _select(self, table: Any, resource: str) -> list[ColumnElement[Any]]:
        """The projected columns of a streamed table, in schema order."""
        spec = camtrap_table(resource)
        withheld = self.plan.withheld.get(resource, frozenset())
        coarsen = set(TIME_FIELDS.get(resource, ())) if self.plan.coarsen_time else set()
        columns: list[ColumnElement[Any]] = []
        for f in spec.fields:
            column = table.c[f.name]
            if f.name in withheld:
                # Required text fields keep a placeholder so the package stays valid Camtrap DP.
                placeholder = literal(WITHHELD) if f.required and f.type == "string" else null()
                columns.append(placeholder.label(f.name))
            elif f.name in coarsen:
                columns.append(_coarsened(column, self.plan.coarsen_time).label(f.name))
            elif f.type == "boolean":
                columns.append(_boolean_text(column).label(f.name))
            else:
                columns.append(column)
        return columns

    def _observations(self, out: ByteSink, dropped: set[str]) -> tuple[int, int]:
        obs = table_of(Observation)
        where = self._observation_filter(dropped)
        if self.since is not None:
            where.append(or_(obs.c.source_row > self.since.observations,
                             self._released_since(obs)))
        query = select(*self._select(obs, "observations")).where(*where) \
            .order_by(obs.c.source_row)
        names = [f.name for f in camtrap_table("observations").fields]
        count = self._stream_rows(query, out, names, names.index("individualID"))
        with self.engine.connect() as conn:
            last = conn.scalar(select(func.max(obs.c.source_row))
                               .where(obs.c.dataset_id == self.dataset.id))
        return count, int(last or 0)

    def _released_since(self, obs: Any) -> ColumnElement[bool]:
        """Rows an embargo held back at the previous export but releases now."""
        assert self.since is not None
        clauses = []
        for name, cutoff in sorted(self.embargo_names.items()):
            previous = self.since.cutoffs.get(name)
            if previous is None or previous >= cutoff:
                continue  # not embargoed then (already sent), or nothing released yet
            clauses.append(and_(obs.c.scientificName == name,
                                obs.c.eventStart_utc > previous,
                                obs.c.eventStart_utc <= cutoff,
                                obs.c.source_row <= self.since.observations))
        return or_(*clauses) if clauses else literal(False)

    def _media_cutoff(self) -> datetime | None:
        return min(self.embargo_names.values()) if self.embargo_names else None

    def _media(self, out: ByteSink, dropped: set[str], embargoed_cameras: set[str]
               ) -> tuple[int, int]:
        media = table_of(Media)
        where: list[ColumnElement[bool]] = [media.c.dataset_id == self.dataset.id]
        if dropped:
            where.append(media.c.deploymentID.not_in(sorted(dropped)))
        if self.plan.time_from is not None:
            where.append(media.c.timestamp_utc >= self.plan.time_from)
        if self.plan.time_to is not None:
            where.append(media.c.timestamp_utc < self.plan.time_to)
        strictest = self._media_cutoff()
        cameras = sorted(embargoed_cameras)
        if strictest is not None and cameras:
            # Fresh images from cameras that recorded an embargoed taxon are held back too.
            where.append(not_(and_(media.c.deploymentID.in_(cameras),
                                   media.c.timestamp_utc > strictest)))
        if self.since is not None:
            released: ColumnElement[bool] = literal(False)
            previous = self.since.media_cutoff
            if previous is not None and strictest is not None and previous < strictest:
                released = and_(media.c.deploymentID.in_(cameras),
                                media.c.timestamp_utc > previous,
                                media.c.source_row <= self.since.media)
            where.append(or_(media.c.source_row > self.since.media, released))
        query = select(*self._select(media, "media")).where(*where).order_by(media.c.source_row)
        count = self._stream_rows(query, out, [f.name for f in camtrap_table("media").fields])
        with self.engine.connect() as conn:
            last = conn.scalar(select(func.max(media.c.source_row))
                               .where(media.c.dataset_id == self.dataset.id))
        return count, int(last or 0)

    def _individuals(self, out: ByteSink) -> int:
        table = table_of(Individual)
        with self.engine.connect() as conn:
            records = conn.execute(select(table.c.individualID, table.c.scientificName,
                                          table.c.record)
                                   .where(table.c.dataset_id == self.dataset.id)
                                   .order_by(table.c.individualID)).all()
        records = [r for r in records
                   if not (r.scientificName and self.plan.is_dropped(r.scientificName))]
        if self.plan.pseudonymize and self.plan.pseudonym_key is not None:
            header = ["individualID", "scientificName"]
            rows: list[Sequence[Any]] = [
                [pseudonym(self.plan.pseudonym_key, r.individualID), r.scientificName]
                for r in records]
        else:
            header = list(dict.fromkeys(k for r in records for k in r.record))
            rows = [[r.record.get(k) for k in header] for r in records]
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(header or ["individualID"])
        writer.writerows(rows)
        out.write(text.getvalue().encode("utf-8"))
        return len(rows)

    def _dropped_counts(self, dropped: set[str]) -> dict[str, int]:
        """Observation rows left out, by reason (category 1, embargo, outside the area)."""
        obs = table_of(Observation)
        in_dataset = obs.c.dataset_id == self.dataset.id
        counts = {}
        with self.engine.connect() as conn:
            if self.drop_names:
                counts["category_1"] = int(conn.scalar(select(func.count()).where(
                    in_dataset, obs.c.scientificName.in_(self.drop_names))) or 0)
            if self.embargo_names:
                counts["embargo"] = int(conn.scalar(select(func.count()).where(
                    in_dataset, not_(self._embargo_clause(obs.c.scientificName,
                                                          obs.c.eventStart_utc)))) or 0)
            if dropped:
                counts["outside_area"] = int(conn.scalar(select(func.count()).where(
                    in_dataset, obs.c.deploymentID.in_(sorted(dropped)))) or 0)
        return counts

    # -- the package -------------------------------------------------------------------

    def write(self, out: BinaryIO,
              resources: Sequence[str] = ("deployments", "media", "observations",
                                          "individuals"), *,
              seal: Seal | None = None) -> ExportResult:
        """Stream the package into ``out`` (which need not be seekable).

        ``resources`` may name fewer tables (a partial package is not a valid
        Camtrap DP package; the export benchmark uses it to time one table).
        ``seal`` runs between the last resource and the signed descriptor.
        """
        result = ExportResult(plan_digest=self.plan.digest())
        deployments, dropped, precisions = self._deployments()
        embargoed = set(_camera_taxa(self.engine, self.dataset.id, self.embargo_names))
        spec = camtrap_table("deployments")
        with PackageWriter(out, key=self.key) as package:
            last_media = last_obs = 0
            if "deployments" in resources:
                with package.open_resource("deployments", "deployments.csv",
                                           schema=CAMTRAP_SCHEMA.format("deployments")) as stream:
                    text = io.StringIO()
                    writer = csv.DictWriter(text, [f.name for f in spec.fields])
                    writer.writeheader()
                    writer.writerows(deployments)
                    stream.write(text.getvalue().encode("utf-8"))
                    result.rows["deployments"] = len(deployments)
            if "media" in resources:
                with package.open_resource("media", "media.csv",
                                           schema=CAMTRAP_SCHEMA.format("media")) as stream:
                    result.rows["media"], last_media = self._media(stream, dropped, embargoed)
            if "observations" in resources:
                with package.open_resource("observations", "observations.csv",
                                           schema=CAMTRAP_SCHEMA.format("observations")
                                           ) as stream:
                    result.rows["observations"], last_obs = self._observations(stream, dropped)
            if "individuals" in resources:
                with package.open_resource("individuals", "individuals.csv") as stream:
                    result.rows["individuals"] = self._individuals(stream)
            result.dropped = self._dropped_counts(dropped)
            result.cursor = Cursor(self.dataset.version, last_obs, last_media,
                                   dict(self.embargo_names), self._media_cutoff()).encode()
            result.content_sha256 = content_digest(package.resource_entries())
            descriptor = self._descriptor(result, precisions)
            if seal is not None:
                descriptor["corridor"].update(seal(result))
            raw = package.finish(descriptor)
        result.descriptor_sha256 = hashlib.sha256(raw).hexdigest()
        return result

    def _descriptor(self, result: ExportResult, precisions: Mapping[str, float]
                    ) -> dict[str, Any]:
        plan = self.plan
        source = {k: v for k, v in self.dataset.descriptor.items() if k != "resources"}
        precision = max(precisions.values(), default=None)
        if precision is not None:
            source["coordinatePrecision"] = precision
        generalizations = plan.data_generalizations()
        withheld = plan.information_withheld()
        source.update({
            "name": source.get("name") or self.dataset.name,
            "profile": source.get("profile")
            or "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json",
            "created": self.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dataGeneralizations": generalizations,
            "informationWithheld": withheld,
            "corridor": {
                "provider": self.provider,
                "recipient": self.recipient,
                "agreement": self.agreement,
                "dataset": f"{self.provider}/{self.dataset.name}",
                "datasetVersion": self.dataset.version,
                "tier": plan.tier,
                "purpose": plan.purpose,
                "plan": {"digest": plan.digest(), "explanation": plan.explain()},
                "rows": result.rows,
                "dropped": result.dropped,
                "generalizedCameras": len(precisions),
                "cursor": result.cursor,
                "incremental": self.since is not None,
            },
        })
        return source


def _inside(bbox: tuple[float, float, float, float], lat: float, lon: float) -> bool:
    west, south, east, north = bbox
    return south <= lat <= north and west <= lon <= east



class DwcExporter:
    """Writes one Darwin Core sampling-event dataset as a signed, policy-filtered package.

    The survey *location* plays the camera's part: every event at a location
    (``locationID``, or the event itself when it has none) where a sensitive
    taxon was ever counted gets that taxon's rounding, with
    ``coordinateUncertaintyInMeters`` widened. Occurrences of category-1 taxa,
    and of embargoed taxa in events newer than the cutoff, are left out. Each
    file keeps the source's own column set; withheld terms are blank.
    """

    def __init__(self, engine: Engine, dataset: Dataset, plan: Plan, *, provider: str,
                 key: SigningKey, now: datetime, recipient: str | None = None,
                 agreement: str | None = None, since: str | None = None) -> None:
        if dataset.profile != PROFILE_DWC_EVENT:
            raise ExportError(f"{dataset.name} is a {dataset.profile} dataset")
        if plan.aggregate_only:
            raise ExportError(f"tier {plan.tier!r} is aggregate-only: no rows can be exported")
        if since:
            raise ExportError("incremental export (--since) is not available for Darwin Core "
                              "survey datasets yet; export the whole dataset")
        self.engine, self.dataset, self.plan = engine, dataset, plan
        self.provider, self.key, self.now = provider, key, now
        self.recipient, self.agreement = recipient, agreement
        columns = dataset.descriptor.get("columns", {})
        self.event_columns: list[str] = list(columns.get("event", []))
        self.occurrence_columns: list[str] = list(columns.get("occurrence", []))

    def _location_taxa(self) -> dict[str, set[str]]:
        """Location key -> scientific names ever counted there."""
        events, occ = table_of(Event), table_of(Occurrence)
        query = (select(events.c.locationID, events.c.eventID, occ.c.scientificName)
                 .join(occ, and_(occ.c.dataset_id == events.c.dataset_id,
                                 occ.c.eventID == events.c.eventID))
                 .where(events.c.dataset_id == self.dataset.id)
                 .distinct())
        found: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            for location, event, taxon in conn.execute(query):
                if taxon:
                    found.setdefault(location or f"event:{event}", set()).add(taxon)
        return found

    def _events(self) -> tuple[list[dict[str, str]], dict[str, datetime | None], set[float]]:
        plan = self.plan
        taxa_at = self._location_taxa()
        withheld = plan.withheld.get("event", frozenset())
        kept: list[dict[str, str]] = []
        starts: dict[str, datetime | None] = {}
        applied: set[float] = set()
        table = table_of(Event)
        with self.engine.connect() as conn:
            for e in conn.execute(select(table).where(table.c.dataset_id == self.dataset.id)
                                  .order_by(table.c.source_row)):
                terms = dict(e.terms)
                start = e.eventDate_start_utc
                if plan.time_from is not None and (start is None or start < plan.time_from):
                    continue
                if plan.time_to is not None and (start is None or start >= plan.time_to):
                    continue
                lat, lon = e.decimalLatitude, e.decimalLongitude
                precision = plan.deployment_precision(
                    taxa_at.get(e.locationID or f"event:{e.eventID}", set()))
                if precision is not None and lat is not None and lon is not None:
                    applied.add(precision)
                    lat, lon = round_coordinate(lat, precision), round_coordinate(lon, precision)
                    terms["decimalLatitude"], terms["decimalLongitude"] = repr(lat), repr(lon)
                    uncertainty = e.coordinateUncertaintyInMeters
                    terms["coordinateUncertaintyInMeters"] = str(widened_uncertainty(
                        None if uncertainty is None else int(uncertainty), precision, lat))
                if plan.bbox is not None and (lat is None or lon is None
                                              or not _inside(plan.bbox, lat, lon)):
                    continue
                if plan.coarsen_time and terms.get("eventDate"):
                    terms["eventDate"] = coarsen_event_date(terms["eventDate"],
                                                            plan.coarsen_time)
                for name in withheld:
                    if name in terms:
                        terms[name] = ""
                starts[e.eventID] = start
                kept.append(terms)
        return kept, starts, applied

    def _occurrences(self, out: ByteSink, starts: Mapping[str, datetime | None]
                     ) -> tuple[int, dict[str, int]]:
        plan = self.plan
        withheld = plan.withheld.get("occurrence", frozenset())
        key = plan.pseudonym_key if plan.pseudonymize else None
        table = table_of(Occurrence)
        text = io.StringIO()
        writer = csv.DictWriter(text, self.occurrence_columns, extrasaction="ignore")
        writer.writeheader()
        count, dropped = 0, {"category_1": 0, "embargo": 0}
        query = (select(table.c.eventID, table.c.scientificName, table.c.terms)
                 .where(table.c.dataset_id == self.dataset.id).order_by(table.c.source_row))
        with self.engine.connect() as conn:
            for event_id, taxon, stored in conn.execution_options(
                    yield_per=BATCH_ROWS).execute(query):
                if event_id not in starts:
                    continue
                if taxon and plan.is_dropped(taxon):
                    dropped["category_1"] += 1
                    continue
                if taxon and not plan.in_taxa(taxon):
                    continue
                cutoff = plan.embargo_cutoff(taxon) if taxon else None
                start = starts[event_id]
                if cutoff is not None and (start is None or start > cutoff):
                    dropped["embargo"] += 1
                    continue
                terms = dict(stored)
                for name in withheld:
                    if name in terms:
                        terms[name] = ""
                if key is not None and terms.get("organismID"):
                    terms["organismID"] = pseudonym(key, terms["organismID"])
                if plan.coarsen_time and terms.get("eventDate"):
                    terms["eventDate"] = coarsen_event_date(terms["eventDate"],
                                                            plan.coarsen_time)
                writer.writerow(terms)
                count += 1
                if count % BATCH_ROWS == 0:
                    out.write(text.getvalue().encode("utf-8"))
                    text.seek(0)
                    text.truncate()
        out.write(text.getvalue().encode("utf-8"))
        return count, {k: v for k, v in dropped.items() if v}

    def write(self, out: BinaryIO, *, seal: Seal | None = None) -> ExportResult:
        """Stream the package into ``out``; ``seal`` as :meth:`CamtrapExporter.write`."""
        result = ExportResult(plan_digest=self.plan.digest())
        events, starts, applied = self._events()
        with PackageWriter(out, key=self.key) as package:
            with package.open_resource("event", "event.csv") as stream:
                text = io.StringIO()
                writer = csv.DictWriter(text, self.event_columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(events)
                stream.write(text.getvalue().encode("utf-8"))
                result.rows["event"] = len(events)
            with package.open_resource("occurrence", "occurrence.csv") as stream:
                result.rows["occurrence"], result.dropped = self._occurrences(stream, starts)
            descriptor: dict[str, Any] = {
                "name": self.dataset.name,
                "title": self.dataset.title,
                "profile": "tabular-data-package",
                "created": self.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "licenses": self.dataset.licenses,
                "dataGeneralizations": self.plan.data_generalizations(),
                "informationWithheld": self.plan.information_withheld(),
                "corridor": {
                    "provider": self.provider, "recipient": self.recipient,
                    "agreement": self.agreement,
                    "dataset": f"{self.provider}/{self.dataset.name}",
                    "datasetVersion": self.dataset.version, "tier": self.plan.tier,
                    "purpose": self.plan.purpose,
                    "plan": {"digest": self.plan.digest(),
                             "explanation": self.plan.explain()},
                    "rows": result.rows, "dropped": result.dropped,
                },
            }
            if applied:
                descriptor["coordinatePrecision"] = max(applied)
            result.content_sha256 = content_digest(package.resource_entries())
            if seal is not None:
                descriptor["corridor"].update(seal(result))
            raw = package.finish(descriptor)
        result.descriptor_sha256 = hashlib.sha256(raw).hexdigest()
        return result


DWC_RESOURCES = ("event", "occurrence")


def exporter_for(engine: Engine, dataset: Dataset, plan: Plan, **kwargs: Any
                 ) -> CamtrapExporter | DwcExporter:
    """The exporter for the dataset's profile."""
    if dataset.profile == PROFILE_CAMTRAP:
        return CamtrapExporter(engine, dataset, plan, **kwargs)
    return DwcExporter(engine, dataset, plan, **kwargs)


def resources_of(dataset: Dataset) -> tuple[str, ...]:
    """The package resources a dataset's profile exports (for the plan's explanations)."""
    return CAMTRAP_RESOURCES if dataset.profile == PROFILE_CAMTRAP else DWC_RESOURCES
