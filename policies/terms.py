"""Agreement terms: what a partner asks for, and the check that they only narrow the policy.

Terms name a purpose and a tier the owner offers; everything else (taxa, a
time window, an area, fields, a duration) is a filter that can only make the
release smaller. :func:`check_terms` refuses terms that ask for more than the
policy gives, with :class:`~policies.errors.TermsRefused` naming the field.

The check is a combination of small checks, each with one method, combined
explicitly in :data:`STANDARD_CHECKS`; an empty combination refuses every
request (CONVENTIONS.md §6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any, Protocol

from policies.errors import PolicyError, TermsRefused
from policies.policy import (
    MAX_DAYS,
    PURPOSES,
    RESOURCE_FIELDS,
    RESOURCES,
    Policy,
    validate_fields,
)
from policies.taxonomy import accepted_name, normalise

__all__ = [
    "STANDARD_CHECKS",
    "AllOf",
    "DurationWithinMax",
    "FieldsNotWithheld",
    "PurposeAllowed",
    "RequesterIsPartner",
    "Terms",
    "TermsCheck",
    "TierOffered",
    "check_terms",
    "load_terms",
]

_TERMS_KEYS = ("purpose", "tier", "taxa", "time_from", "time_to", "bbox", "fields",
               "duration_days")
_REQUIRED = ("purpose", "tier")


@dataclass(frozen=True)
class Terms:
    """What an agreement grants, within the owner's policy.

    ``taxa`` holds accepted scientific names (synonyms are matched when the
    plan is compiled); ``time_from`` and ``time_to`` are inclusive UTC dates;
    ``bbox`` is (west, south, east, north) in decimal degrees; ``fields`` maps
    a resource to the fields wanted from it (resources not named: every field
    the tier allows). ``None`` means no narrowing. ``duration_days`` ``None``
    means up to the policy's ``max_duration_days``.
    """

    purpose: str
    tier: str
    taxa: frozenset[str] | None = None
    time_from: date | None = None
    time_to: date | None = None
    bbox: tuple[float, float, float, float] | None = None
    fields: Mapping[str, frozenset[str]] | None = None
    duration_days: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The terms as a document :func:`load_terms` reads back to equal terms."""
        return {
            "purpose": self.purpose,
            "tier": self.tier,
            "taxa": None if self.taxa is None else sorted(self.taxa),
            "time_from": None if self.time_from is None else self.time_from.isoformat(),
            "time_to": None if self.time_to is None else self.time_to.isoformat(),
            "bbox": None if self.bbox is None else list(self.bbox),
            "fields": None if self.fields is None else {
                r: sorted(f) for r, f in sorted(self.fields.items())},
            "duration_days": self.duration_days,
        }


def load_terms(data: Mapping[str, Any]) -> Terms:
    """Validate a parsed terms document and return :class:`Terms`.

    Absent keys and ``null`` values mean "no narrowing". Dates are
    ``YYYY-MM-DD`` strings (or :class:`datetime.date`, as YAML gives them).

    :raises PolicyError: naming the dotted field, for an unknown or missing
        key, a wrong type, an unknown purpose, resource or field, an empty
        list, a taxon listed twice, a reversed time window or a bad box.
    """
    if not isinstance(data, Mapping):
        raise PolicyError("terms", "must be a mapping")
    for key in data:
        if key not in _TERMS_KEYS:
            raise PolicyError(str(key), "unknown key; allowed: " + ", ".join(_TERMS_KEYS))
    for key in _REQUIRED:
        if key not in data:
            raise PolicyError(key, "required key is missing")

    purpose = data["purpose"]
    if not isinstance(purpose, str) or purpose not in PURPOSES:
        raise PolicyError("purpose", f"{purpose!r} is not one of " + ", ".join(PURPOSES))
    tier = data["tier"]
    if not isinstance(tier, str) or not tier:
        raise PolicyError("tier", "must be the name of a tier")

    time_from = _date(data.get("time_from"), "time_from")
    time_to = _date(data.get("time_to"), "time_to")
    if time_from is not None and time_to is not None and time_to < time_from:
        raise PolicyError("time_to", f"{time_to} is before time_from {time_from}")

    duration = data.get("duration_days")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)
                                 or not 0 < duration <= MAX_DAYS):
        raise PolicyError("duration_days", f"must be a whole number of days, 1 to {MAX_DAYS}")

    return Terms(purpose=purpose, tier=tier, taxa=_taxa(data.get("taxa")),
                 time_from=time_from, time_to=time_to, bbox=_bbox(data.get("bbox")),
                 fields=_fields(data.get("fields")), duration_days=duration)


def _date(value: Any, where: str) -> date | None:
    if value is None:
        return None
    # datetime is a date subclass; a time of day would be silently dropped.
    if isinstance(value, date) and type(value) is date:
        return value
    if isinstance(value, str):
        try:
            if len(value) == 10:
                return date.fromisoformat(value)
        except ValueError:
            pass
    raise PolicyError(where, f"{value!r} is not a date like 2024-05-30")


