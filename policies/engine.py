"""Compile (policy, terms, requester, now) into a :class:`Plan` the exporter executes.

A plan is everything the node's exporter needs to decide, for each row and
field, what leaves the node: which fields are blanked, which rows are
dropped, how coordinates and timestamps are generalized, and how individual
ids are pseudonymized. It is a value: frozen, explainable line by line
(:meth:`Plan.explain`), and hashable into a digest that the signed package
carries (:meth:`Plan.digest`), so a recipient can see exactly which rules
produced the data in front of them.

Steps, in the order the exporter applies them (DESIGN.md §8):

1. ``projection`` -- fields blanked, per resource; ``scrub`` -- free-text JSON
   fields lose the keys that repeat withheld fields or name people;
2. row filters -- ``filter-taxa`` (the agreement's taxa), ``drop-taxa``
   (category-1 taxa: dropped and counted), ``filter-time``, ``filter-area``;
3. ``embargo`` -- recent records of embargoed taxa dropped;
4. ``generalize`` -- coordinates rounded; the camera rule (``generalize-camera``);
5. ``pseudonymize`` -- individual ids replaced by per-agreement pseudonyms;
6. ``coarsen-time`` -- timestamps truncated to the day or month;
7. ``closure`` -- media, cameras, individuals (and survey events) leave only
   with a released record that reaches them, unless the tier releases effort;

or, for an aggregate-only tier, the row filters and embargo followed by one
``aggregate`` step.

Taxon matching uses :mod:`policies.taxonomy`: every rule keyed by a taxon also
matches its synonyms; sensitivity and embargo rules also match records
identified only to the species of a sensitive subspecies (a "Panthera
pardus" record in Primorye is a Far Eastern leopard), and records of a
subspecies of a sensitive species.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from crypto.canonical import canonical_json
from policies.disclosure import FREE_TEXT_FIELDS, PEOPLE_FIELDS
from policies.errors import PolicyError
from policies.policy import (
    KEY_FIELDS,
    REQUIRED_FIELDS,
    RESOURCE_FIELDS,
    RESOURCES,
    Policy,
    Tier,
)
from policies.sensitivity import PRECISION, WITHHOLD
from policies.taxonomy import accepted_name, names_for, normalise
from policies.terms import Terms, check_terms

__all__ = [
    "GENERALIZATION_LEAKS",
    "PLAN_VERSION",
    "PSEUDONYMIZED_FIELDS",
    "TIME_FIELDS",
    "TIME_LEAKS",
    "Plan",
    "Step",
    "compile",
]

#: Version of the plan document (:meth:`Plan.to_json`); bumped on any change of meaning.
#: 2: the release is closed (media, cameras and individuals only with a released
#: record), ``release_effort`` and ``scrub`` added.
PLAN_VERSION = 2
#: Shortest pseudonym key accepted (bytes): HMAC keys below 128 bits are guessable.
MIN_KEY_BYTES = 16

#: Timestamp fields coarsened by ``coarsen-time``. Camtrap DP datetimes go
#: through :func:`~policies.transforms.coarsen_timestamp`; Darwin Core
#: ``eventDate`` through :func:`~policies.transforms.coarsen_event_date`.
#: Deployment start and end are kept: they are when rangers serviced the
#: camera, not when an animal passed, and camera-days depend on them.
TIME_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "media": ("timestamp",),
    "observations": ("eventStart", "eventEnd"),
    "individuals": ("firstSeen", "lastSeen"),
    "event": ("eventDate",),
    "occurrence": ("eventDate",),
})

#: Fields that repeat a record's time more finely than a coarsened timestamp,
#: blanked whenever timestamps are coarsened to that unit (EXIF carries
#: DateTimeOriginal; DwC splits dates into parts).
TIME_LEAKS: Mapping[str, Mapping[str, frozenset[str]]] = MappingProxyType({
    "day": MappingProxyType({
        "media": frozenset({"exifData"}),
        "event": frozenset({"eventTime", "verbatimEventDate"}),
        "occurrence": frozenset({"eventTime", "verbatimEventDate"}),
    }),
    "month": MappingProxyType({
        "media": frozenset({"exifData"}),
        "event": frozenset({"eventTime", "verbatimEventDate", "day", "startDayOfYear",
                            "endDayOfYear"}),
        "occurrence": frozenset({"eventTime", "verbatimEventDate", "day", "startDayOfYear",
                                 "endDayOfYear"}),
    }),
})

#: Darwin Core terms that state a place in free text or as the original reading.
_VERBATIM_PLACE = frozenset({"verbatimCoordinates", "verbatimLatitude", "verbatimLongitude",
                             "footprintWKT", "verbatimLocality", "locationRemarks",
                             "georeferenceRemarks"})

#: What the area filter tests (see :meth:`Plan.in_area`, :meth:`Plan.holds`).
AREA_APPLIES_TO = ("the position; for a generalized one the whole cell it is rounded to;"
                   " for counts the whole grid cell")

#: Fields that repeat a location more finely than generalized coordinates,
#: blanked whenever the plan generalizes any coordinate (EXIF can carry the
#: camera's GPS position; the DwC verbatim terms are the original coordinates).
#: In a sampling-event dataset the place is the event's, and the event's
#: coordinates are the ones generalized: an occurrence row that repeats a
#: position or a place name of its own (extra columns are kept on import)
#: would carry it exact, so its Location terms are blanked too.
GENERALIZATION_LEAKS: Mapping[str, frozenset[str]] = MappingProxyType({
    "media": frozenset({"exifData"}),
    "event": _VERBATIM_PLACE,
    "occurrence": _VERBATIM_PLACE | {"decimalLatitude", "decimalLongitude",
                                     "coordinateUncertaintyInMeters", "coordinatePrecision",
                                     "pointRadiusSpatialFit", "locality"},
})

#: Fields holding an individual animal's id, replaced by :func:`~policies.transforms.pseudonym`.
PSEUDONYMIZED_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "observations": ("individualID",),
    "individuals": ("individualID",),
    "occurrence": ("organismID",),
})

_COARSEST = max(PRECISION.values())


@dataclass(frozen=True)
class Step:
    """One step of a plan: what it does (``kind``), to which resource, with what, in words."""

    kind: str
    resource: str
    params: Mapping[str, Any]
    line: str

    def to_json(self) -> dict[str, Any]:
        """The step as plain JSON values."""
        return {"kind": self.kind, "resource": self.resource, "params": _thaw(self.params),
                "line": self.line}


@dataclass(frozen=True)
class Plan:
    """What one export under one agreement releases, compiled from policy and terms.

    Taxon-keyed mappings hold every normalised name the rule matches (accepted
    name, synonyms, and the species of a sensitive subspecies) as separate
    keys. Scientific names in a database may be spelled differently
    (case, spacing, authorship); :meth:`precision_of`, :meth:`is_dropped`,
    :meth:`embargo_cutoff` and :meth:`in_taxa` match any spelling, so the
    exporter should classify the dataset's distinct names with them and
    filter on the exact stored strings.
    """

    tier: str
    purpose: str
    requester: str
    aggregate_only: bool
    withheld: Mapping[str, frozenset[str]]
    drop_taxa: frozenset[str]
    taxa: frozenset[str] | None
    time_from: datetime | None
    time_to: datetime | None
    bbox: tuple[float, float, float, float] | None
    embargo: Mapping[str, datetime]
    taxon_precision: Mapping[str, float]
    default_precision: float | None
    coarsen_time: str | None
    pseudonymize: bool
    pseudonym_key: bytes | None = field(repr=False)
    steps: tuple[Step, ...]
    #: Cameras and survey events without a released record are released too (effort).
    release_effort: bool = False
    #: Free-text JSON fields, per resource, whose keys repeating withheld fields are removed.
    scrub: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    #: Whether :attr:`scrub` also removes the keys that name people.
    scrub_people: bool = False
    #: The package adds one catalogue card per released individual (``cards``).
    catalogue_cards: bool = False

    # --- taxon rules, for any spelling of a name ---------------------------------

    def precision_of(self, name: str) -> float | None:
        """Rounding (degrees) for records of ``name`` under the sensitivity profile, or None."""
        found = _lookup(self.taxon_precision, name)
        return max(found) if found else None

    def is_dropped(self, name: str) -> bool:
        """Whether records of ``name`` are withheld entirely (category 1)."""
        return bool(_lookup(dict.fromkeys(self.drop_taxa, True), name))

    def embargo_cutoff(self, name: str) -> datetime | None:
        """Records of ``name`` starting after this instant are dropped; None if not embargoed."""
        found = _lookup(self.embargo, name)
        return min(found) if found else None

    def in_taxa(self, name: str) -> bool:
        """Whether records of ``name`` pass the agreement's taxa filter (exact taxon or synonym)."""
        if self.taxa is None:
            return True
        return normalise(name) in self.taxa or accepted_name(name) in self.taxa

    def in_area(self, lat: float | None, lon: float | None, *,
                precision: float | None = None) -> bool:
        """Whether a position lies in the agreement's area (edges included).

        Without an area every position passes; with one, a record without a
        position does not. For a position rounded to ``precision`` the whole
        cell it stands for (half a step each way) must lie inside: that holds
        only if the true position is inside, and it is decided on the released
        figures alone, so an edge drawn through a cell tells nothing about
        where in the cell the record was.
        """
        if self.bbox is None:
            return True
        if lat is None or lon is None:
            return False
        half = Decimal(0) if precision is None else Decimal(repr(precision)) / 2
        y, x = Decimal(repr(lat)), Decimal(repr(lon))
        return self.holds(x - half, y - half, x + half, y + half)

    def holds(self, west: Decimal, south: Decimal, east: Decimal, north: Decimal) -> bool:
        """Whether a box (a grid cell, say) lies wholly in the agreement's area."""
        if self.bbox is None:
            return True
        w, s, e, n = (Decimal(repr(edge)) for edge in self.bbox)
        return s <= south and north <= n and w <= west and east <= e

    def deployment_precision(self, taxa_recorded: Iterable[str]) -> float | None:
        """The rounding for a camera (or survey location) that recorded ``taxa_recorded``.

        The coarsest (largest) precision among the sensitive taxa recorded
        there, a category-1 taxon counting as 0.1° (the coarsest category),
        combined with the tier's ``default_precision``; None means the
        location is released as recorded. This is "generalization follows
        the camera": pass every taxon ever recorded at the location, before
        any filter, or the camera's other rows would place the species.
        """
        found = [] if self.default_precision is None else [self.default_precision]
        for name in taxa_recorded:
            if not name:
                continue
            precision = self.precision_of(name)
            if precision is not None:
                found.append(precision)
            if self.is_dropped(name):
                found.append(_COARSEST)
        return max(found) if found else None

    # --- explanation and identity ------------------------------------------------

    def explain(self) -> list[str]:
        """The plan in plain lines, one per step, after a header line."""
        header = (f"tier {self.tier} for {self.requester}, purpose {self.purpose}"
                  + (" (aggregate only)" if self.aggregate_only else ""))
        return [header, *(step.line for step in self.steps)]

    def to_json(self) -> dict[str, Any]:
        """The plan as canonical-JSON-able values. Never contains the pseudonym key."""
        return {
            "version": PLAN_VERSION,
            "tier": self.tier,
            "purpose": self.purpose,
            "requester": self.requester,
            "aggregate_only": self.aggregate_only,
            "withheld": {r: sorted(f) for r, f in self.withheld.items() if f},
            "drop_taxa": sorted(self.drop_taxa),
            "taxa": None if self.taxa is None else sorted(self.taxa),
            "time_from": _iso(self.time_from),
            "time_to": _iso(self.time_to),
            "bbox": None if self.bbox is None else list(self.bbox),
            "embargo": {name: _iso(cutoff) for name, cutoff in sorted(self.embargo.items())},
            "taxon_precision": dict(sorted(self.taxon_precision.items())),
            "default_precision": self.default_precision,
            "coarsen_time": self.coarsen_time,
            "pseudonymize": self.pseudonymize,
            "release_effort": self.release_effort,
            "scrub": {r: sorted(f) for r, f in sorted(self.scrub.items())},
            "scrub_people": self.scrub_people,
            "steps": [step.to_json() for step in self.steps],
            # Only when set, so that the digests of plans without cards stay as they were.
            **({"catalogue_cards": True} if self.catalogue_cards else {}),
        }

    def digest(self) -> str:
        """``sha256:`` + hex SHA-256 of the RFC 8785 canonical JSON of :meth:`to_json`."""
        return "sha256:" + hashlib.sha256(canonical_json(self.to_json())).hexdigest()

    def basis_digest(self) -> str:
        """The digest of the plan without its embargo cutoffs (which move with ``now``).

        Two plans with the same basis release the same rows but for what the
        embargoes hold back; an incremental export's cursor is bound to it, so
        a cursor from before a policy change is refused rather than misread.
        """
        document = self.to_json()
        document["embargo"] = sorted(document["embargo"])
        document["steps"] = [step for step in document["steps"] if step["kind"] != "embargo"]
        document["embargo_steps"] = sorted(
            (step.params["taxon"], step.params["days"]) for step in self.steps
            if step.kind == "embargo")
        return "sha256:" + hashlib.sha256(canonical_json(document)).hexdigest()

    def data_generalizations(self) -> str:
        """Text for the package's ``dataGeneralizations`` (Darwin Core term); "" if none."""
        parts: list[str] = []
        by_precision: dict[float, list[str]] = {}
        for step in self.steps:
            if step.kind == "generalize" and step.params["taxon"] is not None:
                by_precision.setdefault(step.params["precision"], []).append(step.params["taxon"])
            elif step.kind == "generalize":
                parts.append(f"every coordinate rounded to at least {step.params['precision']:g}°")
        for precision, taxa in sorted(by_precision.items(), reverse=True):
            parts.append(f"coordinates rounded to {precision:g}° at every location that recorded "
                         + _or(sorted(taxa)))
        if parts:
            parts.append("coordinateUncertainty widened by half the diagonal of the rounding"
                         " cell; generalized by rounding, never randomized (Chapman 2020)")
        if self.coarsen_time:
            parts.append(f"timestamps coarsened to the {self.coarsen_time}, in local time")
        if self.pseudonymize:
            parts.append("individual ids replaced by pseudonyms keyed to this agreement")
        if self.aggregate_only:
            parts.append("released as aggregate counts only")
        return "; ".join(parts) + ("." if parts else "")

    def information_withheld(self) -> str:
        """Text for the package's ``informationWithheld`` (Darwin Core term); "" if none."""
        parts: list[str] = []
        fields = [f"{r}.{f}" for r in RESOURCES for f in sorted(self.withheld.get(r, ()))]
        if fields:
            parts.append("fields withheld: " + ", ".join(fields))
        for step in self.steps:
            if step.kind in ("drop-taxa", "embargo"):
                parts.append(step.params["summary"])
        return "; ".join(parts) + ("." if parts else "")


