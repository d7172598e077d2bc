"""The node's tables: datasets, Camtrap DP 1.0.2 resources and Darwin Core events.

Camera-trap tables carry every field of the published Camtrap DP 1.0.2 table
schemas under the same name and type (``tests/node/test_models.py`` checks
this against the bundled schema files). Datetimes are kept twice: the verbatim
ISO 8601 text with its original offset (what the field *is*, so exports
round-trip exactly) and a ``*_utc`` companion used for every comparison
(DESIGN.md §4: keep the offset, compare in UTC).

Every row belongs to one dataset *version*; re-importing a dataset creates a
new version and never mixes rows. ``source_row`` keeps each row's position in
its source file, so exports are stable and reproduce the source order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from corridor.agreement_store import AgreementColumns, AgreementEventColumns
from corridor.db import UTCDateTime
from corridor.login_guard import LoginFailureColumns, WebSessionColumns
from corridor.tlog import LogCheckpointColumns, LogEntryColumns, LogHeadColumns, LogNodeColumns
from node.db import Base

PROFILE_CAMTRAP = "camtrap-dp"
PROFILE_DWC_EVENT = "dwc-event"

ISO_TEXT = String(40)


class Dataset(Base):
    """One imported version of a dataset, with its package metadata."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    profile: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    contributors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    licenses: Mapped[list[Any]] = mapped_column(JSON, default=list)
    taxa: Mapped[list[str]] = mapped_column(JSON, default=list)
    temporal_start: Mapped[str | None] = mapped_column(String(10))
    temporal_end: Mapped[str | None] = mapped_column(String(10))
    bbox_west: Mapped[float | None] = mapped_column(Float)
    bbox_south: Mapped[float | None] = mapped_column(Float)
    bbox_east: Mapped[float | None] = mapped_column(Float)
    bbox_north: Mapped[float | None] = mapped_column(Float)
    package_version: Mapped[str | None] = mapped_column(String(64))
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # The source package descriptor without inline data (``datapackage.json``),
    # or for Darwin Core the column lists of the source files.
    descriptor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _dataset_fk() -> Mapped[int]:
    return mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True, index=False
    )


class Deployment(Base):
    """Camtrap DP ``deployments``: one camera placement."""

    __tablename__ = "deployments"

    dataset_id: Mapped[int] = _dataset_fk()
    deploymentID: Mapped[str] = mapped_column(String(128), primary_key=True)
    locationID: Mapped[str | None] = mapped_column(Text)
    locationName: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    coordinateUncertainty: Mapped[int | None] = mapped_column(Integer)
    deploymentStart: Mapped[str] = mapped_column(ISO_TEXT)
    deploymentEnd: Mapped[str] = mapped_column(ISO_TEXT)
    setupBy: Mapped[str | None] = mapped_column(Text)
    cameraID: Mapped[str | None] = mapped_column(Text)
    cameraModel: Mapped[str | None] = mapped_column(Text)
    cameraDelay: Mapped[int | None] = mapped_column(Integer)
    cameraHeight: Mapped[float | None] = mapped_column(Float)
    cameraDepth: Mapped[float | None] = mapped_column(Float)
    cameraTilt: Mapped[int | None] = mapped_column(Integer)
    cameraHeading: Mapped[int | None] = mapped_column(Integer)
    detectionDistance: Mapped[float | None] = mapped_column(Float)
    timestampIssues: Mapped[bool | None] = mapped_column(Boolean)
    baitUse: Mapped[bool | None] = mapped_column(Boolean)
    featureType: Mapped[str | None] = mapped_column(String(32))
    habitat: Mapped[str | None] = mapped_column(Text)
    deploymentGroups: Mapped[str | None] = mapped_column(Text)
    deploymentTags: Mapped[str | None] = mapped_column(Text)
    deploymentComments: Mapped[str | None] = mapped_column(Text)
    deploymentStart_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    deploymentEnd_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    source_row: Mapped[int] = mapped_column(Integer)  # position in the source file


class Media(Base):
    """Camtrap DP ``media``: one image or video file."""

    __tablename__ = "media"
    __table_args__ = (
        ForeignKeyConstraint(
            ["dataset_id", "deploymentID"], ["deployments.dataset_id", "deployments.deploymentID"]
        ),
        Index(None, "dataset_id", "deploymentID"),
        Index(None, "dataset_id", "source_row"),  # exports stream in source order
    )

    dataset_id: Mapped[int] = _dataset_fk()
    mediaID: Mapped[str] = mapped_column(String(128), primary_key=True)
    deploymentID: Mapped[str] = mapped_column(String(128))
    captureMethod: Mapped[str | None] = mapped_column(String(32))
    timestamp: Mapped[str] = mapped_column(ISO_TEXT)
    filePath: Mapped[str] = mapped_column(Text)
    filePublic: Mapped[bool] = mapped_column(Boolean)
    fileName: Mapped[str | None] = mapped_column(Text)
    fileMediatype: Mapped[str] = mapped_column(String(64))
    exifData: Mapped[str | None] = mapped_column(Text)
    favorite: Mapped[bool | None] = mapped_column(Boolean)
    mediaComments: Mapped[str | None] = mapped_column(Text)
    timestamp_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    source_row: Mapped[int] = mapped_column(Integer)  # position in the source file


