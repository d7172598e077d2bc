"""The dataset catalog: signed entries published by member nodes, and search over them.

A node describes each dataset in a compact JWS (``typ`` =
``corridor-catalog+jwt``) signed with one of its member's active keys. The
registry checks the signature against *the sender's* keys, checks the document
field by field (unknown fields refused, the entry must sit in the sender's own
namespace ``<member_id>/<dataset>``), stores the verified document with its JWS,
and indexes its taxa under every synonym (:mod:`policies.taxonomy`).

Invariant (DESIGN.md §2.1): nothing stored here can be an observation, an
identifier of a row, or a coordinate finer than a whole degree. The document
schema has no place for rows; the bounding box must be JSON integers; and
free text that carries a coordinate pair is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from corridor.errors import BadRequest, Conflict, Forbidden, NotFound
from crypto.canonical import canonical_json
from crypto.errors import InvalidKey, InvalidSignature
from crypto.jws import verify_compact
from policies.policy import MAX_DAYS, PURPOSES
from policies.taxonomy import names_for, normalise, search_names
from registry.log.exchange_log import LOG
from registry.membership.members import active_keys
from registry.models import MEMBER_ACTIVE, CatalogEntry, CatalogTaxon, Member

__all__ = [
    "CATALOG_TYP",
    "MAX_ENTRY_SIZE",
    "MAX_PER_PAGE",
    "BBox",
    "InvalidEntry",
    "document_with_signature",
    "get_entry",
    "publish_entry",
    "search",
]

log = logging.getLogger(__name__)

CATALOG_TYP = "corridor-catalog+jwt"
MAX_ENTRY_SIZE = 64 * 1024  # bytes of the compact JWS
MAX_CLOCK_SKEW = 600  # seconds an entry's iat may differ from the registry's clock
MAX_PER_PAGE = 100

PROFILES = frozenset({"camtrap-dp", "dwc-event"})
TIERS = frozenset({"aggregate", "generalized", "full"})
MAX_TITLE = 300
MAX_DESCRIPTION = 4000
MAX_CONTACT = 200
MAX_LICENCE = 200
MAX_TAXA = 1000
MAX_TAXON = 200  # leaves room in catalog_taxa.name (255) for normalisation
MAX_COUNTS = 20
MAX_COUNT_NAME = 64

DOCUMENT_KEYS = frozenset({
    "id", "member_id", "dataset", "country", "title", "description", "profile", "taxa",
    "temporal", "spatial", "counts", "licence", "contact", "tiers", "version",
    "published_at", "iat",
})
#: Optional fields: ``access`` says which purposes and how long the owner's policy
#: allows, so the registry can refuse impossible requests at once.
OPTIONAL_KEYS = frozenset({"access"})
DATASET_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # as node.data.importer.DATASET_NAME_RE
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
# Two decimal numbers with at least two decimals each, side by side: a
# latitude/longitude pair written into free text ("43.1234, 131.5678").
COORDINATE_PAIR_RE = re.compile(
    r"(?<![\d.])[-+]?\d{1,3}\.\d{2,}\s*°?\s*[NSEW]?\s*[,;/ ]\s*[-+]?\d{1,3}\.\d{2,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InvalidEntry(BadRequest):
    """A catalog entry is malformed, badly signed or stale."""

    title = "Invalid catalog entry"


@dataclass(frozen=True)
class BBox:
    """A search rectangle in degrees: west, south, east, north (``west <= east``)."""

    west: float
    south: float
    east: float
    north: float

    def __post_init__(self) -> None:
        """Refuse rectangles outside the globe or upside down."""
        if not (-180 <= self.west <= self.east <= 180 and -90 <= self.south <= self.north <= 90):
            raise BadRequest("bbox must be west,south,east,north with -180 <= west <= east <= 180 "
                             "and -90 <= south <= north <= 90")


# -- checking a document -------------------------------------------------------


def _text(doc: Mapping[str, Any], key: str, limit: int, *, nullable: bool) -> str | None:
    value = doc[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidEntry(f"{key} must be a non-empty string" + (" or null" if nullable else ""))
    if len(value) > limit:
        raise InvalidEntry(f"{key} is longer than {limit} characters")
    if _CONTROL.search(value):
        raise InvalidEntry(f"{key} contains control characters")
    if COORDINATE_PAIR_RE.search(value):
        # DESIGN.md §2.1: the registry holds no coordinate finer than a degree.
        raise InvalidEntry(f"{key} contains what looks like a coordinate pair; "
                           "the catalog holds no coordinates finer than whole degrees")
    return value


def _int(value: Any, key: str, *, minimum: int = 0, maximum: int = 2**53 - 1) -> int:
    # bool is an int subclass; a float such as 51.0 is not a whole-degree integer.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidEntry(f"{key} must be an integer")
    if not minimum <= value <= maximum:
        raise InvalidEntry(f"{key} must be between {minimum} and {maximum}")
    return value


def _date(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        raise InvalidEntry(f"{key} must be an ISO 8601 date (YYYY-MM-DD) or null")
    try:
        date.fromisoformat(value)
    except ValueError as e:
        raise InvalidEntry(f"{key} {value!r} is not a calendar date") from e
    return value


def _object(value: Any, key: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidEntry(f"{key} must be an object")
    if set(value) != keys:
        raise InvalidEntry(f"{key} must have exactly the members {', '.join(sorted(keys))}")
    return value


def _check_bbox(value: Any) -> tuple[int, int, int, int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4:
        raise InvalidEntry("spatial.bbox must be [west, south, east, north] or null")
    names = ("west", "south", "east", "north")
    west, south, east, north = (
        _int(v, f"spatial.bbox {n} (whole degrees)", minimum=-lim, maximum=lim)
        for v, n, lim in zip(value, names, (180, 90, 180, 90), strict=True))
    if west > east:
        raise InvalidEntry("spatial.bbox west must not be east of east")
    if south > north:
        raise InvalidEntry("spatial.bbox south must not be north of north")
    return west, south, east, north


def _check_taxa(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_TAXA:
        raise InvalidEntry(f"taxa must be a list of at most {MAX_TAXA} names")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_TAXON:
            raise InvalidEntry(f"each taxon must be a name of 1-{MAX_TAXON} characters")
        if _CONTROL.search(item) or COORDINATE_PAIR_RE.search(item):
            raise InvalidEntry("a taxon name contains control characters or coordinates")
        names.append(item)
    if len({normalise(n) for n in names}) != len(names):
        raise InvalidEntry("taxa must not repeat a name")
    return names


def _check_counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > MAX_COUNTS:
        raise InvalidEntry(f"counts must be an object of at most {MAX_COUNTS} members")
    for name, count in value.items():
        if not DATASET_RE.fullmatch(name) or len(name) > MAX_COUNT_NAME:
            raise InvalidEntry("count names must be lower-case slugs such as 'observations'")
        _int(count, f"counts.{name}")
    return dict(value)


def _check_tiers(value: Any) -> list[str]:
    if (not isinstance(value, list) or not all(isinstance(t, str) for t in value)
            or not set(value) <= TIERS or len(set(value)) != len(value)):
        raise InvalidEntry(f"tiers must be distinct values of {', '.join(sorted(TIERS))}")
    return list(value)


def _check_access(value: Any) -> None:
    access = _object(value, "access", frozenset({"purposes", "max_duration_days"}))
    purposes = access["purposes"]
    if (not isinstance(purposes, list) or not purposes or len(set(purposes)) != len(purposes)
            or not all(isinstance(p, str) and p in PURPOSES for p in purposes)):
        raise InvalidEntry(f"access.purposes must be distinct values of {', '.join(PURPOSES)}")
    _int(access["max_duration_days"], "access.max_duration_days", minimum=1, maximum=MAX_DAYS)


def _published_at(value: Any) -> datetime:
    if not isinstance(value, str) or not TIMESTAMP_RE.fullmatch(value):
        raise InvalidEntry("published_at must be an ISO 8601 UTC time like 2025-01-31T12:00:00Z")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as e:
        raise InvalidEntry(f"published_at {value!r} is not a valid time") from e


@dataclass(frozen=True)
class _Checked:
    """A document that passed every check, with its typed columns."""

    document: dict[str, Any]
    member_id: str
    dataset: str
    bbox: tuple[int, int, int, int] | None
    temporal: tuple[str | None, str | None]
    taxa: list[str]
    published_at: datetime
    iat: int


def _check_document(doc: Any, *, sender: Member, now: datetime) -> _Checked:
    """Check every field of an entry; the namespace rule raises Forbidden, the rest InvalidEntry."""
    if not isinstance(doc, dict):
        raise InvalidEntry("catalog entry must be a JSON object")
    unknown = set(doc) - DOCUMENT_KEYS - OPTIONAL_KEYS
    if unknown:
        raise InvalidEntry(f"unknown field(s) in catalog entry: {', '.join(sorted(unknown))[:200]}")
    missing = DOCUMENT_KEYS - set(doc)
    if missing:
        raise InvalidEntry(f"catalog entry lacks {', '.join(sorted(missing))}")
    member_id, dataset = doc["member_id"], doc["dataset"]
    if not isinstance(member_id, str) or member_id != sender.member_id:
        raise Forbidden(f"entry for member {str(member_id)[:40]!r} is outside the sender's "
                        f"namespace ({sender.member_id}/...)")
    if not isinstance(dataset, str) or not DATASET_RE.fullmatch(dataset):
        raise InvalidEntry("dataset must be a lower-case slug of 1-64 letters, digits, - or _")
    if doc["id"] != f"{member_id}/{dataset}":
        raise Forbidden(f"entry id must be {member_id}/{dataset}: an entry is published only "
                        "in the sender's own namespace")
    if doc["country"] != sender.country:
        raise InvalidEntry(f"country must be the member's registered country {sender.country}")
    _text(doc, "title", MAX_TITLE, nullable=False)
    _text(doc, "description", MAX_DESCRIPTION, nullable=True)
    _text(doc, "contact", MAX_CONTACT, nullable=True)
    _text(doc, "licence", MAX_LICENCE, nullable=True)
    if doc["profile"] not in PROFILES:
        raise InvalidEntry(f"profile must be one of {', '.join(sorted(PROFILES))}")
    taxa = _check_taxa(doc["taxa"])
    temporal = _object(doc["temporal"], "temporal", frozenset({"start", "end"}))
    start, end = _date(temporal["start"], "temporal.start"), _date(temporal["end"], "temporal.end")
    if start and end and start > end:
        raise InvalidEntry("temporal.start is after temporal.end")
    bbox = _check_bbox(_object(doc["spatial"], "spatial", frozenset({"bbox"}))["bbox"])
    _check_counts(doc["counts"])
    _check_tiers(doc["tiers"])
    if "access" in doc:
        _check_access(doc["access"])
    _int(doc["version"], "version", minimum=1)
    published_at = _published_at(doc["published_at"])
    iat = _int(doc["iat"], "iat")
    if abs(now.timestamp() - iat) > MAX_CLOCK_SKEW:
        raise InvalidEntry("catalog entry is stale or from the future (iat more than "
                           f"{MAX_CLOCK_SKEW // 60} minutes from the registry's clock); "
                           "sign it again now")
    if abs(published_at.timestamp() - iat) > MAX_CLOCK_SKEW:
        raise InvalidEntry("published_at and iat of the entry disagree")
    return _Checked(doc, member_id, dataset, bbox, (start, end), taxa, published_at, iat)


def _verify(jws: str, sender: Member, session: Session) -> Any:
    """Verify the JWS with the sender's active keys; return the parsed, canonical payload."""
    if not isinstance(jws, str):
        raise InvalidEntry("entry must be a compact JWS string")
    try:
        keys = active_keys(session, sender.member_id)
        verified = verify_compact(jws, keys, max_size=MAX_ENTRY_SIZE, expected_typ=CATALOG_TYP)
    except (InvalidKey, InvalidSignature) as e:
        # Opaque to the client (CONVENTIONS.md §5); the reason goes to the log.
        log.info("catalog entry from %s refused: %s", sender.member_id,
                 getattr(e, "reason", str(e)))
        raise InvalidEntry(f"catalog entry signature does not verify with {sender.member_id}'s "
                           f"active keys (or typ is not {CATALOG_TYP})") from e
    try:
        doc = json.loads(verified.payload)
        canonical = canonical_json(doc)
    except (ValueError, TypeError, RecursionError) as e:
        raise InvalidEntry("catalog entry payload is not valid JSON") from e
    # One spelling only: what we store and index is exactly what was signed.
    if canonical != verified.payload:
        raise InvalidEntry("catalog entry payload must be RFC 8785 canonical JSON")
    return doc