# --- compiling -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """The resources a plan is for, and how its lines name them."""

    resources: tuple[str, ...]

    def has(self, resource: str) -> bool:
        return resource in self.resources

    def label(self, *candidates: str) -> str:
        present = [r for r in candidates if r in self.resources]
        return "/".join(present or candidates)

    @property
    def records(self) -> str:
        return self.label("observations", "occurrence")

    @property
    def locations(self) -> str:
        return self.label("deployments", "event")


def compile(
    policy: Policy, terms: Terms, requester: str, now: datetime, *,
    pseudonym_key: bytes | None = None, resources: Iterable[str] | None = None,
    taxa_present: Iterable[str] | None = None,
) -> Plan:
    """Compile ``policy`` narrowed by ``terms`` for member ``requester`` at ``now`` into a plan.

    ``pseudonym_key`` is the agreement's secret for :func:`~policies.transforms.pseudonym`;
    it is required when the tier pseudonymizes individuals and is never part
    of the plan's JSON or digest. ``resources`` optionally names the
    resources the dataset has (e.g. ``deployments, media, observations,
    individuals`` for Camtrap DP, ``event, occurrence`` for Darwin Core) so
    the plan's steps and lines speak only of those; by default, all six.
    ``taxa_present`` optionally lists the scientific names the dataset holds
    (any spelling): sensitivity and embargo rules for taxa it does not hold
    are left out, so the plan explains only the rules that touch it.

    :raises TermsRefused: if the terms would widen the policy (:func:`check_terms`).
    :raises PolicyError: if the tier pseudonymizes and no usable key is given.
    :raises ValueError: if ``now`` is naive, or ``resources`` names an unknown resource.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    scope = _scope(resources)
    check_terms(policy, terms, requester)
    tier = policy.tiers[terms.tier]
    now = now.astimezone(UTC)

    pseudonymize = tier.pseudonymize_individuals and not tier.aggregate_only
    cards = tier.catalogue_cards and not tier.aggregate_only and scope.has("individuals")
    if pseudonymize and (pseudonym_key is None or len(pseudonym_key) < MIN_KEY_BYTES):
        raise PolicyError("pseudonym_key", f"tier {tier.name} pseudonymizes individuals: a"
                          f" per-agreement key of at least {MIN_KEY_BYTES} bytes is required")

    touches = _touches(taxa_present)
    sensitive = ({t: c for t, c in policy.sensitivity.items() if touches(t)}
                 if tier.apply_sensitivity else {})
    drop = sorted(t for t, c in sensitive.items() if c == WITHHOLD)
    graded = sorted((c, t) for t, c in sensitive.items() if c != WITHHOLD)

    drop_taxa = frozenset(n for t in drop for n in _rule_names(t))
    taxon_precision = _merge(((n, PRECISION[c]) for c, t in graded for n in _rule_names(t)),
                             max)
    cutoffs = {t: _cutoff(now, days) for t, days in policy.embargo_days.items()
               if days > 0 and touches(t)}
    embargo = _merge(((n, cut) for t, cut in cutoffs.items() for n in _rule_names(t)), min)
    taxa = (None if terms.taxa is None
            else frozenset(n for t in terms.taxa for n in names_for(t)))
    time_from = (None if terms.time_from is None
                 else datetime.combine(terms.time_from, time(0), UTC))
    time_to = (None if terms.time_to is None
               else datetime.combine(terms.time_to, time(0), UTC) + timedelta(days=1))

    generalizes = not tier.aggregate_only and bool(
        graded or drop or tier.default_precision is not None)
    withheld, projection = _projection(tier, terms, scope, generalizes=generalizes)

    scrub, scrub_people = _scrubbed(withheld, scope)
    steps: list[Step] = [] if tier.aggregate_only else projection
    if not tier.aggregate_only:
        steps += [_scrub_step(r, f, withheld[r], scrub_people) for r, f in scrub.items()]
    steps += _filters(terms, taxa, time_from, time_to, drop, scope)
    steps += [_embargo_step(t, policy.embargo_days[t], cutoffs[t], scope)
              for t in sorted(cutoffs)]
    if tier.aggregate_only:
        steps.append(_aggregate_step(tier, graded, drop))
    else:
        if generalizes:
            steps += _generalize_steps(tier, graded, drop, scope)
        if pseudonymize:
            steps.append(_pseudonymize_step(scope))
        if tier.coarsen_time:
            steps.append(_coarsen_step(tier.coarsen_time, scope))
        steps.append(_closure_step(scope, release_effort=tier.release_effort))
        if cards:
            steps.append(_cards_step())

    return Plan(
        tier=tier.name,
        purpose=terms.purpose,
        requester=requester,
        aggregate_only=tier.aggregate_only,
        withheld=MappingProxyType(withheld),
        drop_taxa=drop_taxa,
        taxa=taxa,
        time_from=time_from,
        time_to=time_to,
        bbox=terms.bbox,
        embargo=MappingProxyType(embargo),
        taxon_precision=MappingProxyType(taxon_precision),
        default_precision=None if tier.aggregate_only else tier.default_precision,
        coarsen_time=None if tier.aggregate_only else tier.coarsen_time,
        pseudonymize=pseudonymize,
        pseudonym_key=pseudonym_key if pseudonymize else None,
        steps=tuple(steps),
        release_effort=tier.release_effort and not tier.aggregate_only,
        scrub=MappingProxyType({} if tier.aggregate_only else scrub),
        scrub_people=scrub_people and not tier.aggregate_only,
        catalogue_cards=cards,
    )


def _touches(taxa_present: Iterable[str] | None) -> Any:
    """Whether a rule keyed by a taxon matches any of the dataset's names (all, if unknown)."""
    if taxa_present is None:
        return lambda _taxon: True
    keys: set[str] = set()
    for name in taxa_present:
        if not name or not normalise(name):
            continue
        accepted = accepted_name(name)
        keys |= {normalise(name), accepted}
        species = _species(accepted)
        if species is not None:
            keys |= {species, accepted_name(species)}
    return lambda taxon: bool(_rule_names(taxon) & keys)


