"""The registry's tables: members and keys, trust-list versions, the catalog, tokens, agreements.

Nothing here can hold an observation, a media record or a coordinate finer
than a whole degree (DESIGN.md §2.1): catalog entries keep only descriptive
metadata and a bounding box rounded outward to whole degrees.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from corridor.agreement_store import AgreementColumns, AgreementEventColumns
from corridor.db import UTCDateTime, metadata
from corridor.login_guard import LoginFailureColumns, WebSessionColumns
from corridor.tlog import LogCheckpointColumns, LogEntryColumns, LogHeadColumns, LogNodeColumns
from corridor.users import AccountColumns

MEMBER_PENDING = "pending"
MEMBER_ACTIVE = "active"
MEMBER_SUSPENDED = "suspended"


class Base(DeclarativeBase):
    """Declarative base of every registry table."""

    metadata = metadata()


class Member(Base):
    """A member institution (or one that asked to join)."""

    __tablename__ = "members"

    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    country: Mapped[str] = mapped_column(String(2))
    node_url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=MEMBER_PENDING)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The signed membership request, kept as evidence of who asked for what.
    request_jws: Mapped[str] = mapped_column(Text)


class MemberKey(Base):
    """One public signing key of a member (several overlap during rotation)."""

    __tablename__ = "member_keys"

    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.member_id", ondelete="CASCADE"), primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TrustListVersion(Base):
    """Every trust list the registry ever signed, by version (never rewritten)."""

    __tablename__ = "trust_lists"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    jws: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class CatalogEntry(Base):
    """A dataset description published (and signed) by its owner's node."""

    __tablename__ = "catalog"
    __table_args__ = (UniqueConstraint("member_id", "dataset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.member_id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    profile: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    temporal_start: Mapped[str | None] = mapped_column(String(10))
    temporal_end: Mapped[str | None] = mapped_column(String(10))
    # Whole degrees, rounded outward by the publisher and checked here.
    west: Mapped[int | None] = mapped_column(Integer)
    south: Mapped[int | None] = mapped_column(Integer)
    east: Mapped[int | None] = mapped_column(Integer)
    north: Mapped[int | None] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    jws: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CatalogTaxon(Base):
    """Taxa of a catalog entry, normalised for search (accepted names and synonyms)."""

    __tablename__ = "catalog_taxa"
    __table_args__ = (Index(None, "name"),)

    entry_id: Mapped[int] = mapped_column(ForeignKey("catalog.id", ondelete="CASCADE"),
                                          primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)


class UsedAssertion(Base):
    """``jti`` of client assertions already used (RFC 7523 §3: single use)."""

    __tablename__ = "used_assertions"

    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class IssuedToken(Base):
    """Every access token issued (its claims, never the token itself)."""

    __tablename__ = "issued_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(40), index=True)
    audience: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The agreement a fetch token was issued for (None for other tokens).
    agreement: Mapped[str | None] = mapped_column(String(80), index=True)


class Agreement(AgreementColumns, Base):
    """A data-use agreement as the registry relays it (the parties' signed events)."""

    __tablename__ = "agreements"


class AgreementEvent(AgreementEventColumns, Base):
    """One signed event of an agreement (append-only)."""

    __tablename__ = "agreement_events"


class User(AccountColumns, Base):
    """A person who signs in to the registry's audit pages and API (auditor or admin)."""

    __tablename__ = "users"


class LogEntry(LogEntryColumns, Base):
    """One entry of the registry's exchange log (append-only)."""

    __tablename__ = "log_entries"


class LogNode(LogNodeColumns, Base):
    """A completed Merkle subtree of the registry's log."""

    __tablename__ = "log_nodes"


class LogHead(LogHeadColumns, Base):
    """The size of the registry's log (one row)."""

    __tablename__ = "log_head"


class LogCheckpoint(LogCheckpointColumns, Base):
    """A checkpoint the registry signed of its own log."""

    __tablename__ = "log_checkpoints"


class WitnessedCheckpoint(Base):
    """The newest checkpoint of a member's log that the registry cosigned (one per member).

    Replaced only by a checkpoint proven consistent with it, through a
    compare-and-swap on ``(size, root)``.
    """

    __tablename__ = "witnessed_checkpoints"

    member: Mapped[str] = mapped_column(String(40), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)  # with the registry's cosignature
    cosigned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WitnessRefusal(Base):
    """Evidence kept when a member offered a checkpoint inconsistent with the one cosigned."""

    __tablename__ = "witness_refusals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    cosigned_note: Mapped[str | None] = mapped_column(Text)
    offered_note: Mapped[str] = mapped_column(Text)
    proof: Mapped[list[str]] = mapped_column(JSON)


class LoginFailure(LoginFailureColumns, Base):
    """Failed sign-ins counted per account and per client address (corridor.login_guard)."""

    __tablename__ = "login_failures"


class WebSession(WebSessionColumns, Base):
    """A signed-in web session, by the SHA-256 of its id (corridor.login_guard)."""

    __tablename__ = "web_sessions"
