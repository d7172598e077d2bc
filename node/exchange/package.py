"""Policy-filtered, signed data packages, streamed (DESIGN.md §7, §8).

The plan compiled by :mod:`policies.engine` is applied here, table by table.
What leaves is **closed** (:mod:`node.exchange.release`): the released observations
are those the plan's filters keep, and a media row, a camera or an individual
leaves only if a released observation reaches it (or the plan releases
effort). Survey events of Darwin Core datasets likewise leave only with a
released occurrence.

* ``deployments`` (a few thousand rows) are read in Python: every camera gets
  the coarsest rounding any sensitive taxon recorded there requires
  (generalization follows the camera, whatever this export's filters keep),
  with ``coordinateUncertainty`` widened, using exactly
  :mod:`policies.transforms`; the area filter is tested on those released
  coordinates.
* ``media`` and ``observations`` (millions of rows) are filtered, projected
  and time-coarsened inside the database query; Python only pseudonymizes the
  individual IDs and hands the rows to the C ``csv`` writer in batches, which
  stream into the zip. Memory stays flat in the number of rows.
* the descriptor is derived from what is released (:mod:`policies.disclosure`):
  the released taxa, the released extent rounded outward, contributors by the
  same rules as the fields naming people.

Everything that can fail on bad input (the cursor above all) fails in
:meth:`CamtrapExporter.prepare`, before the first byte of a response.

Camtrap DP keeps coordinates only in ``deployments``, so no observation or
media row can carry a finer location than its camera's.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    and_,
    case,
    exists,
    func,
    literal,
    not_,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session

from corridor.db import stream_tuples, table_of
from corridor.errors import CorridorError
from corridor.package_writer import PackageWriter
from crypto.errors import InvalidSignature
from crypto.keys import SigningKey
from crypto.package import content_digest
from crypto.sealed import seal, unseal
from node.data.datasets import get_dataset, stored_taxa
from node.data.policy_store import get_policy, pseudonym_key
from node.data.validation import DWC_EVENT, DWC_OCCURRENCE, camtrap_table
from node.exchange.cards import CARD_FIELDS, card_rows, cards_csv
from node.exchange.release import CamtrapRelease, embargo_clause
from node.exchange.table_schemas import cards_schema, dwc_schema, individuals_schema
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
from policies.disclosure import (
    people_withheld,
    released_contributors,
    rounded_outward,
    scrub_properties,
)
from policies.engine import TIME_FIELDS, Plan
from policies.engine import compile as compile_plan
from policies.taxonomy import accepted_name
from policies.terms import Terms
from policies.transforms import (
    coarsen_event_date,
    coarsen_timestamp,
    pseudonym,
    round_coordinate,
    widened_uncertainty,
)

CAMTRAP_RESOURCES = ("deployments", "media", "observations", "individuals")
WITHHELD = "withheld"  # placeholder for a required text field the policy withholds
CAMTRAP_SCHEMA = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/{}-table-schema.json"
BATCH_ROWS = 10_000
#: What a cursor's MAC is for (domain separation from any other sealed token).
CURSOR_PURPOSE = "corridor-cursor/v2"
#: Bounds on a cursor's fields: anything outside was not issued by this node.
MAX_ROW = 2**53
MAX_VERSION = 2**31 - 1
MAX_CURSOR_CUTOFFS = 1000
#: Individuals fields recomputed from the released observations.
SIGHTING_FIELDS = ("firstSeen", "lastSeen", "detections")


class ByteSink(Protocol):
    """Where CSV bytes go (a zip member stream)."""

    def write(self, data: bytes, /) -> Any:
        """Accept bytes."""


class ExportError(CorridorError):
    """The dataset cannot be exported as asked (the message says why)."""

    status = 422
    title = "Export refused"


class CursorRefused(ExportError):
    """A ``since`` cursor this node cannot honour.

    :ivar reason: ``forged`` (not issued by this node, or altered), ``foreign``
        (issued for another agreement or dataset) or ``stale`` (the dataset was
        re-imported, or its policy changed, since).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Cursor:
    """Where an incremental export resumes: what the previous package released.

    Within one dataset version rows never change, so what a package released
    is fixed by the embargo cutoffs it applied (and the last rows it saw);
    the next export sends what is released now and was not then. The cursor
    is sealed by the node (:mod:`crypto.sealed`) and bound to the agreement
    (``scope``), the dataset and version, and the plan's basis (the policy
    and terms, not the moving cutoffs).
    """

    scope: str
    dataset: str
    version: int
    basis: str
    observations: int
    media: int
    cutoffs: Mapping[str, datetime] = field(default_factory=dict)

    def encode(self, key: bytes) -> str:
        """The sealed, URL-safe text handed to the recipient."""
        return seal(key, CURSOR_PURPOSE, {
            "a": self.scope, "d": self.dataset, "v": self.version, "b": self.basis,
            "o": self.observations, "m": self.media,
            "c": {k: _utc_text(v) for k, v in sorted(self.cutoffs.items())},
        })

    @classmethod
    def decode(cls, text: str, key: bytes) -> Cursor:
        """Open a cursor this node sealed, checking every field's type and range.

        :raises CursorRefused: (``forged``) not sealed by this node with ``key``,
            altered, or with a field no cursor of this node can hold.
        """
        try:
            raw = unseal(key, CURSOR_PURPOSE, text)
        except InvalidSignature as e:
            raise CursorRefused("the cursor was not issued by this node, or was altered; "
                                "fetch without --since (or with --from-start)", "forged") from e
        try:
            cutoffs = raw["c"]
            if not isinstance(cutoffs, dict) or len(cutoffs) > MAX_CURSOR_CUTOFFS:
                raise ValueError("c")
            return cls(_text(raw["a"]), _text(raw["d"]), _bounded(raw["v"], 1, MAX_VERSION),
                       _text(raw["b"]), _bounded(raw["o"], 0, MAX_ROW),
                       _bounded(raw["m"], 0, MAX_ROW),
                       {_text(k): _aware_time(v) for k, v in cutoffs.items()})
        except (KeyError, TypeError, ValueError) as e:
            raise CursorRefused("the cursor is malformed", "forged") from e

    def check(self, *, scope: str, dataset: Dataset, basis: str) -> None:
        """Refuse a cursor issued for something else, or before the data or policy changed.

        :raises CursorRefused: ``foreign`` or ``stale``, saying what to do.
        """
        if self.scope != scope or self.dataset != dataset.name:
            raise CursorRefused("the cursor was issued for another agreement or dataset",
                                "foreign")
        if self.version != dataset.version:
            raise CursorRefused(
                f"{dataset.name} was re-imported since this cursor was issued (version "
                f"{self.version}, now {dataset.version}); fetch from the start (--from-start)",
                "stale")
        if self.basis != basis:
            raise CursorRefused("the owner changed what this agreement releases since the "
                                "cursor was issued; fetch from the start (--from-start)", "stale")