def _scrubbed(withheld: Mapping[str, frozenset[str]], scope: _Scope
              ) -> tuple[dict[str, frozenset[str]], bool]:
    """Free-text JSON fields to scrub per resource, and whether people's keys go too.

    A free-text field follows the fields it can repeat: it is scrubbed in a
    resource with withheld fields, and everywhere once any field naming
    people is withheld (an observer's initials in ``dynamicProperties`` would
    undo a withheld ``recordedBy``). A field withheld itself needs nothing.
    """
    people = any(PEOPLE_FIELDS.get(r, frozenset()) & withheld.get(r, frozenset())
                 for r in scope.resources)
    out: dict[str, frozenset[str]] = {}
    for resource, free in FREE_TEXT_FIELDS.items():
        if not scope.has(resource):
            continue
        fields = free - withheld.get(resource, frozenset())
        if fields and (people or withheld.get(resource)):
            out[resource] = fields
    return out, people


def _scrub_step(resource: str, fields: frozenset[str], withheld: frozenset[str],
                people: bool) -> Step:
    listed = ", ".join(sorted(fields))
    what = ["keys repeating a withheld field"] if withheld else []
    if people:
        what.append("keys naming people (participants, observers, authors, e-mail, ...)")
    return Step("scrub", resource,
                _freeze({"fields": sorted(fields), "people": people,
                         "withheld_keys": sorted(withheld), "unreadable": "blanked"}),
                f"{resource}: {listed}: {' and '.join(what)} removed; a value that cannot be"
                " read as JSON is blanked")


