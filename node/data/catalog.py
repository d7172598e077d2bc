"""Catalog entries: the signed description of a dataset that a node publishes to the registry.

An entry says *that* a dataset exists and roughly what it covers, so partners
can find it and ask for access. It never carries a row, an identifier of a
deployment, medium, observation or individual, or a coordinate finer than a
whole degree (DESIGN.md §2.1): the bounding box is rounded outward to whole
degrees here, before signing, and the registry refuses anything finer.

The entry is RFC 8785 canonical JSON signed as a compact JWS with the node's
key (``typ`` = :data:`CATALOG_TYP`); the registry verifies it with the
member's keys and keeps the JWS so anyone can re-verify it offline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crypto.canonical import canonical_json
from crypto.jws import sign_compact
from crypto.keys import SigningKey
from node.models import Dataset
from policies.disclosure import rounded_outward
from policies.policy import PURPOSES, Policy
from policies.taxonomy import accepted_name

__all__ = ["CATALOG_TYP", "TIERS", "catalog_entry", "rounded_bbox", "sign_entry"]

CATALOG_TYP = "corridor-catalog+jwt"

#: Access tiers a dataset can be requested under (DESIGN.md §8-9).
TIERS = ("aggregate", "generalized", "full")

# Bounds the registry enforces on free text (characters); longer descriptions
# are shortened here rather than refused there.
MAX_TITLE = 300
MAX_DESCRIPTION = 4000
MAX_CONTACT = 200
MAX_LICENCE = 200


def rounded_bbox(west: float, south: float, east: float,
                 north: float) -> tuple[int, int, int, int]:
    """A bounding box rounded outward to whole degrees (it contains the original one).

    The catalog's precision, and the finest any public metadata gives; see
    :func:`policies.disclosure.rounded_outward` (a box of no width or height
    is widened to one degree, inside ±180° / ±90°).
    """
    w, s, e, n = rounded_outward(west, south, east, north, 1.0)
    return int(w), int(s), int(e), int(n)


def _licence(licenses: Sequence[Any]) -> str | None:
    """The data licence: the first with ``scope`` = ``data``, else the first; name or path."""
    objects = [lic for lic in licenses if isinstance(lic, Mapping)]
    if not objects:
        return None
    chosen = next((lic for lic in objects if lic.get("scope") == "data"), objects[0])
    for key in ("name", "path", "title"):
        value = chosen.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_LICENCE]
    return None


def _shorten(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def catalog_entry(dataset: Dataset, *, member_id: str, country: str, contact: str | None,
                  tiers: Sequence[str], now: datetime,
                  policy: Policy | None = None) -> dict[str, Any]:
    """Build the catalog entry of ``dataset`` (the current version) as published by ``member_id``.

    With ``policy``, the entry says which purposes and how many days the
    owner allows (``access``), so the registry can refuse impossible requests.

    Raises:
        ValueError: ``now`` is naive, a tier is unknown or repeated, or ``contact``
            is longer than the registry accepts.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    unknown = [t for t in tiers if t not in TIERS]
    if unknown or len(set(tiers)) != len(tiers):
        raise ValueError(f"tiers must be distinct values of {', '.join(TIERS)}; got {list(tiers)}")
    if contact is not None and len(contact) > MAX_CONTACT:
        raise ValueError(f"contact is longer than {MAX_CONTACT} characters")
    bbox: list[int] | None = None
    corners = (dataset.bbox_west, dataset.bbox_south, dataset.bbox_east, dataset.bbox_north)
    if all(c is not None for c in corners):
        west, south, east, north = (float(c) for c in corners)  # type: ignore[arg-type]
        bbox = list(rounded_bbox(west, south, east, north))
    taxa = sorted({accepted_name(t) for t in dataset.taxa or [] if t and t.strip()})
    utc = now.astimezone(UTC)
    entry: dict[str, Any] = {
        "id": f"{member_id}/{dataset.name}",
        "member_id": member_id,
        "dataset": dataset.name,
        "country": country,
        "title": _shorten(dataset.title, MAX_TITLE) or dataset.name,
        "description": _shorten(dataset.description, MAX_DESCRIPTION),
        "profile": dataset.profile,
        "taxa": taxa,
        "temporal": {"start": dataset.temporal_start, "end": dataset.temporal_end},
        "spatial": {"bbox": bbox},
        "counts": {str(k): int(v) for k, v in sorted((dataset.counts or {}).items())},
        "licence": _licence(dataset.licenses or []),
        "contact": contact,
        "tiers": [t for t in TIERS if t in tiers],
        "version": dataset.version,
        "published_at": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "iat": int(utc.timestamp()),
    }
    if policy is not None:
        entry["access"] = {"purposes": [p for p in PURPOSES if p in policy.purposes],
                           "max_duration_days": policy.max_duration_days}
    return entry


def sign_entry(entry: Mapping[str, Any], key: SigningKey) -> str:
    """Sign ``entry`` as a compact JWS over its RFC 8785 canonical JSON."""
    return sign_compact(canonical_json(entry), key, typ=CATALOG_TYP)