def _text(value: Any, limit: int = 255) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError("text")
    return value


def _bounded(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError("integer out of range")
    return value


def _aware_time(value: Any) -> datetime:
    moment = datetime.fromisoformat(_text(value, 40))
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive time")
    return moment.astimezone(UTC)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ExportResult:
    """What a package contains (also written into its datapackage.json)."""

    rows: dict[str, int] = field(default_factory=dict)
    #: Records the rules held back, per rule: for the owner (CLI, preview), never in the
    #: package, where a count growing between fetches dates the withheld sightings.
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


class Progress:
    """Rows handed to the package so far, per resource (read by the log of an unfinished one)."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}

    def add(self, resource: str, rows: int) -> None:
        """Count ``rows`` more rows of ``resource``."""
        self.rows[resource] = self.rows.get(resource, 0) + rows


def stored_names(engine: Engine, dataset_id: int) -> list[str]:
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


@dataclass
class _Prepared:
    """What an export decided before its first byte."""

    release: CamtrapRelease
    deployments: list[dict[str, Any]]
    precisions: dict[str, float]  # released camera -> precision applied


class CamtrapExporter:
    """Writes one Camtrap DP dataset as a signed, policy-filtered package.

    ``cursor_key`` seals the package's cursor and opens ``since``; ``agreement``
    (or, for an owner's preview, ``recipient``) is what the cursor is bound to.
    """

    def __init__(self, engine: Engine, dataset: Dataset, plan: Plan, *, provider: str,
                 key: SigningKey, now: datetime, cursor_key: bytes,
                 recipient: str | None = None, agreement: str | None = None,
                 since: str | None = None) -> None:
        if dataset.profile != PROFILE_CAMTRAP:
            raise ExportError(f"{dataset.name} is a {dataset.profile} dataset")
        if plan.aggregate_only:
            raise ExportError(f"tier {plan.tier!r} is aggregate-only: no rows can be exported")
        self.engine, self.dataset, self.plan = engine, dataset, plan
        self.provider, self.key, self.now = provider, key, now
        self.recipient, self.agreement = recipient, agreement
        self.cursor_key = cursor_key
        self.scope = agreement or f"preview:{recipient or provider}"
        self.since = Cursor.decode(since, cursor_key) if since else None
        if self.since is not None:
            self.since.check(scope=self.scope, dataset=dataset, basis=plan.basis_digest())
        self.names = stored_names(engine, dataset.id)
        self.sensitive_names = [n for n in self.names
                                if plan.precision_of(n) is not None or plan.is_dropped(n)]
        self.progress = Progress()
        self._prepared: _Prepared | None = None

    # -- before the first byte --------------------------------------------------------

    def prepare(self) -> None:
        """Decide every camera and build the release; idempotent.

        Call before a response starts: what fails here fails as a clear error,
        not as a cut-off download.
        """
        if self._prepared is not None:
            return
        candidates, excluded, precisions = self._generalized_cameras()
        release = CamtrapRelease(self.engine, self.dataset.id, self.plan, names=self.names,
                                 excluded_cameras=excluded)
        reached = self._reached_cameras(release)
        rows = [row for row in candidates if row["deploymentID"] in reached]
        kept = {row["deploymentID"] for row in rows}
        self._prepared = _Prepared(release, rows,
                                   {c: p for c, p in precisions.items() if c in kept})

    def _generalized_cameras(self) -> tuple[list[dict[str, Any]], set[str], dict[str, float]]:
        """(rows of cameras inside the area, cameras outside it, camera -> precision).

        Generalization follows the camera: a camera that ever recorded a
        sensitive taxon is rounded for all its rows, whatever this export's
        filters keep. A camera is in the area only if the whole cell its released
        coordinates stand for is: then its true position is inside too, and an
        edge drawn through a cell cannot tell which side of it the camera was.
        """
        plan = self.plan
        recorded = _camera_taxa(self.engine, self.dataset.id, self.sensitive_names)
        table = table_of(Deployment)
        rows, excluded, precisions = [], set(), {}
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
                # The whole released cell inside the area: the true position is
                # then inside too, and the decision uses only what is shown.
                if not plan.in_area(row["latitude"], row["longitude"], precision=precision):
                    excluded.add(camera)
                    continue
                for name in withheld:
                    row[name] = None
                for name in ("timestampIssues", "baitUse"):
                    if row[name] is not None:
                        row[name] = "true" if row[name] else "false"
                rows.append(row)
        return rows, excluded, precisions

    def _reached_cameras(self, release: CamtrapRelease) -> set[str]:
        """Cameras with a released observation (every camera if the plan releases effort)."""
        table = table_of(Deployment)
        query = select(table.c.deploymentID).where(table.c.dataset_id == self.dataset.id)
        if not self.plan.release_effort:
            query = query.where(release.deployments(table))
        with self.engine.connect() as conn:
            return set(conn.scalars(query))

    @property
    def prepared(self) -> _Prepared:
        """The decisions of :meth:`prepare` (made on first use)."""
        self.prepare()
        assert self._prepared is not None
        return self._prepared

    # -- streaming tables ------------------------------------------------------------

    def _stream_rows(self, query: Any, out: ByteSink, header: Sequence[str], resource: str,
                     pseudonym_index: int | None = None) -> int:
        """Run ``query`` and write its rows as CSV into ``out``; return the row count."""
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(header)
        key = self.plan.pseudonym_key if self.plan.pseudonymize else None
        # Few animals, many rows: compute each pseudonym once per export.
        pseudonyms: dict[str, str] = {}
        scrub = self._scrubber(resource, header)
        count = 0
        with self.engine.connect() as conn:
            for batch in stream_tuples(conn, query, BATCH_ROWS):
                rows: Sequence[Sequence[Any]] = batch
                if pseudonym_index is not None and key is not None:
                    i = pseudonym_index
                    rows = [row if row[i] is None else
                            (*row[:i], pseudonyms.get(row[i]) or pseudonyms.setdefault(
                                row[i], pseudonym(key, row[i])), *row[i + 1:])
                            for row in rows]
                if scrub is not None:
                    rows = [scrub(row) for row in rows]
                writer.writerows(rows)
                count += len(batch)
                out.write(text.getvalue().encode("utf-8"))
                text.seek(0)
                text.truncate()
                self.progress.add(resource, len(batch))
        out.write(text.getvalue().encode("utf-8"))
        return count

    def _scrubber(self, resource: str, header: Sequence[str]
                  ) -> Callable[[Sequence[Any]], Sequence[Any]] | None:
        """A row function removing withheld keys from free-text JSON fields, or None."""
        fields = self.plan.scrub.get(resource)
        if not fields:
            return None
        positions = [header.index(f) for f in sorted(fields) if f in header]
        withheld = self.plan.withheld.get(resource, frozenset())
        people = self.plan.scrub_people

        def scrub(row: Sequence[Any]) -> Sequence[Any]:
            out = list(row)
            for i in positions:
                out[i] = scrub_properties(out[i], drop_people=people, withheld=withheld)
            return out
        return scrub

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

    def _observations(self, out: ByteSink) -> tuple[int, int]:
        obs = table_of(Observation)
        release = self.prepared.release
        where = release.observations(obs)
        if self.since is not None:
            where.append(not_(and_(*release.observations(
                obs, cutoffs=self.since.cutoffs, last_row=self.since.observations))))
        query = select(*self._select(obs, "observations")).where(*where) \
            .order_by(obs.c.source_row)
        names = [f.name for f in camtrap_table("observations").fields]
        count = self._stream_rows(query, out, names, "observations",
                                  names.index("individualID"))
        return count, self._last_row(obs)

    def _media(self, out: ByteSink) -> tuple[int, int]:
        media = table_of(Media)
        release = self.prepared.release
        where: list[ColumnElement[bool]] = [media.c.dataset_id == self.dataset.id,
                                            release.media(media)]
        if self.since is not None:
            # Sent before: reached by what the previous package released.
            where.append(not_(and_(media.c.source_row <= self.since.media, release.media(
                media, cutoffs=self.since.cutoffs, last_row=self.since.observations))))
        query = select(*self._select(media, "media")).where(*where).order_by(media.c.source_row)
        count = self._stream_rows(query, out, [f.name for f in camtrap_table("media").fields],
                                  "media")
        return count, self._last_row(media)

    def _last_row(self, table: Any) -> int:
        with self.engine.connect() as conn:
            last = conn.scalar(select(func.max(table.c.source_row))
                               .where(table.c.dataset_id == self.dataset.id))
        return int(last or 0)

    def _individuals(self) -> tuple[list[str], list[Sequence[Any]]]:
        """(header, rows) of the individuals a released observation names, sightings recomputed."""
        plan, release = self.plan, self.prepared.release
        table = table_of(Individual)
        with self.engine.connect() as conn:
            records = conn.execute(select(table.c.individualID, table.c.scientificName,
                                          table.c.record)
                                   .where(table.c.dataset_id == self.dataset.id,
                                          release.individuals(table))
                                   .order_by(table.c.individualID)).all()
        # An individual filed under another taxon than its observations stays home.
        records = [r for r in records if not r.scientificName
                   or (plan.in_taxa(r.scientificName) and not plan.is_dropped(r.scientificName))]
        sightings = release.sightings()
        if plan.pseudonymize and plan.pseudonym_key is not None:
            header = ["individualID", "scientificName"]
            rows: list[Sequence[Any]] = [
                [pseudonym(plan.pseudonym_key, r.individualID), r.scientificName]
                for r in records]
        else:
            header = list(dict.fromkeys(k for r in records for k in r.record))
            withheld = plan.withheld.get("individuals", frozenset())
            rows = []
            for r in records:
                record = self._sighted(dict(r.record), sightings.get(r.individualID))
                rows.append([None if k in withheld else record.get(k) for k in header])
        return header or ["individualID"], rows

    def _sighted(self, record: dict[str, Any],
                 seen: tuple[datetime, datetime, int] | None) -> dict[str, Any]:
        """``record`` with firstSeen, lastSeen and detections from the released rows only.

        The stored values describe every sighting (the embargoed fresh one
        included); released, they would tell what the observations may not.
        Times keep the offset the record was written in, coarsened like the
        observations' timestamps.
        """
        if seen is None:
            for name in SIGHTING_FIELDS:
                if name in record:
                    record[name] = None
            return record
        first, last, events = seen
        for name, moment in (("firstSeen", first), ("lastSeen", last)):
            if name in record:
                text = _in_offset_of(record.get(name), moment)
                record[name] = (coarsen_timestamp(text, self.plan.coarsen_time)
                                if self.plan.coarsen_time else text)
        if "detections" in record:
            record["detections"] = events
        return record

    def _dropped_counts(self) -> dict[str, int]:
        """Observation rows the terms ask for but the policy holds back, by reason.

        Counted only among the rows inside the agreement's taxa, time and area:
        a count of what lies outside the terms would itself be about it.
        """
        release = self.prepared.release
        obs = table_of(Observation)
        inside = release.within_terms(obs)
        counts: dict[str, int] = {}
        with self.engine.connect() as conn:
            if release.drop_names:
                counts["category_1"] = int(conn.scalar(select(func.count()).where(
                    *inside, obs.c.scientificName.in_(release.drop_names))) or 0)
            if release.cutoffs:
                counts["embargo"] = int(conn.scalar(select(func.count()).where(
                    *inside, *release.not_dropped(obs),
                    not_(embargo_clause(obs.c.scientificName, obs.c.eventStart_utc,
                                        release.cutoffs)))) or 0)
        return {k: v for k, v in counts.items() if v}

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
        prepared = self.prepared
        result = ExportResult(plan_digest=self.plan.digest())
        spec = camtrap_table("deployments")
        with PackageWriter(out, key=self.key) as package:
            last_media = last_obs = 0
            if "deployments" in resources:
                with package.open_resource("deployments", "deployments.csv",
                                           schema=CAMTRAP_SCHEMA.format("deployments")) as stream:
                    text = io.StringIO()
                    writer = csv.DictWriter(text, [f.name for f in spec.fields])
                    writer.writeheader()
                    writer.writerows(prepared.deployments)
                    stream.write(text.getvalue().encode("utf-8"))
                    result.rows["deployments"] = len(prepared.deployments)
                    self.progress.add("deployments", len(prepared.deployments))
            if "media" in resources:
                with package.open_resource("media", "media.csv",
                                           schema=CAMTRAP_SCHEMA.format("media")) as stream:
                    result.rows["media"], last_media = self._media(stream)
            if "observations" in resources:
                with package.open_resource("observations", "observations.csv",
                                           schema=CAMTRAP_SCHEMA.format("observations")
                                           ) as stream:
                    result.rows["observations"], last_obs = self._observations(stream)
            if "individuals" in resources:
                header, rows = self._individuals()
                with package.open_resource("individuals", "individuals.csv",
                                           schema=individuals_schema(header)) as stream:
                    text = io.StringIO()
                    csv.writer(text).writerows([header, *rows])
                    stream.write(text.getvalue().encode("utf-8"))
                result.rows["individuals"] = len(rows)
                self.progress.add("individuals", len(rows))
            if self.plan.catalogue_cards and "individuals" in resources:
                cards = card_rows(self.engine, self.dataset.id, self.plan, prepared.release,
                                  prepared.deployments)
                with package.open_resource("cards", "cards.csv",
                                           schema=cards_schema(CARD_FIELDS)) as stream:
                    stream.write(cards_csv(cards))
                result.rows["cards"] = len(cards)
                self.progress.add("cards", len(cards))
            result.dropped = self._dropped_counts()
            result.cursor = Cursor(self.scope, self.dataset.name, self.dataset.version,
                                   self.plan.basis_digest(), last_obs, last_media,
                                   dict(prepared.release.cutoffs)).encode(self.cursor_key)
            result.content_sha256 = content_digest(package.resource_entries())
            descriptor = self._descriptor(result)
            if seal is not None:
                descriptor["corridor"].update(seal(result))
            raw = package.finish(descriptor)
        result.descriptor_sha256 = hashlib.sha256(raw).hexdigest()
        return result

    def _descriptor(self, result: ExportResult) -> dict[str, Any]:
        plan, prepared = self.plan, self.prepared
        source = {k: v for k, v in self.dataset.descriptor.items() if k != "resources"}
        precision = max(prepared.precisions.values(), default=None)
        if precision is not None:
            source["coordinatePrecision"] = precision
        hide_people = people_withheld(plan.withheld)
        source["contributors"] = released_contributors(source.get("contributors") or [],
                                                       people_hidden=hide_people)
        if hide_people and isinstance(source.get("sources"), list):
            source["sources"] = [{k: v for k, v in s.items() if k != "email"}
                                 for s in source["sources"] if isinstance(s, Mapping)]
        source["taxonomic"] = _released_taxonomic(source.get("taxonomic"),
                                                  prepared.release.released_names())
        spatial = _released_spatial(prepared.deployments, precision)
        temporal = _released_temporal(*prepared.release.time_range(), plan.coarsen_time)
        # Camtrap DP requires both. A package that releases nothing covers no
        # place (an empty GeoJSON collection) and is dated as the catalogue
        # dates the dataset: nothing that is not already public.
        if spatial is None and not prepared.deployments:
            spatial = {"type": "GeometryCollection", "geometries": []}
        if temporal is None and self.dataset.temporal_start and self.dataset.temporal_end:
            temporal = {"start": self.dataset.temporal_start, "end": self.dataset.temporal_end}
        for name, value in (("spatial", spatial), ("temporal", temporal)):
            if value is None:
                source.pop(name, None)
            else:
                source[name] = value
        source.update({
            "name": source.get("name") or self.dataset.name,
            "profile": source.get("profile")
            or "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json",
            "created": self.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dataGeneralizations": plan.data_generalizations(),
            "informationWithheld": plan.information_withheld(),
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
                # Not result.dropped: withheld counts stay with the owner (ExportResult).
                "generalizedCameras": len(prepared.precisions),
                "cursor": result.cursor,
                "incremental": self.since is not None,
            },
        })
        return source


def _in_offset_of(written: Any, moment: datetime) -> str:
    """``moment`` as ISO 8601 seconds in the UTC offset of ``written`` (UTC if it has none)."""
    offset = timedelta(0)
    if isinstance(written, str):
        try:
            parsed = datetime.fromisoformat(written.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.utcoffset() is not None:
            offset = parsed.utcoffset() or timedelta(0)
    return moment.astimezone(timezone(offset)).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def _released_taxonomic(source: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    """The source's ``taxonomic`` entries for the released taxa only (plus any missing)."""
    released = {accepted_name(n) for n in names}
    entries = [dict(e) for e in source or [] if isinstance(e, Mapping)
               and isinstance(e.get("scientificName"), str)
               and accepted_name(e["scientificName"]) in released]
    listed = {accepted_name(e["scientificName"]) for e in entries}
    entries += [{"scientificName": n} for n in sorted(set(names))
                if accepted_name(n) not in listed]
    return entries


def _released_spatial(deployments: Sequence[Mapping[str, Any]],
                      precision: float | None) -> dict[str, Any] | None:
    """A GeoJSON polygon around the released cameras, rounded outward to ``precision``."""
    points = [(row["longitude"], row["latitude"]) for row in deployments
              if row.get("latitude") is not None and row.get("longitude") is not None]
    if not points:
        return None
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    if precision is not None:
        west, south, east, north = rounded_outward(west, south, east, north, precision)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _released_temporal(first: datetime | None, last: datetime | None,
                       unit: str | None) -> dict[str, str] | None:
    """Dates (UTC) of the released records, widened to whole months when coarsened so."""
    if first is None or last is None:
        return None
    start, end = first.date(), last.date()
    if unit == "month":
        start = start.replace(day=1)
        following = date(end.year + end.month // 12, end.month % 12 + 1, 1)
        end = following - timedelta(days=1)
    return {"start": start.isoformat(), "end": end.isoformat()}


class DwcExporter:
    """Writes one Darwin Core sampling-event dataset as a signed, policy-filtered package.

    The survey *location* plays the camera's part: every event at a location
    (``locationID``, or the event itself when it has none) where a sensitive
    taxon was ever counted gets that taxon's rounding, with
    ``coordinateUncertaintyInMeters`` widened. Occurrences outside the
    agreement's taxa, of category-1 taxa, and of embargoed taxa in events newer
    than the cutoff, are left out; an event leaves only with a released
    occurrence, unless the plan releases effort (zero counts). Each file keeps
    the source's own column set; withheld terms are blank.
    """

    def __init__(self, engine: Engine, dataset: Dataset, plan: Plan, *, provider: str,
                 key: SigningKey, now: datetime, cursor_key: bytes,
                 recipient: str | None = None, agreement: str | None = None,
                 since: str | None = None) -> None:
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
        self.cursor_key = cursor_key
        columns = dataset.descriptor.get("columns", {})
        self.event_columns: list[str] = list(columns.get("event", []))
        self.occurrence_columns: list[str] = list(columns.get("occurrence", []))
        occ = table_of(Occurrence)
        with engine.connect() as conn:
            stored = sorted(conn.scalars(select(occ.c.scientificName).distinct().where(
                occ.c.dataset_id == dataset.id, occ.c.scientificName.is_not(None))))
        self.drop_names = [n for n in stored if plan.is_dropped(n)]
        self.taxa_names = None if plan.taxa is None else [n for n in stored if plan.in_taxa(n)]
        self.cutoffs = {n: c for n in stored if (c := plan.embargo_cutoff(n)) is not None}
        self.progress = Progress()

    def prepare(self) -> None:
        """Nothing to decide ahead for a survey dataset (kept for the exporters' one interface)."""

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

    def _released_occurrence(self, occ: Any, events: Any) -> list[ColumnElement[bool]]:
        """The conditions of a released occurrence of the event row ``events``."""
        where: list[ColumnElement[bool]] = [occ.c.dataset_id == events.c.dataset_id,
                                            occ.c.eventID == events.c.eventID]
        if self.taxa_names is not None:
            where.append(occ.c.scientificName.in_(self.taxa_names))
        if self.drop_names:
            where.append(or_(occ.c.scientificName.is_(None),
                             occ.c.scientificName.not_in(self.drop_names)))
        where.append(embargo_clause(occ.c.scientificName, events.c.eventDate_start_utc,
                                    self.cutoffs))
        return where

    def _events(self) -> tuple[list[dict[str, str]], dict[str, datetime | None], set[float]]:
        plan = self.plan
        taxa_at = self._location_taxa()
        withheld = plan.withheld.get("event", frozenset())
        scrub = plan.scrub.get("event", frozenset())
        kept: list[dict[str, str]] = []
        starts: dict[str, datetime | None] = {}
        applied: set[float] = set()
        table = table_of(Event)
        query = select(table).where(table.c.dataset_id == self.dataset.id)
        if not plan.release_effort:
            occ = table_of(Occurrence).alias("released")
            query = query.where(exists().where(*self._released_occurrence(occ, table)))
        with self.engine.connect() as conn:
            for e in conn.execute(query.order_by(table.c.source_row)):
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
                # The whole released cell inside the area (see Plan.in_area).
                if not plan.in_area(lat, lon, precision=precision):
                    continue
                if plan.coarsen_time and terms.get("eventDate"):
                    terms["eventDate"] = coarsen_event_date(terms["eventDate"],
                                                            plan.coarsen_time)
                _blank_and_scrub(terms, withheld, scrub, plan.scrub_people)
                starts[e.eventID] = start
                kept.append(terms)
        return kept, starts, applied

    def released_events(self) -> list[dict[str, Any]]:
        """The event rows this export would release (generalized), for maps and previews."""
        return self._events()[0]

    def _occurrences(self, out: ByteSink, starts: Mapping[str, datetime | None]
                     ) -> tuple[int, dict[str, int]]:
        plan = self.plan
        withheld = plan.withheld.get("occurrence", frozenset())
        scrub = plan.scrub.get("occurrence", frozenset())
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
                # The agreement's taxa first: what lies outside them is not even counted.
                if plan.taxa is not None and not (taxon and plan.in_taxa(taxon)):
                    continue
                if taxon and plan.is_dropped(taxon):
                    dropped["category_1"] += 1
                    continue
                cutoff = plan.embargo_cutoff(taxon) if taxon else None
                start = starts[event_id]
                if cutoff is not None and (start is None or start > cutoff):
                    dropped["embargo"] += 1
                    continue
                terms = dict(stored)
                _blank_and_scrub(terms, withheld, scrub, plan.scrub_people)
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
                    self.progress.add("occurrence", BATCH_ROWS)
        out.write(text.getvalue().encode("utf-8"))
        self.progress.add("occurrence", count % BATCH_ROWS)
        return count, {k: v for k, v in dropped.items() if v}

    def write(self, out: BinaryIO, *, seal: Seal | None = None) -> ExportResult:
        """Stream the package into ``out``; ``seal`` as :meth:`CamtrapExporter.write`."""
        result = ExportResult(plan_digest=self.plan.digest())
        events, starts, applied = self._events()
        with PackageWriter(out, key=self.key) as package:
            with package.open_resource("event", "event.csv",
                                       schema=dwc_schema(DWC_EVENT, self.event_columns)
                                       ) as stream:
                text = io.StringIO()
                writer = csv.DictWriter(text, self.event_columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(events)
                stream.write(text.getvalue().encode("utf-8"))
                result.rows["event"] = len(events)
                self.progress.add("event", len(events))
            with package.open_resource("occurrence", "occurrence.csv",
                                       schema=dwc_schema(DWC_OCCURRENCE,
                                                         self.occurrence_columns)) as stream:
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
                    "rows": result.rows,  # withheld counts stay with the owner
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


def _blank_and_scrub(terms: dict[str, str], withheld: frozenset[str], scrub: frozenset[str],
                     people: bool) -> None:
    """Blank the withheld terms of a Darwin Core row and scrub its free-text JSON ones."""
    for name in withheld:
        if name in terms:
            terms[name] = ""
    for name in scrub:
        if terms.get(name):
            terms[name] = scrub_properties(terms[name], drop_people=people,
                                           withheld=withheld) or ""


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


def dataset_plan(session: Session, dataset_name: str, terms: Terms, requester: str,
                 now: datetime, *, keys_dir: Path, pseudonym_scope: str
                 ) -> tuple[Dataset, Plan]:
    """Compile what ``requester`` would get of a dataset: its stored policy and ``terms``.

    The one place a plan is assembled, for an agreement's package and for the
    owner's preview alike. ``pseudonym_scope`` names whose pseudonyms these are
    (``agreement:ID`` or ``preview:MEMBER``): each scope gets its own key.

    :raises NotFound: no such dataset.
    :raises PolicyError: the policy does not allow these terms.
    """
    dataset = get_dataset(session, dataset_name)
    policy, _ = get_policy(session, dataset_name)
    plan = compile_plan(policy, terms, requester, now,
                        pseudonym_key=pseudonym_key(keys_dir, pseudonym_scope),
                        resources=resources_of(dataset), taxa_present=stored_taxa(session, dataset))
    return dataset, plan