def _cards_step() -> Step:
    """The catalogue cards: what the other side's experts get per released individual."""
    return Step("cards", "cards", _freeze({"cell": "0.1", "reference_media": 3}),
                "cards: per released individual, its catalogue id (not pseudonymized), taxon,"
                " sex, life stage, first and last month seen, the 0.1° cells of its released"
                " (generalized) cameras and up to 3 reference images among the released media"
                " (the owner's favourites first, then the highest classification confidence)")


def _closure_step(scope: _Scope, *, release_effort: bool) -> Step:
    """The closure of the release: what the released records reach, and nothing else."""
    lines: list[str] = []
    if scope.has("media"):
        lines.append("media: only images a released observation was made on or spans (same"
                     " camera, between its start and end)")
    if scope.has("deployments"):
        lines.append("deployments: every camera, with or without released observations"
                     " (effort; generalized like the others)" if release_effort
                     else "deployments: only cameras with a released observation")
    if scope.has("individuals"):
        lines.append("individuals: only animals a released observation names; first and last"
                     " seen and detections recomputed from the released observations")
    if scope.has("event"):
        lines.append("event: every survey event, with or without released occurrences"
                     " (effort: zero counts)" if release_effort
                     else "event: only survey events with a released occurrence")
    return Step("closure", scope.label("media", "deployments", "individuals", "event"),
                _freeze({"release_effort": release_effort,
                         "rule": "a row leaves only with a released record that reaches it"}),
                "; ".join(lines))


