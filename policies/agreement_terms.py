"""The terms of a data-use agreement: which dataset, from whom, until when, and the filters.

A request (and a narrowed decision) carries one JSON object::

    {"provider": "ru-lotl", "dataset": "ru-lotl/leopards-2024",
     "purpose": "joint-monitoring", "tier": "generalized", "until": "2027-06-30",
     "taxa": ["Panthera pardus"], "time_from": "2024-01-01", "time_to": "2024-12-31",
     "bbox": [130.5, 42.5, 132.0, 43.5], "fields": {"observations": ["scientificName"]}}

``provider``, ``dataset``, ``purpose``, ``tier`` and ``until`` are required;
the rest are the policy terms of :mod:`policies.terms` (absent = no narrowing).
:func:`check_narrowing` is the rule an owner's counter-offer must obey: it
may only give less than was asked.

Pure: no IO, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from policies.errors import PolicyError
from policies.terms import Terms, load_terms

__all__ = [
    "AgreementTerms",
    "TermsNotNarrower",
    "check_narrowing",
    "load_agreement_terms",
]

_KEYS = ("provider", "dataset", "purpose", "tier", "until", "taxa", "time_from", "time_to",
         "bbox", "fields")
_REQUIRED = ("provider", "dataset", "purpose", "tier", "until")
_POLICY_KEYS = ("purpose", "tier", "taxa", "time_from", "time_to", "bbox", "fields")
_MEMBER = re.compile(r"[a-z]{2}-[a-z0-9][a-z0-9-]{0,37}")
_DATASET = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: Standard tiers from least to most detailed; a counter-offer may only move down.
TIER_ORDER = ("aggregate", "generalized", "full")


class TermsNotNarrower(PolicyError):
    """A counter-offer gives more than the request asked for (the field says where)."""


@dataclass(frozen=True)
class AgreementTerms:
    """Validated agreement terms.

    :ivar provider: member id of the data owner.
    :ivar dataset: ``provider/name`` of the dataset.
    :ivar until: last day (UTC, inclusive) the agreement is valid.
    :ivar terms: the policy terms (purpose, tier and filters).
    """

    provider: str
    dataset: str
    until: date
    terms: Terms

    @property
    def dataset_name(self) -> str:
        """The dataset's name at its provider (after the ``/``)."""
        return self.dataset.split("/", 1)[1]

    def policy_terms(self, start: date) -> Terms:
        """The policy terms, with the duration from ``start`` to :attr:`until`."""
        return replace(self.terms, duration_days=max((self.until - start).days, 1))

    def to_json(self) -> dict[str, Any]:
        """The terms as the JSON object they were read from (``None`` filters left out)."""
        body: dict[str, Any] = {"provider": self.provider, "dataset": self.dataset,
                                "until": self.until.isoformat()}
        for key, value in self.terms.to_json().items():
            if key in _POLICY_KEYS and value is not None:
                body[key] = value
        return body


def load_agreement_terms(data: Any) -> AgreementTerms:
    """Validate an agreement terms object.

    :raises PolicyError: naming the field, for an unknown or missing key, a
        malformed member id, dataset or date, or bad policy terms.
    """
    if not isinstance(data, Mapping):
        raise PolicyError("terms", "must be a JSON object")
    for key in data:
        if key not in _KEYS:
            raise PolicyError(str(key)[:64], "unknown key; allowed: " + ", ".join(_KEYS))
    for key in _REQUIRED:
        if key not in data:
            raise PolicyError(key, "required key is missing")
    provider = data["provider"]
    if not isinstance(provider, str) or not _MEMBER.fullmatch(provider):
        raise PolicyError("provider", "must be a member id like ru-lotl")
    dataset = data["dataset"]
    owner, _, name = dataset.partition("/") if isinstance(dataset, str) else ("", "", "")
    if owner != provider or not _DATASET.fullmatch(name):
        raise PolicyError("dataset", f"must be {provider}/<dataset name> (the provider's own)")
    until = data["until"]
    try:
        if not isinstance(until, str) or len(until) != 10:
            raise ValueError(until)
        until_date = date.fromisoformat(until)
    except ValueError as e:
        raise PolicyError("until", f"{until!r} is not a date like 2027-06-30") from e
    terms = load_terms({k: data[k] for k in _POLICY_KEYS if k in data})
    return AgreementTerms(provider, dataset, until_date, terms)


def narrower_tiers(requested: str, offered: Iterable[str]) -> list[str]:
    """The tiers a counter-offer to ``requested`` may name: it, then those below it.

    ``offered``: the policy's tiers. Only :data:`TIER_ORDER` tiers can move
    down; a request for another tier can be answered only with that tier.
    """
    if requested not in TIER_ORDER:
        return [requested]
    below = TIER_ORDER[:TIER_ORDER.index(requested)]
    return [requested, *(t for t in reversed(below) if t in set(offered))]


def check_narrowing(new: Mapping[str, Any], old: Mapping[str, Any]) -> None:
    """Refuse counter-offer ``new`` unless it gives no more than ``old`` in every respect.

    The provider, dataset and purpose cannot change; the tier may only move
    down :data:`TIER_ORDER`; the end date, taxa, time window, area and fields
    may only shrink. A filter absent from ``old`` may be added.

    :raises TermsNotNarrower: naming the first field that widens.
    :raises PolicyError: if either side is not valid terms.
    """
    a, b = load_agreement_terms(new), load_agreement_terms(old)
    for name, x, y in (("provider", a.provider, b.provider), ("dataset", a.dataset, b.dataset),
                       ("purpose", a.terms.purpose, b.terms.purpose)):
        if x != y:
            raise TermsNotNarrower(name, f"a counter-offer cannot change the {name} ({y!r})")
    if a.terms.tier != b.terms.tier and not (
            a.terms.tier in TIER_ORDER and b.terms.tier in TIER_ORDER
            and TIER_ORDER.index(a.terms.tier) < TIER_ORDER.index(b.terms.tier)):
        raise TermsNotNarrower("tier", f"tier {a.terms.tier!r} is not below the requested "
                                       f"{b.terms.tier!r}")
    if a.until > b.until:
        raise TermsNotNarrower("until", f"{a.until} is later than the requested {b.until}")
    if b.terms.taxa is not None and (a.terms.taxa is None or not a.terms.taxa <= b.terms.taxa):
        raise TermsNotNarrower("taxa", "taxa must be a subset of the requested taxa")
    if b.terms.time_from is not None and (a.terms.time_from is None
                                          or a.terms.time_from < b.terms.time_from):
        raise TermsNotNarrower("time_from", f"must not start before {b.terms.time_from}")
    if b.terms.time_to is not None and (a.terms.time_to is None
                                        or a.terms.time_to > b.terms.time_to):
        raise TermsNotNarrower("time_to", f"must not end after {b.terms.time_to}")
    if b.terms.bbox is not None:
        inner, outer = a.terms.bbox, b.terms.bbox
        if inner is None or not (outer[0] <= inner[0] and outer[1] <= inner[1]
                                 and inner[2] <= outer[2] and inner[3] <= outer[3]):
            raise TermsNotNarrower("bbox", "the area must lie inside the requested area")
    if b.terms.fields is not None:
        for resource, wanted in b.terms.fields.items():
            given = None if a.terms.fields is None else a.terms.fields.get(resource)
            if given is None or not given <= wanted:
                raise TermsNotNarrower(f"fields.{resource}",
                                       "fields must be a subset of the requested fields")
