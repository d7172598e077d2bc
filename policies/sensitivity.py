"""Sensitivity categories and Corridor's shipped default profile.

GBIF practice (Chapman 2020, *Current Best Practices for Generalizing
Sensitive Species Occurrence Data*, GBIF Secretariat,
https://doi.org/10.15468/doc-5jp4-5g10) sorts sensitive taxa into four
categories: 1 -- do not release the record; 2, 3, 4 -- release it with its
coordinates generalized to 0.1°, 0.01° or 0.001°. Generalization rounds; it
never adds random noise (Chapman 2020 advises against randomization, which
misleads users and can be averaged away).

The default profile covers the six NEASPEC flagship species. It is bundled as
``policies/data/neaspec-sensitivity.json`` with the Red List status and the
reason for each category; a dataset's policy overrides or extends it.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from policies.taxonomy import accepted_name

__all__ = ["CATEGORIES", "PRECISION", "WITHHOLD", "default_profile", "profile_sources"]

#: Category 1: the record is not released.
WITHHOLD = 1
#: The four GBIF categories (Chapman 2020).
CATEGORIES = frozenset({1, 2, 3, 4})
#: Rounding, in decimal degrees, of categories 2-4.
PRECISION: MappingProxyType[int, float] = MappingProxyType({2: 0.1, 3: 0.01, 4: 0.001})

_PROFILE_FILE = "neaspec-sensitivity.json"


@cache
def _profile_document() -> dict[str, Any]:
    # The one read policies/ does: a file shipped inside the package itself.
    text = resources.files("policies").joinpath("data", _PROFILE_FILE).read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def default_profile() -> dict[str, int]:
    """The shipped profile: accepted scientific name -> GBIF category (a fresh dict).

    :raises ValueError: if the bundled file is damaged (a packaging error).
    """
    profile: dict[str, int] = {}
    for entry in _profile_document()["taxa"]:
        name, category = entry["scientificName"], entry["category"]
        if accepted_name(name) != name or category not in CATEGORIES or name in profile:
            raise ValueError(f"bundled sensitivity profile has a bad entry for {name!r}")
        profile[name] = category
    return profile


def profile_sources() -> dict[str, str]:
    """Accepted name -> the status and reason the shipped profile gives for its category."""
    return {entry["scientificName"]: f"{entry['status']} {entry['reason']}"
            for entry in _profile_document()["taxa"]}