def _scope(resources: Iterable[str] | None) -> _Scope:
    if resources is None:
        return _Scope(RESOURCES)
    wanted = set(resources)
    unknown = wanted - set(RESOURCES)
    if unknown:
        raise ValueError("unknown resources: " + ", ".join(sorted(unknown)))
    if not wanted:
        raise ValueError("resources must name at least one resource")
    return _Scope(tuple(r for r in RESOURCES if r in wanted))


def _projection(tier: Tier, terms: Terms, scope: _Scope, *,
                generalizes: bool) -> tuple[dict[str, frozenset[str]], list[Step]]:
    """Fields blanked per resource, and one step per reason a field is blanked."""
    withheld: dict[str, frozenset[str]] = {}
    steps: list[Step] = []
    for resource in RESOURCES:
        withheld[resource] = frozenset()
        if not scope.has(resource):
            continue
        reasons: list[tuple[str, frozenset[str]]] = [("tier", tier.withheld(resource))]
        if terms.fields is not None and resource in terms.fields:
            unwanted = (RESOURCE_FIELDS[resource] - terms.fields[resource]
                        - KEY_FIELDS[resource] - REQUIRED_FIELDS[resource])
            reasons.append(("terms", unwanted))
        if generalizes:
            reasons.append(("generalization", GENERALIZATION_LEAKS.get(resource, frozenset())))
        if tier.coarsen_time:
            reasons.append(("coarsening",
                            TIME_LEAKS[tier.coarsen_time].get(resource, frozenset())))
        blanked: frozenset[str] = frozenset()
        for reason, fields in reasons:
            new = fields - blanked
            if not new:
                continue
            blanked |= new
            steps.append(Step("projection", resource,
                              _freeze({"reason": reason, "fields": sorted(new)}),
                              _projection_line(resource, reason, new, tier)))
        withheld[resource] = blanked
    return withheld, steps


