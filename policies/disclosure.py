"""What a package's descriptor and a dataset's public metadata may say (pure rules).

The rows of a package are filtered by the plan; its *metadata* must not say
more than those rows do (DESIGN.md §2, §8). These functions derive each piece
from what is released:

* :func:`rounded_outward` -- an extent rounded outward to the coarsest
  precision the plan applied, so a corner never pins down a camera (and, at
  one degree, the public metadata and the catalog entry);
* :func:`released_contributors` -- the package's contributors when the plan
  withholds the fields that name people: organisations only, no e-mail;
* :func:`scrub_properties` -- free-text JSON fields (Darwin Core
  ``dynamicProperties``, Camtrap DP ``exifData``) follow the fields they
  duplicate: keys naming people, or a withheld field, are removed, and a value
  that cannot be parsed is blanked (fail closed).

No IO, no clock: values in, values out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from types import MappingProxyType
from typing import Any

__all__ = [
    "FREE_TEXT_FIELDS",
    "ORGANISATION_ROLES",
    "PEOPLE_FIELDS",
    "people_withheld",
    "released_contributors",
    "rounded_outward",
    "scrub_properties",
]

#: Fields that name people, per resource (Camtrap DP 1.0.2 and Darwin Core terms).
PEOPLE_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType({
    "deployments": frozenset({"setupBy"}),
    "media": frozenset(),
    "observations": frozenset({"classifiedBy"}),
    "individuals": frozenset(),
    "event": frozenset({"recordedBy", "recordedByID", "identifiedBy", "identifiedByID",
                        "georeferencedBy"}),
    "occurrence": frozenset({"recordedBy", "recordedByID", "identifiedBy", "identifiedByID",
                             "georeferencedBy"}),
})

#: Free-text JSON fields that may repeat other fields, per resource.
FREE_TEXT_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType({
    "media": frozenset({"exifData"}),
    "event": frozenset({"dynamicProperties"}),
    "occurrence": frozenset({"dynamicProperties"}),
})

#: Contributor roles (Frictionless / Camtrap DP) that name an institution, not a person.
ORGANISATION_ROLES = frozenset({"rightsHolder", "publisher", "funder"})

# Keys of free-text JSON that name or reach people (observers, EXIF Artist, ...).
_PERSON_KEY = re.compile(
    r"particip|observ|record|identif|counter|counted.?by|surveyor|people|person|name|initial"
    r"|team|volunteer|e-?mail|contact|author|guide|leader|staff|ranger|phone|address|owner"
    r"|artist|creator|copyright|(^|_)by$", re.IGNORECASE)
# One `key: "value"` or `key: value` pair of the lenient, unquoted-key form A Rocha
# Kenya's dynamicProperties use ({coverage: "", participants: "DT, CJ", }).
_PAIR = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[A-Za-z_][\w.-]*)\s*:\s*'
                   r'("(?:[^"\\]|\\.)*"|[^,}"]*?)\s*(?:,|$)')


def rounded_outward(west: float, south: float, east: float, north: float,
                    step: float) -> tuple[float, float, float, float]:
    """The box rounded outward to multiples of ``step`` degrees, so it contains the input.

    West and south go down, east and north go up, in decimal arithmetic on the
    numbers as written (``repr``), so ``43.1`` at ``0.1`` stays ``43.1``.
    A box that would have no width or height (one camera, or a point on the
    grid) is widened by one step, staying inside ±180° / ±90°.

    :raises ValueError: ``step`` is not positive, or a corner is not finite.
    """
    if not step > 0:
        raise ValueError("step must be a positive number of degrees")
    quantum = Decimal(repr(float(step)))

    def snap(value: float, rounding: str) -> Decimal:
        number = Decimal(repr(float(value)))
        if not number.is_finite():
            raise ValueError(f"corner {value!r} is not finite")
        return (number / quantum).to_integral_value(rounding=rounding) * quantum

    w, s = snap(west, ROUND_FLOOR), snap(south, ROUND_FLOOR)
    e, n = snap(east, ROUND_CEILING), snap(north, ROUND_CEILING)
    if e <= w:
        e = w + quantum
        if e > 180:
            w, e = Decimal(180) - quantum, Decimal(180)
    if n <= s:
        n = s + quantum
        if n > 90:
            s, n = Decimal(90) - quantum, Decimal(90)
    return (float(max(w, Decimal(-180))), float(max(s, Decimal(-90))),
            float(min(e, Decimal(180))), float(min(n, Decimal(90))))


def people_withheld(withheld: Mapping[str, Iterable[str]]) -> bool:
    """Whether a plan's withheld fields include any field that names people."""
    return any(PEOPLE_FIELDS.get(resource, frozenset()) & set(fields)
               for resource, fields in withheld.items())