def publish_entry(session: Session, jws: str, *, sender: str, now: datetime) -> CatalogEntry:
    """Verify and store a catalog entry sent by ``sender``; a newer entry replaces an older one.

    The caller commits. Re-sending the very same JWS is accepted and changes nothing.
    Logs ``catalog.published`` (``member``, ``dataset``, the entry's ``version``
    and ``tiers``, ``entry_sha256`` of the JWS) in the caller's transaction; a
    re-sent or refused entry logs nothing.

    Raises:
        Forbidden: the sender is not an active member, or the entry is outside its namespace.
        InvalidEntry: bad signature or typ, oversize, malformed, unknown fields, stale iat.
        Conflict: an entry at least as new is already published for this dataset.
    """
    member = session.get(Member, sender)
    if member is None or member.status != MEMBER_ACTIVE:
        raise Forbidden(f"{sender!r} is not an active member and may not publish")
    doc = _verify(jws, member, session)
    checked = _check_document(doc, sender=member, now=now)
    # FOR UPDATE (PostgreSQL): two replacements racing cannot both pass the iat check.
    entry = session.scalars(select(CatalogEntry).where(
        CatalogEntry.member_id == checked.member_id,
        CatalogEntry.dataset == checked.dataset).with_for_update()).first()
    if entry is not None:
        if entry.jws == jws:
            return entry
        if int(entry.document["iat"]) >= checked.iat:
            raise Conflict(f"a catalog entry for {entry.member_id}/{entry.dataset} signed at or "
                           "after this one is already published")
    else:
        entry = CatalogEntry(member_id=checked.member_id, dataset=checked.dataset)
        session.add(entry)
    west, south, east, north = checked.bbox or (None, None, None, None)
    entry.title, entry.description = doc["title"], doc["description"]
    entry.profile, entry.country = doc["profile"], member.country
    entry.temporal_start, entry.temporal_end = checked.temporal
    entry.west, entry.south, entry.east, entry.north = west, south, east, north
    entry.document, entry.jws, entry.published_at = checked.document, jws, checked.published_at
    session.flush()
    session.execute(delete(CatalogTaxon).where(CatalogTaxon.entry_id == entry.id))
    names = set().union(*(names_for(t) for t in checked.taxa)) if checked.taxa else set()
    session.add_all(CatalogTaxon(entry_id=entry.id, name=name) for name in sorted(names))
    session.flush()
    # On the record in the same transaction (the entry, not its contents: it is public).
    LOG.append(session, "catalog.published", now, member=entry.member_id, dataset=entry.dataset,
               version=doc.get("version"), tiers=list(doc.get("tiers") or []),
               entry_sha256=hashlib.sha256(jws.encode("ascii")).hexdigest())
    return entry