def _projection_line(resource: str, reason: str, fields: frozenset[str], tier: Tier) -> str:
    listed = ", ".join(sorted(fields))
    if reason == "tier":
        return f"{resource}: {listed} withheld (tier {tier.name})"
    if reason == "terms":
        if len(fields) > 8:
            return (f"{resource}: only the fields the agreement names are released;"
                    f" {len(fields)} other fields blank")
        return f"{resource}: {listed} blank (not among the fields the agreement names)"
    if reason == "generalization":
        return (f"{resource}: {listed} withheld (would locate records more finely than the"
                " generalized coordinates)")
    return (f"{resource}: {listed} withheld (would time records more finely than the"
            " coarsened timestamps)")


def _filters(terms: Terms, taxa: frozenset[str] | None, time_from: datetime | None,
             time_to: datetime | None, drop: list[str], scope: _Scope) -> list[Step]:
    steps: list[Step] = []
    records = scope.records
    if terms.taxa is not None and taxa is not None:
        listed = ", ".join(sorted(terms.taxa))
        steps.append(Step("filter-taxa", records, _freeze({"names": sorted(taxa)}),
                          f"{records}: only records of {listed} (or a synonym) released"
                          " (the agreement's taxa)"))
    for taxon in drop:
        summary = f"all records of {taxon} (sensitivity category 1)"
        steps.append(Step("drop-taxa", records,
                          _freeze({"taxon": taxon, "names": sorted(_rule_names(taxon)),
                                   "category": WITHHOLD, "summary": summary}),
                          f"{records}: records of {taxon} withheld entirely (category 1);"
                          " their number is reported"))
    if time_from is not None or time_to is not None:
        start = "the beginning" if terms.time_from is None else terms.time_from.isoformat()
        end = "now" if terms.time_to is None else terms.time_to.isoformat()
        steps.append(Step("filter-time", records,
                          _freeze({"from": _iso(time_from), "to": _iso(time_to),
                                   "applies_to": "the record's start, in UTC",
                                   "to_exclusive": True}),
                          f"{records}: only records starting from {start} to {end}"
                          " (UTC dates, inclusive) released"))
    if terms.bbox is not None:
        west, south, east, north = terms.bbox
        locations = scope.locations
        steps.append(Step("filter-area", locations,
                          _freeze({"bbox": list(terms.bbox),
                                   "applies_to": AREA_APPLIES_TO}),
                          f"{locations}: only locations inside longitude {west:g} to {east:g},"
                          f" latitude {south:g} to {north:g}, and their records, released;"
                          " a generalized location only if the whole cell it is rounded to"
                          " is inside, a count only for grid cells wholly inside"))
    return steps