def released_contributors(contributors: Sequence[Any], *,
                          people_hidden: bool) -> list[dict[str, Any]]:
    """The contributors a package (or public metadata) may list.

    When the plan releases the fields naming people, every contributor is
    kept. When it withholds them, a person listed as a contributor would undo
    that, so only institutions remain: entries whose role is an institution's
    (:data:`ORGANISATION_ROLES`) and, once each, the organisations the
    people belong to (role ``contributor``). No e-mail address is kept.
    Entries that are not objects are dropped.
    """
    objects = [dict(c) for c in contributors if isinstance(c, Mapping)]
    if not people_hidden:
        return objects
    kept: list[dict[str, Any]] = []
    titles: set[str] = set()
    for entry in objects:
        if entry.get("role") in ORGANISATION_ROLES and isinstance(entry.get("title"), str):
            clean = {k: v for k, v in entry.items() if k in ("title", "path", "role")}
            kept.append(clean)
            titles.add(entry["title"])
    for entry in objects:
        organisation = entry.get("organization")
        if isinstance(organisation, str) and organisation.strip() and organisation not in titles:
            kept.append({"title": organisation, "role": "contributor"})
            titles.add(organisation)
    return kept


def scrub_properties(text: str | None, *, drop_people: bool,
                     withheld: Iterable[str] = ()) -> str | None:
    """A free-text JSON field with the keys that repeat withheld fields removed.

    Removed: with ``drop_people``, every key that names or reaches people
    (participants, observer, recordedBy, Artist, e-mail, ...); always, a key
    equal (case-insensitively) to one of ``withheld``. The text is read as
    JSON or in the lenient ``{key: "value", }`` form some publishers write;
    if nothing is removed it is returned unchanged, else rewritten as a JSON
    object. Text that is neither form is blanked (``""``): what cannot be read
    cannot be shown to be safe.
    """
    if text is None or not text.strip():
        return text
    hidden = {name.lower() for name in withheld}
    pairs = _pairs(text)
    if pairs is None:
        return ""

    def unwanted(key: str) -> bool:
        return key.lower() in hidden or (drop_people and bool(_PERSON_KEY.search(key)))

    kept = [(k, v) for k, v in pairs if not unwanted(k)]
    if len(kept) == len(pairs):
        return text
    return json.dumps(dict(kept), ensure_ascii=False, separators=(", ", ": "))


def _pairs(text: str) -> list[tuple[str, Any]] | None:
    """The key/value pairs of a JSON object or of the lenient form; None if neither."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    else:
        return list(value.items()) if isinstance(value, dict) else None
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        return None
    body = body[1:-1].strip()
    pairs: list[tuple[str, Any]] = []
    position = 0
    while position < len(body):
        match = _PAIR.match(body, position)
        if match is None or match.end() == position:
            return None
        key, raw = match.group(1), match.group(2).strip()
        pairs.append((_unquote(key), _unquote(raw)))
        position = match.end()
    return pairs


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] == '"':
        try:
            value = json.loads(token)
        except ValueError:
            return token[1:-1]
        return value if isinstance(value, str) else token[1:-1]
    return token