# -- reading -------------------------------------------------------------------


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_pattern(text: str) -> str:
    return f"%{_escaped(text)}%"


def _prefix_pattern(text: str) -> str:
    return f"{_escaped(text)}%"


def _filters(*, text: str | None, taxon: str | None, country: str | None,
             date_from: date | None, date_to: date | None,
             bbox: BBox | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Member.status == MEMBER_ACTIVE]
    if text:
        pattern = _like_pattern(text)
        conditions.append(or_(
            CatalogEntry.title.ilike(pattern, escape="\\"),
            CatalogEntry.description.ilike(pattern, escape="\\"),
            (CatalogEntry.member_id + "/" + CatalogEntry.dataset).ilike(pattern, escape="\\"),
        ))
    if taxon:
        wanted = search_names(taxon)
        below = [CatalogTaxon.name.like(_prefix_pattern(p), escape="\\")
                 for p in sorted(wanted.prefixes)]
        conditions.append(CatalogEntry.id.in_(select(CatalogTaxon.entry_id).where(
            or_(CatalogTaxon.name.in_(sorted(wanted.names)), *below))))
    if country:
        conditions.append(Member.country == country.upper())
    # Overlap of [date_from, date_to] with the entry's coverage; ISO dates sort as text.
    if date_from:
        conditions.append(CatalogEntry.temporal_end >= date_from.isoformat())
    if date_to:
        conditions.append(CatalogEntry.temporal_start <= date_to.isoformat())
    if bbox:
        conditions += [CatalogEntry.west <= bbox.east, CatalogEntry.east >= bbox.west,
                       CatalogEntry.south <= bbox.north, CatalogEntry.north >= bbox.south]
    return conditions