def _embargo_step(taxon: str, days: int, cutoff: datetime, scope: _Scope) -> Step:
    when = cutoff.strftime("%Y-%m-%d %H:%M UTC")
    summary = f"records of {taxon} newer than {when} (embargo {days} days)"
    return Step("embargo", scope.records,
                _freeze({"taxon": taxon, "names": sorted(_rule_names(taxon)), "days": days,
                         "cutoff": _iso(cutoff), "summary": summary}),
                f"{scope.records}: {summary} withheld")


def _generalize_steps(tier: Tier, graded: list[tuple[int, str]], drop: list[str],
                      scope: _Scope) -> list[Step]:
    steps: list[Step] = []
    locations = scope.locations
    for category, taxon in graded:
        precision = PRECISION[category]
        also = _species_lift(taxon)
        note = f"category {category}" + (f"; also records identified only as {also}"
                                          if also else "")
        steps.append(Step(
            "generalize", locations,
            _freeze({"taxon": taxon, "names": sorted(_rule_names(taxon)), "category": category,
                     "precision": precision}),
            f"{locations}: latitude/longitude rounded to {precision:g}° for {taxon} ({note}),"
            " at every location that recorded it; uncertainty widened to match"))
    for taxon in drop:
        steps.append(Step(
            "generalize", locations,
            _freeze({"taxon": taxon, "names": sorted(_rule_names(taxon)), "category": WITHHOLD,
                     "precision": _COARSEST}),
            f"{locations}: latitude/longitude rounded to {_COARSEST:g}° at every location that"
            f" recorded {taxon} (category 1: its records are withheld, its locations"
            " generalized like category 2)"))
    if tier.default_precision is not None:
        precision = tier.default_precision
        steps.append(Step(
            "generalize", locations,
            _freeze({"taxon": None, "names": [], "category": None, "precision": precision}),
            f"{locations}: every latitude/longitude rounded to at least {precision:g}°"
            f" (tier {tier.name}); uncertainty widened to match"))
    lines = []
    if scope.has("deployments"):
        lines.append("deployments: a camera that recorded any generalized taxon is generalized"
                     " for all its rows and its deployment record")
    if scope.has("event") or scope.has("occurrence"):
        lines.append("event: a survey location that recorded any generalized taxon is"
                     " generalized for all its events and occurrences")
    steps.append(Step(
        "generalize-camera", locations,
        _freeze({"rule": "coarsest precision among all taxa ever recorded at the location,"
                         " before any filter; applies to the location's own record and to"
                         " every coordinate of its rows",
                 "uncertainty": "widened_uncertainty(existing, precision, released latitude)"}),
        "; ".join(lines)))
    return steps