class Observation(Base):
    """Camtrap DP ``observations``: what was seen in media or events."""

    __tablename__ = "observations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["dataset_id", "deploymentID"], ["deployments.dataset_id", "deployments.deploymentID"]
        ),
        ForeignKeyConstraint(["dataset_id", "mediaID"], ["media.dataset_id", "media.mediaID"]),
        # The closure of a release probes observations by camera and start time, by
        # medium and by individual (node/exchange/package.py).
        Index(None, "dataset_id", "deploymentID", "eventStart_utc"),
        Index(None, "dataset_id", "mediaID"),
        Index(None, "dataset_id", "individualID"),
        Index(None, "dataset_id", "eventStart_utc"),
        Index(None, "dataset_id", "scientificName"),
        Index(None, "dataset_id", "source_row"),  # exports stream in source order
    )

    dataset_id: Mapped[int] = _dataset_fk()
    observationID: Mapped[str] = mapped_column(String(128), primary_key=True)
    deploymentID: Mapped[str] = mapped_column(String(128))
    mediaID: Mapped[str | None] = mapped_column(String(128))
    eventID: Mapped[str | None] = mapped_column(String(128))
    eventStart: Mapped[str] = mapped_column(ISO_TEXT)
    eventEnd: Mapped[str] = mapped_column(ISO_TEXT)
    observationLevel: Mapped[str] = mapped_column(String(16))
    observationType: Mapped[str] = mapped_column(String(16))
    cameraSetupType: Mapped[str | None] = mapped_column(String(16))
    scientificName: Mapped[str | None] = mapped_column(String(255))
    count: Mapped[int | None] = mapped_column(Integer)
    lifeStage: Mapped[str | None] = mapped_column(String(16))
    sex: Mapped[str | None] = mapped_column(String(16))
    behavior: Mapped[str | None] = mapped_column(Text)
    individualID: Mapped[str | None] = mapped_column(String(128))
    individualPositionRadius: Mapped[float | None] = mapped_column(Float)
    individualPositionAngle: Mapped[float | None] = mapped_column(Float)
    individualSpeed: Mapped[float | None] = mapped_column(Float)
    bboxX: Mapped[float | None] = mapped_column(Float)
    bboxY: Mapped[float | None] = mapped_column(Float)
    bboxWidth: Mapped[float | None] = mapped_column(Float)
    bboxHeight: Mapped[float | None] = mapped_column(Float)
    classificationMethod: Mapped[str | None] = mapped_column(String(16))
    classifiedBy: Mapped[str | None] = mapped_column(Text)
    classificationTimestamp: Mapped[str | None] = mapped_column(ISO_TEXT)
    classificationProbability: Mapped[float | None] = mapped_column(Float)
    observationTags: Mapped[str | None] = mapped_column(Text)
    observationComments: Mapped[str | None] = mapped_column(Text)
    eventStart_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    eventEnd_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    classificationTimestamp_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source_row: Mapped[int] = mapped_column(Integer)  # position in the source file