def search(session: Session, *, text: str | None = None, taxon: str | None = None,
           country: str | None = None, date_from: date | None = None,
           date_to: date | None = None, bbox: BBox | None = None, page: int = 1,
           per_page: int = 20) -> tuple[list[CatalogEntry], int]:
    """Entries of active members matching every given filter, by id; and the total count.

    ``text`` matches title, description or id (case-insensitive substring);
    ``taxon`` matches any name of the taxon, the species below a genus, family,
    order or class, and common names (:func:`policies.taxonomy.search_names`);
    ``country`` is the member's; the date range and ``bbox`` must overlap the entry's coverage.

    Raises:
        BadRequest: ``page`` < 1, ``per_page`` outside 1..100, or ``date_from`` > ``date_to``.
    """
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise BadRequest(f"page must be >= 1 and per_page 1..{MAX_PER_PAGE}")
    if date_from and date_to and date_from > date_to:
        raise BadRequest("from must not be after to")
    conditions = _filters(text=text, taxon=taxon, country=country, date_from=date_from,
                          date_to=date_to, bbox=bbox)
    base = select(CatalogEntry).join(Member, Member.member_id == CatalogEntry.member_id).where(
        *conditions)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    member_col, dataset_col = CatalogEntry.member_id, CatalogEntry.dataset
    if session.get_bind().dialect.name == "postgresql":
        # Byte order, as on SQLite: locale collations ignore '-' and '_'.
        member_col, dataset_col = member_col.collate("C"), dataset_col.collate("C")  # type: ignore[assignment]
    rows = session.scalars(base.order_by(member_col, dataset_col)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), int(total)


def get_entry(session: Session, member: str, dataset: str) -> CatalogEntry:
    """One entry of an active member.

    Raises:
        NotFound: no such entry, or its member is not active.
    """
    entry = session.scalars(
        select(CatalogEntry).join(Member, Member.member_id == CatalogEntry.member_id).where(
            CatalogEntry.member_id == member, CatalogEntry.dataset == dataset,
            Member.status == MEMBER_ACTIVE)).first()
    if entry is None:
        raise NotFound(f"no catalog entry {member[:40]}/{dataset[:64]}")
    return entry


def document_with_signature(entry: CatalogEntry) -> dict[str, Any]:
    """The entry as served: the signed document plus ``signature`` (the JWS to re-verify)."""
    return {**entry.document, "signature": entry.jws}