def _taxa(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise PolicyError("taxa", "must be a list of scientific names")
    if not value:
        raise PolicyError("taxa", "an empty list would release nothing; leave taxa out for all")
    seen: dict[str, str] = {}
    for name in value:
        if not isinstance(name, str) or not normalise(name):
            raise PolicyError("taxa", f"{name!r} is not a scientific name")
        accepted = accepted_name(name)
        if accepted in seen:
            raise PolicyError(f"taxa.{name}", f"same taxon as {seen[accepted]!r}, listed twice")
        seen[accepted] = name
    return frozenset(seen)


def _bbox(value: Any) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise PolicyError("bbox", "must be [west, south, east, north] in decimal degrees")
    for number in value:
        if (isinstance(number, bool) or not isinstance(number, int | float)
                or not math.isfinite(number)):
            raise PolicyError("bbox", f"{number!r} is not a number of degrees")
    west, south, east, north = (float(v) for v in value)
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise PolicyError("bbox", "longitudes must be between -180 and 180")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise PolicyError("bbox", "latitudes must be between -90 and 90")
    if south >= north:
        raise PolicyError("bbox", "south must be less than north")
    if west >= east:
        raise PolicyError("bbox", "west must be less than east (boxes across the antimeridian"
                                  " are not supported)")
    return west, south, east, north


def _fields(value: Any) -> Mapping[str, frozenset[str]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise PolicyError("fields", "must map resources to lists of field names")
    out: dict[str, frozenset[str]] = {}
    for resource, names in value.items():
        if resource not in RESOURCE_FIELDS:
            raise PolicyError(f"fields.{resource}", "unknown resource; one of "
                              + ", ".join(RESOURCES))
        out[resource] = validate_fields(resource, names, f"fields.{resource}",
                                        withholding=False)
    return MappingProxyType(out)


# --- checks ------------------------------------------------------------------------------


class TermsCheck(Protocol):
    """One rule terms must satisfy; raises :class:`TermsRefused` or returns."""

    def check(self, policy: Policy, terms: Terms, requester: str) -> None:
        """Refuse ``terms`` asked by ``requester`` if they break this rule."""


class PurposeAllowed:
    """The purpose is one the owner allows."""

    def check(self, policy: Policy, terms: Terms, requester: str) -> None:
        """Refuse a purpose outside ``policy.purposes``."""
        if terms.purpose not in policy.purposes:
            raise TermsRefused("purpose", f"purpose {terms.purpose!r} is not allowed by this"
                               " dataset's policy (allowed: "
                               + ", ".join(p for p in PURPOSES if p in policy.purposes) + ")")


class TierOffered:
    """The tier is one the owner offers."""

    def check(self, policy: Policy, terms: Terms, requester: str) -> None:
        """Refuse a tier the policy does not define."""
        if terms.tier not in policy.tiers:
            raise TermsRefused("tier", f"tier {terms.tier!r} is not offered (offered: "
                               + ", ".join(sorted(policy.tiers)) + ")")


class RequesterIsPartner:
    """The requester is one of the partners the owner lists (or the policy says ``*``)."""

    def check(self, policy: Policy, terms: Terms, requester: str) -> None:
        """Refuse a requester outside ``policy.partners``."""
        if not requester or not policy.allows_partner(requester):
            raise TermsRefused("requester", f"{requester!r} is not a partner this dataset's"
                               " policy allows to request access")


class DurationWithinMax:
    """The agreement lasts no longer than the policy's ``max_duration_days``."""

    def check(self, policy: Policy, terms: Terms, requester: str) -> None:
        """Refuse a duration above the maximum (``None`` means the maximum)."""
        if terms.duration_days is not None and terms.duration_days > policy.max_duration_days:
            raise TermsRefused("duration_days", f"{terms.duration_days} days is longer than the"
                               f" policy allows ({policy.max_duration_days} days)")


class FieldsNotWithheld:
    """The terms ask for no field the tier withholds, and for none in an aggregate tier."""

    def check(self, policy: Policy, terms: Terms, requester: str) -> None:
        """Refuse fields the tier withholds (the tier must be offered)."""
        if terms.fields is None:
            return
        tier = policy.tiers.get(terms.tier)
        if tier is None:
            raise TermsRefused("tier", f"tier {terms.tier!r} is not offered")
        if tier.aggregate_only and terms.fields:
            raise TermsRefused("fields", f"terms would widen the policy: tier {tier.name} is"
                               " aggregate-only and releases no fields")
        for resource in RESOURCES:
            asked = terms.fields.get(resource, frozenset())
            for name in sorted(asked & tier.withheld(resource)):
                raise TermsRefused(f"fields.{resource}.{name}", "terms would widen the policy:"
                                   f" {resource}.{name} is withheld in tier {tier.name}")


class AllOf:
    """Every check must pass, in order; with no checks at all, every request is refused."""

    def __init__(self, *checks: TermsCheck) -> None:
        """Combine ``checks``, run in the order given."""
        self.checks = checks

    def check(self, policy: Policy, terms: Terms, requester: str) -> None:
        """Run every check; the first refusal propagates."""
        if not self.checks:
            raise TermsRefused("terms", "no checks are configured, so nothing can be granted")
        for rule in self.checks:
            rule.check(policy, terms, requester)


#: The checks :func:`check_terms` applies, in the order their refusals are reported.
STANDARD_CHECKS = AllOf(PurposeAllowed(), TierOffered(), RequesterIsPartner(),
                        DurationWithinMax(), FieldsNotWithheld())


def check_terms(policy: Policy, terms: Terms, requester: str) -> None:
    """Refuse ``terms`` requested by member ``requester`` unless they only narrow ``policy``.

    Taxa, time window and area are filters and can never widen a release;
    the purpose, the tier, the requester, the duration and the fields can.

    :raises TermsRefused: naming the field and the reason.
    """
    STANDARD_CHECKS.check(policy, terms, requester)