class Individual(Base):
    """Recognised individual animals (the extra ``individuals`` resource)."""

    __tablename__ = "individuals"

    dataset_id: Mapped[int] = _dataset_fk()
    individualID: Mapped[str] = mapped_column(String(128), primary_key=True)
    scientificName: Mapped[str | None] = mapped_column(String(255))
    # The source row verbatim (all its columns), so exports reproduce it exactly.
    record: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Event(Base):
    """Darwin Core sampling event (``event`` core)."""

    __tablename__ = "events"

    dataset_id: Mapped[int] = _dataset_fk()
    eventID: Mapped[str] = mapped_column(String(255), primary_key=True)
    parentEventID: Mapped[str | None] = mapped_column(String(255))
    eventDate: Mapped[str | None] = mapped_column(String(64))
    samplingProtocol: Mapped[str | None] = mapped_column(Text)
    locationID: Mapped[str | None] = mapped_column(String(255))
    locality: Mapped[str | None] = mapped_column(Text)
    countryCode: Mapped[str | None] = mapped_column(String(2))
    decimalLatitude: Mapped[float | None] = mapped_column(Float)
    decimalLongitude: Mapped[float | None] = mapped_column(Float)
    coordinateUncertaintyInMeters: Mapped[float | None] = mapped_column(Float)
    eventDate_start_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    eventDate_end_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source_row: Mapped[int] = mapped_column(Integer)  # position in the source file
    # Every term of the source row verbatim, in the source's own column set.
    terms: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class Occurrence(Base):
    """Darwin Core occurrence linked to a sampling event."""

    __tablename__ = "occurrences"
    __table_args__ = (
        ForeignKeyConstraint(["dataset_id", "eventID"], ["events.dataset_id", "events.eventID"]),
        Index(None, "dataset_id", "eventID"),
        Index(None, "dataset_id", "scientificName"),
    )

    dataset_id: Mapped[int] = _dataset_fk()
    occurrenceID: Mapped[str] = mapped_column(String(255), primary_key=True)
    eventID: Mapped[str] = mapped_column(String(255))
    basisOfRecord: Mapped[str | None] = mapped_column(String(64))
    scientificName: Mapped[str | None] = mapped_column(String(255))
    taxonRank: Mapped[str | None] = mapped_column(String(64))
    individualCount: Mapped[int | None] = mapped_column(Integer)
    occurrenceStatus: Mapped[str | None] = mapped_column(String(16))
    source_row: Mapped[int] = mapped_column(Integer)  # position in the source file
    terms: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class DatasetPolicy(Base):
    """The owner's policy for a dataset (by name; applies to every version)."""

    __tablename__ = "dataset_policies"

    dataset: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Agreement(AgreementColumns, Base):
    """A data-use agreement this node is a party to. For the provider, this copy is the law."""

    __tablename__ = "agreements"

    role: Mapped[str] = mapped_column(String(16))  # this node's role: provider | requester
    # How many of the events the registry is known to hold (the rest wait for the next push).
    pushed: Mapped[int] = mapped_column(Integer, default=0)
    # When this copy was last checked against the registry's (None: never).
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AgreementEvent(AgreementEventColumns, Base):
    """One signed event of an agreement (append-only)."""

    __tablename__ = "agreement_events"


class Receipt(Base):
    """A package received under an agreement, verified before it was kept."""

    __tablename__ = "receipts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(80), index=True)
    provider: Mapped[str] = mapped_column(String(40))
    package_sha256: Mapped[str] = mapped_column(String(64))
    descriptor_sha256: Mapped[str] = mapped_column(String(64))
    plan_digest: Mapped[str | None] = mapped_column(String(80))
    since: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[str | None] = mapped_column(Text)
    rows: Mapped[dict[str, int]] = mapped_column(JSON)
    path: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The provider's log index of its "package served" entry (from the descriptor).
    served_index: Mapped[int | None] = mapped_column(Integer)


class Link(Base):
    """One entry of the cross-border match ledger: "my animal X is your animal Y".

    ``local_id`` is this node's individual, ``other_id`` the other member's.
    The signed messages are kept verbatim (compact JWS): the proposal by its
    proposer, the decision (confirmation or rejection) by the counterpart, a
    retraction by either; a confirmed link carries both nodes' signatures.
    ``outbox`` holds this node's messages not yet delivered to the other node.
    """

    __tablename__ = "links"
    __table_args__ = (Index(None, "other_member", "other_id"), Index(None, "local_id"))

    link_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    proposer: Mapped[str] = mapped_column(String(40))
    other_member: Mapped[str] = mapped_column(String(40))
    local_id: Mapped[str] = mapped_column(String(128))
    other_id: Mapped[str] = mapped_column(String(128))
    taxon: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))  # proposed|confirmed|rejected|retracted
    method: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    proposal: Mapped[str] = mapped_column(Text)
    decision: Mapped[str | None] = mapped_column(Text)
    retraction: Mapped[str | None] = mapped_column(Text)
    outbox: Mapped[list[str]] = mapped_column(JSON, default=list)
    delivery_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class User(Base):
    """A person who signs in to the node's web pages."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))  # owner | auditor | admin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LogEntry(LogEntryColumns, Base):
    """One entry of the node's exchange log (append-only)."""

    __tablename__ = "log_entries"


class LogNode(LogNodeColumns, Base):
    """A completed Merkle subtree of the node's log."""

    __tablename__ = "log_nodes"


class LogHead(LogHeadColumns, Base):
    """The size of the node's log (one row)."""

    __tablename__ = "log_head"


class LogCheckpoint(LogCheckpointColumns, Base):
    """A checkpoint the node signed, with the registry's cosignature once witnessed."""

    __tablename__ = "log_checkpoints"


class LoginFailure(LoginFailureColumns, Base):
    """Failed sign-ins counted per account and per client address (corridor.login_guard)."""

    __tablename__ = "login_failures"


class WebSession(WebSessionColumns, Base):
    """A signed-in web session, by the SHA-256 of its id (corridor.login_guard)."""

    __tablename__ = "web_sessions"