def _pseudonymize_step(scope: _Scope) -> Step:
    fields = {r: list(f) for r, f in PSEUDONYMIZED_FIELDS.items() if scope.has(r)}
    named = ", ".join(f"{r}.{f}" for r, names in fields.items() for f in names)
    return Step(
        "pseudonymize", scope.label(*PSEUDONYMIZED_FIELDS),
        _freeze({"fields": fields,
                 "method": "'ind-' + first 16 hex digits of HMAC-SHA256(agreement key, id)"}),
        f"{named or 'individual ids'}: replaced by a pseudonym keyed to this agreement:"
        " stable within it, unlinkable across agreements")


def _coarsen_step(unit: str, scope: _Scope) -> Step:
    fields = {r: list(f) for r, f in TIME_FIELDS.items() if scope.has(r)}
    named = ", ".join(f"{r}.{f}" for r, names in fields.items() for f in names)
    return Step(
        "coarsen-time", scope.label(*TIME_FIELDS),
        _freeze({"unit": unit, "fields": fields, "local_time": True}),
        f"{named or 'timestamps'}: coarsened to the start of the {unit}, in each record's"
        " local time (offset kept)")


def _aggregate_step(tier: Tier, graded: list[tuple[int, str]], drop: list[str]) -> Step:
    cells = {t: PRECISION[c] for c, t in graded}
    cells.update(dict.fromkeys(drop, _COARSEST))
    return Step(
        "aggregate", "*",
        _freeze({"min_cell_degrees": dict(sorted(cells.items()))}),
        f"aggregate only (tier {tier.name}): no record leaves the node, only summary counts;"
        " grid cells for sensitive taxa no finer than their category allows")


# --- helpers ---------------------------------------------------------------------------


def _rule_names(taxon: str) -> frozenset[str]:
    """Names a sensitivity or embargo rule for ``taxon`` matches.

    Its synonyms, and for a subspecies its species (a record identified only
    as *Panthera pardus* may be the Far Eastern leopard). Only the accepted
    name is lifted: an old trinomial synonym such as *Capreolus capreolus
    pygargus* must not drag in the European roe deer.
    """
    names = set(names_for(taxon))
    species = _species(accepted_name(taxon))
    if species is not None:
        names.add(species)
    return frozenset(names)


def _species(name: str) -> str | None:
    """The binomial of an infraspecific (or author-suffixed) name, or None for a binomial."""
    words = normalise(name).split()
    if len(words) < 3:
        return None
    return " ".join(words[:2])


def _species_lift(taxon: str) -> str:
    lifted = sorted(_rule_names(taxon) - names_for(taxon))
    return ", ".join(lifted)


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _lookup(mapping: Mapping[str, Any], name: str) -> list[Any]:
    """Values of every rule ``name`` matches, in any spelling (see the module docstring)."""
    accepted = accepted_name(name)
    candidates = {normalise(name), accepted}
    species = _species(accepted)
    if species is not None:  # a subspecies of a sensitive species is sensitive
        candidates |= {species, accepted_name(species)}
    return [mapping[c] for c in candidates if c in mapping]


def _merge(pairs: Iterable[tuple[str, Any]], pick: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        out[key] = value if key not in out else pick(out[key], value)
    return out


def _cutoff(now: datetime, days: int) -> datetime:
    """``now - days``, floored to midnight UTC: never later, so never a shorter embargo."""
    moment = now - timedelta(days=days)
    return datetime.combine(moment.date(), time(0), UTC)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value
