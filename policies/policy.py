"""A dataset's sharing policy: what its owner offers, validated strictly on load.

The owner writes the policy as YAML or JSON (schema and example in
``docs/policy.md``); the node parses the file and hands the mapping to
:func:`load_policy`, which either returns a frozen :class:`Policy` or raises
:class:`~policies.errors.PolicyError` naming the dotted field and the reason.
Nothing is guessed: unknown keys, wrong types, categories outside 1-4 and
rules that contradict each other are refused, because a typo in a policy is a
leak waiting to happen (``withold_fields`` silently ignored would release
every field).
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from crypto.canonical import canonical_json
from policies.errors import PolicyError, did_you_mean
from policies.grid import PERIOD_UNITS
from policies.sensitivity import CATEGORIES, default_profile
from policies.taxonomy import accepted_name, normalise
from policies.vocabulary import (
    DEPLOYMENT_FIELDS,
    INDIVIDUAL_FIELDS,
    MEDIA_FIELDS,
    OBSERVATION_FIELDS,
)

__all__ = [
    "COARSEN_UNITS",
    "DEFAULT_POLICY_DOCUMENT",
    "DEFAULT_WITHHELD",
    "KEY_FIELDS",
    "PRECISIONS",
    "PURPOSES",
    "REQUIRED_FIELDS",
    "RESOURCES",
    "RESOURCE_FIELDS",
    "Policy",
    "Tier",
    "default_policy",
    "load_policy",
]

#: Allowed purposes: a closed, DUO-like vocabulary (DESIGN.md §6).
PURPOSES = ("research", "joint-monitoring", "park-management", "law-enforcement", "education")
#: Units a tier may coarsen timestamps to (``none`` = keep them as recorded).
COARSEN_UNITS = ("day", "month")
#: Coordinate roundings a tier may impose on every coordinate (GBIF categories 2-4).
PRECISIONS = (0.1, 0.01, 0.001)
#: Upper bound on any count of days, so ``now - days`` can never overflow.
MAX_DAYS = 36_500

# Darwin Core terms of the Occurrence core (a superset of the Event core's), as
# listed by TDWG in dwc/dist/dwc_occurrence_core_horizontal.csv. A DwC file
# may carry any of them in either table, so both resources accept all.
_DWC_TERMS_TEXT = """
type modified language license rightsHolder accessRights bibliographicCitation references
institutionID collectionID datasetID institutionCode collectionCode datasetName
ownerInstitutionCode basisOfRecord informationWithheld dataGeneralizations dynamicProperties
feedbackURL occurrenceID recordedBy recordedByID individualCount organismQuantity
organismQuantityType sex lifeStage reproductiveCondition caste behavior vitality
establishmentMeans degreeOfEstablishment pathway substrate occurrenceStatus associatedMedia
associatedOccurrences associatedReferences associatedTaxa occurrenceRemarks materialEntityID
digitalSpecimenID isPartOfMaterialEntityID materialRole materialProportion
materialEntityCategory materialEntityType discipline sampledFeatureType typeOfType
typifiedName catalogNumber otherCatalogNumbers recordNumber objectQuantity
objectQuantityType preparations disposition measuredMassInGrams verbatimMass verbatimLabel
associatedSequences treatments handlingRequirements hazardType hazardRemarks damageRemarks
materialDescription materialEntityRemarks organismID organismScope organismPart organismName
causeOfDeath associatedOrganisms previousIdentifications organismRemarks eventID
parentEventID eventCategory eventType fieldNumber eventDurationValue eventDurationUnit
eventDate eventTime startDayOfYear endDayOfYear year month day verbatimEventDate habitat
isVegetationCoverReported sampledSubstrateCategory sampledSubstrateLayer samplingProtocol
sampleSizeValue sampleSizeUnit samplingEffort fieldNotes reportedExtremeConditions
reportedWeather eventRemarks projectTitle projectID fundingAttribution fundingAttributionID
locationID siteNumber higherGeographyID higherGeography continent waterBody islandGroup
island country countryCode stateProvince county municipality locality verbatimLocality
namedPlace minimumElevationInMeters maximumElevationInMeters verbatimElevation verticalDatum
minimumDepthInMeters maximumDepthInMeters verbatimDepth minimumDistanceAboveSurfaceInMeters
maximumDistanceAboveSurfaceInMeters locationAccordingTo locationRemarks
preferredSpatialRepresentation georeferenceVerificationStatus decimalLatitude
decimalLongitude geodeticDatum coordinateUncertaintyInMeters coordinatePrecision
pointRadiusSpatialFit verbatimCoordinates verbatimLatitude verbatimLongitude
verbatimCoordinateSystem verbatimSRS footprintWKT footprintSRS footprintSpatialFit
georeferencedBy georeferencedDate georeferenceProtocol georeferenceSources
georeferenceRemarks geologicalContextID earliestEonOrLowestEonothem
latestEonOrHighestEonothem earliestEraOrLowestErathem latestEraOrHighestErathem
earliestPeriodOrLowestSystem latestPeriodOrHighestSystem earliestEpochOrLowestSeries
latestEpochOrHighestSeries earliestAgeOrLowestStage latestAgeOrHighestStage
lowestBiostratigraphicZone highestBiostratigraphicZone lithostratigraphicTerms group
formation member bed geologicEvent geologicProvince lithodemicUnit tectonicUnits
identificationID identificationType verbatimIdentification isAcceptedIdentification
identificationQualifier typeStatus identifiedBy identifiedByID dateIdentified
identificationReferences identificationVerificationStatus identificationRemarks taxonID
scientificNameID acceptedNameUsageID parentNameUsageID originalNameUsageID nameAccordingToID
namePublishedInID taxonConceptID scientificName acceptedNameUsage parentNameUsage
originalNameUsage nameAccordingTo namePublishedIn namePublishedInYear higherClassification
kingdom phylum class order superfamily family subfamily tribe subtribe genus genericName
subgenus infragenericEpithet specificEpithet infraspecificEpithet cultivarEpithet taxonRank
verbatimTaxonRank classificationSystem scientificNameAuthorship vernacularName
nomenclaturalCode taxonomicStatus nomenclaturalStatus taxonRemarks
"""
_DWC_TERMS = tuple(_DWC_TERMS_TEXT.split())

#: Every resource a plan can touch: Camtrap DP 1.0.2 tables, Corridor's
#: ``individuals``, and the Darwin Core sampling-event pair.
RESOURCES = ("deployments", "media", "observations", "individuals", "event", "occurrence")

#: The fields each resource may carry (what ``withhold_fields`` and terms may name).
RESOURCE_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType({
    "deployments": frozenset(DEPLOYMENT_FIELDS),
    "media": frozenset(MEDIA_FIELDS),
    "observations": frozenset(OBSERVATION_FIELDS),
    "individuals": frozenset(INDIVIDUAL_FIELDS),
    "event": frozenset(_DWC_TERMS),
    "occurrence": frozenset(_DWC_TERMS),
})

#: Identifiers that link one resource to another (primary and foreign keys).
#: They can never be withheld: the package would fall apart. To keep a whole
#: resource home, offer an aggregate-only tier instead.
KEY_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType({
    "deployments": frozenset({"deploymentID"}),
    "media": frozenset({"mediaID", "deploymentID"}),
    "observations": frozenset({"observationID", "deploymentID", "mediaID"}),
    "individuals": frozenset({"individualID"}),
    "event": frozenset({"eventID"}),
    "occurrence": frozenset({"occurrenceID", "eventID"}),
})

#: Fields a resource cannot be valid without (``required`` in the Camtrap DP
#: 1.0.2 table schemas, Corridor's individuals schema, and the node's Darwin
#: Core import). When an agreement's ``fields`` narrow a resource, these are
#: still released; an owner may still withhold the ones that are not keys.
REQUIRED_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType({
    "deployments": frozenset({"deploymentID", "latitude", "longitude", "deploymentStart",
                              "deploymentEnd"}),
    "media": frozenset({"mediaID", "deploymentID", "timestamp", "filePath", "filePublic",
                        "fileMediatype"}),
    "observations": frozenset({"observationID", "deploymentID", "eventStart", "eventEnd",
                               "observationLevel", "observationType"}),
    "individuals": frozenset({"individualID", "scientificName", "transboundary", "firstSeen",
                              "lastSeen", "detections"}),
    "event": frozenset({"eventID", "eventDate"}),
    "occurrence": frozenset({"occurrenceID", "eventID", "basisOfRecord", "scientificName"}),
})

#: What :func:`default_policy` withholds in its ``generalized`` tier: people,
#: free-text comments (they name places), file locations and EXIF blocks
#: (which can hold GPS positions and exact capture times).
DEFAULT_WITHHELD: Mapping[str, frozenset[str]] = MappingProxyType({
    "deployments": frozenset({"setupBy", "locationName", "deploymentComments"}),
    "media": frozenset({"filePath", "fileName", "exifData", "mediaComments"}),
    "observations": frozenset({"classifiedBy", "observationComments"}),
    "individuals": frozenset({"notes"}),
    "event": frozenset({"recordedBy", "recordedByID", "eventRemarks", "fieldNotes",
                        "verbatimCoordinates", "verbatimLatitude", "verbatimLongitude",
                        "verbatimLocality", "footprintWKT", "georeferenceRemarks",
                        "locationRemarks"}),
    "occurrence": frozenset({"recordedBy", "recordedByID", "identifiedBy", "identifiedByID",
                             "occurrenceRemarks", "associatedMedia"}),
})

# Same pattern as corridor/config.py::MEMBER_ID_RE (policies may not import corridor).
_MEMBER_ID_RE = re.compile(r"[a-z]{2}-[a-z0-9][a-z0-9-]{1,30}")
_TIER_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_MAX_NAME = 255

_POLICY_KEYS = ("tiers", "sensitivity", "embargo_days", "purposes", "partners",
                "max_duration_days")
_REQUIRED_POLICY_KEYS = ("tiers", "purposes", "partners")
_TIER_KEYS = ("aggregate_only", "default_precision", "coarsen_time", "withhold_fields",
              "catalogue_cards", "private_overlap",
              "pseudonymize_individuals", "apply_sensitivity", "release_effort", "min_events",
              "min_cameras", "count_periods")
#: Disclosure defaults of every tier's counts (DESIGN.md §9).
DEFAULT_MIN_EVENTS = 3
DEFAULT_MIN_CAMERAS = 3
_MAX_THRESHOLD = 1000
_DEFAULT_MAX_DURATION = 730


@dataclass(frozen=True)
class Tier:
    """One access tier the owner offers, and its rules.

    ``coarsen_time`` is ``None`` when timestamps are kept as recorded.
    ``withhold_fields`` maps a resource to the fields blanked in it; resources
    without withheld fields are absent. ``release_effort`` releases the
    cameras (and survey events) without a released record too: effort that
    camera-days and zero counts need, which also tells where nothing of the
    released taxa was seen; off by default.

    ``catalogue_cards`` adds a ``cards`` resource to the package: one card per
    released individual, under its catalogue id (never pseudonymized), for the
    other side's experts to compare (:mod:`node.exchange.cards`).

    ``private_overlap`` names the individuals column holding an identifier
    both sides share (a genotype from a common marker panel, a joint
    catalogue code): the tier then allows the private overlap count over it
    (:mod:`crypto.psi`), which tells how many such identifiers the two sides
    have in common and never which. ``None`` (the default) offers no count.

    ``min_events``, ``min_cameras`` and ``count_periods`` are the disclosure
    rules of the joint counts served under the tier (:mod:`policies.suppression`):
    cells with fewer independent events or cameras are suppressed, and only
    the period units listed can be asked for.
    """

    name: str
    aggregate_only: bool = False
    default_precision: float | None = None
    coarsen_time: str | None = None
    withhold_fields: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: MappingProxyType({}))
    pseudonymize_individuals: bool = False
    apply_sensitivity: bool = True
    release_effort: bool = False
    min_events: int = DEFAULT_MIN_EVENTS
    min_cameras: int = DEFAULT_MIN_CAMERAS
    count_periods: tuple[str, ...] = PERIOD_UNITS
    catalogue_cards: bool = False
    private_overlap: str | None = None

    def withheld(self, resource: str) -> frozenset[str]:
        """Fields of ``resource`` this tier withholds (empty if none)."""
        return self.withhold_fields.get(resource, frozenset())

    def to_json(self) -> dict[str, Any]:
        """The tier as it would be written in a policy file (all keys explicit)."""
        return {
            "aggregate_only": self.aggregate_only,
            "default_precision": self.default_precision,
            "coarsen_time": self.coarsen_time or "none",
            "withhold_fields": {r: sorted(f) for r, f in sorted(self.withhold_fields.items())},
            "pseudonymize_individuals": self.pseudonymize_individuals,
            "apply_sensitivity": self.apply_sensitivity,
            "release_effort": self.release_effort,
            "min_events": self.min_events,
            "min_cameras": self.min_cameras,
            "count_periods": list(self.count_periods),
            "catalogue_cards": self.catalogue_cards,
            "private_overlap": self.private_overlap,
        }


@dataclass(frozen=True)
class Policy:
    """A dataset's policy, validated: everything an agreement's terms may only narrow.

    ``sensitivity`` is the shipped default profile merged with the owner's
    overrides, keyed by accepted scientific name; ``embargo_days`` is keyed
    the same way. ``partners`` holds member ids, or just ``"*"`` for every
    member of the federation.
    """

    tiers: Mapping[str, Tier]
    sensitivity: Mapping[str, int]
    embargo_days: Mapping[str, int]
    purposes: frozenset[str]
    partners: frozenset[str]
    max_duration_days: int

    def allows_partner(self, member_id: str) -> bool:
        """Whether ``member_id`` may request access under this policy."""
        return "*" in self.partners or member_id in self.partners

    def to_json(self) -> dict[str, Any]:
        """The policy as a document :func:`load_policy` reads back to an equal policy."""
        return {
            "tiers": {name: tier.to_json() for name, tier in sorted(self.tiers.items())},
            "sensitivity": dict(sorted(self.sensitivity.items())),
            "embargo_days": dict(sorted(self.embargo_days.items())),
            "purposes": [p for p in PURPOSES if p in self.purposes],
            "partners": sorted(self.partners),
            "max_duration_days": self.max_duration_days,
        }

    def digest(self) -> str:
        """``sha256:`` + hex digest of the RFC 8785 canonical JSON of :meth:`to_json`."""
        return "sha256:" + hashlib.sha256(canonical_json(self.to_json())).hexdigest()


# --- loading -------------------------------------------------------------------


def load_policy(data: Mapping[str, Any]) -> Policy:
    """Validate a parsed policy document (YAML or JSON) and return the :class:`Policy`.

    :raises PolicyError: naming the dotted field and the reason, for the
        first problem found: an unknown or missing key, a wrong type, a
        category outside 1-4, an unknown purpose, resource or field, or rules
        that contradict each other.
    """
    document = _mapping(data, "policy")
    _check_keys(document, _POLICY_KEYS, "", required=_REQUIRED_POLICY_KEYS)

    tiers_raw = _mapping(document["tiers"], "tiers")
    if not tiers_raw:
        raise PolicyError("tiers", "at least one tier is required (an empty policy shares nothing;"
                                   " say so by not approving requests)")
    tiers: dict[str, Tier] = {}
    for name, rules in tiers_raw.items():
        if not isinstance(name, str) or not _TIER_NAME_RE.fullmatch(name):
            raise PolicyError(f"tiers.{name}", "a tier name is 1-32 lower-case letters, digits,"
                                               " '-' or '_', starting with a letter")
        tiers[name] = _load_tier(name, rules)

    profile = default_profile()
    profile.update(_taxon_map(document.get("sensitivity", {}), "sensitivity", _category))
    embargo = _taxon_map(document.get("embargo_days", {}), "embargo_days", _embargo)

    purposes = _string_set(document["purposes"], "purposes")
    for purpose in purposes:
        if purpose not in PURPOSES:
            raise PolicyError("purposes", f"unknown purpose {purpose!r}; allowed: "
                                          + ", ".join(PURPOSES))
    partners = _string_set(document["partners"], "partners")
    if "*" in partners and len(partners) > 1:
        raise PolicyError("partners", "'*' already allows every member; list either '*' or"
                                      " member ids, not both")
    for partner in partners - {"*"}:
        if not _MEMBER_ID_RE.fullmatch(partner):
            raise PolicyError("partners", f"{partner!r} is not a member id (like 'ru-lotl') or '*'")

    max_duration = _integer(document.get("max_duration_days", _DEFAULT_MAX_DURATION),
                            "max_duration_days")
    if not 0 < max_duration <= MAX_DAYS:
        raise PolicyError("max_duration_days", f"must be between 1 and {MAX_DAYS} days")

    return Policy(
        tiers=MappingProxyType(tiers),
        sensitivity=MappingProxyType(profile),
        embargo_days=MappingProxyType(embargo),
        purposes=frozenset(purposes),
        partners=frozenset(partners),
        max_duration_days=max_duration,
    )


def _load_tier(name: str, rules: Any) -> Tier:
    where = f"tiers.{name}"
    if rules is None:
        raise PolicyError(where, "must be a mapping of tier rules ({} for the defaults)")
    tier = _mapping(rules, where)
    _check_keys(tier, _TIER_KEYS, where)

    aggregate_only = _boolean(tier.get("aggregate_only", False), f"{where}.aggregate_only")
    precision = _precision(tier.get("default_precision"), f"{where}.default_precision")
    coarsen = _coarsen(tier.get("coarsen_time", "none"), f"{where}.coarsen_time")
    withhold = _withhold(tier.get("withhold_fields", {}), f"{where}.withhold_fields")
    pseudonymize = _boolean(tier.get("pseudonymize_individuals", False),
                            f"{where}.pseudonymize_individuals")
    sensitivity = _boolean(tier.get("apply_sensitivity", True), f"{where}.apply_sensitivity")
    effort = _boolean(tier.get("release_effort", False), f"{where}.release_effort")
    cards = _boolean(tier.get("catalogue_cards", False), f"{where}.catalogue_cards")
    overlap = tier.get("private_overlap")
    if overlap is not None and (not isinstance(overlap, str)
                                or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", overlap)):
        raise PolicyError(f"{where}.private_overlap", "must be the name of an individuals "
                          "column (letters, digits, _), e.g. genotype, or absent")
    min_events = _threshold(tier.get("min_events", DEFAULT_MIN_EVENTS), f"{where}.min_events")
    min_cameras = _threshold(tier.get("min_cameras", DEFAULT_MIN_CAMERAS),
                             f"{where}.min_cameras")
    periods = _string_set(tier.get("count_periods", list(PERIOD_UNITS)),
                          f"{where}.count_periods")
    for unit in periods:
        if unit not in PERIOD_UNITS:
            raise PolicyError(f"{where}.count_periods", f"unknown period {unit!r}; allowed: "
                                                        + ", ".join(PERIOD_UNITS))
    if not periods:
        raise PolicyError(f"{where}.count_periods", "offer at least one period unit")

    if aggregate_only:
        # An aggregate-only tier releases no rows, so row rules in it are a
        # misunderstanding, and an owner who writes them expects them to matter.
        for key, present in (("withhold_fields", bool(withhold)),
                             ("default_precision", precision is not None),
                             ("coarsen_time", coarsen is not None),
                             ("pseudonymize_individuals", pseudonymize),
                             ("release_effort", effort), ("catalogue_cards", cards)):
            if present:
                raise PolicyError(f"{where}.{key}", "contradicts aggregate_only: an aggregate-only"
                                                    " tier releases no rows to apply it to")
    if pseudonymize and "individualID" in withhold.get("observations", frozenset()):
        raise PolicyError(f"{where}.pseudonymize_individuals",
                          "contradicts withhold_fields: observations.individualID is withheld,"
                          " so there is nothing to pseudonymize")
    if cards and pseudonymize:
        raise PolicyError(f"{where}.catalogue_cards",
                          "contradicts pseudonymize_individuals: a card names the animal by its "
                          "catalogue id so that the other side can match it")
    if cards and "individualID" in withhold.get("observations", frozenset()):
        raise PolicyError(f"{where}.catalogue_cards",
                          "contradicts withhold_fields: observations.individualID is withheld, "
                          "so no observation says which animal it shows")
    return Tier(name=name, aggregate_only=aggregate_only, default_precision=precision,
                coarsen_time=coarsen, withhold_fields=MappingProxyType(withhold),
                pseudonymize_individuals=pseudonymize, apply_sensitivity=sensitivity,
                release_effort=effort, min_events=min_events, min_cameras=min_cameras,
                count_periods=tuple(u for u in PERIOD_UNITS if u in periods),
                catalogue_cards=cards, private_overlap=overlap)


def _threshold(value: Any, where: str) -> int:
    number = _integer(value, where)
    if not 1 <= number <= _MAX_THRESHOLD:
        raise PolicyError(where, f"must be a whole number from 1 to {_MAX_THRESHOLD}")
    return number


def _withhold(value: Any, where: str) -> dict[str, frozenset[str]]:
    resources = _mapping(value, where)
    out: dict[str, frozenset[str]] = {}
    for resource, names in resources.items():
        path = f"{where}.{resource}"
        if resource not in RESOURCE_FIELDS:
            raise PolicyError(path, "unknown resource; one of " + ", ".join(RESOURCES))
        fields = validate_fields(resource, names, path, withholding=True)
        if fields:
            out[resource] = fields
    return out


def validate_fields(resource: str, names: Any, where: str, *,
                    withholding: bool) -> frozenset[str]:
    """Check a list of field names of ``resource``: real fields, listed once.

    Shared by policies (``withhold_fields``, where key fields are refused:
    ``withholding=True``) and terms (``fields``, where they may be named).

    :raises PolicyError: for a non-list, a name that is not a field of the
        resource, a name listed twice, or (when withholding) a key field.
    """
    if not isinstance(names, list | tuple):
        raise PolicyError(where, "must be a list of field names")
    known, keys = RESOURCE_FIELDS[resource], KEY_FIELDS[resource]
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise PolicyError(where, f"field names are strings, not {_type(name)}")
        if name not in known:
            raise PolicyError(f"{where}.{name}", f"not a field of {resource}"
                              + did_you_mean(name, known))
        if withholding and name in keys:
            raise PolicyError(f"{where}.{name}", f"is a key linking {resource} to other"
                              " resources and cannot be withheld; offer an aggregate-only"
                              " tier to keep the resource home")
        if name in seen:
            raise PolicyError(f"{where}.{name}", "listed twice")
        seen.add(name)
    return frozenset(seen)


def _taxon_map(value: Any, where: str, convert: Any) -> dict[str, int]:
    raw = _mapping(value, where)
    out: dict[str, int] = {}
    spelled: dict[str, str] = {}
    for name, setting in raw.items():
        if not isinstance(name, str) or not normalise(name) or len(name) > _MAX_NAME:
            raise PolicyError(f"{where}.{name}", "must be a scientific name")
        accepted = accepted_name(name)
        if accepted in spelled:
            raise PolicyError(f"{where}.{name}", f"same taxon as {spelled[accepted]!r}"
                              f" ({accepted}), listed twice")
        spelled[accepted] = name
        out[accepted] = convert(setting, f"{where}.{name}")
    return out


def _category(value: Any, where: str) -> int:
    category = _integer(value, where)
    if category not in CATEGORIES:
        raise PolicyError(where, f"category {category} is not a GBIF sensitivity category"
                                 " (1 withhold, 2 = 0.1°, 3 = 0.01°, 4 = 0.001°)")
    return category


def _embargo(value: Any, where: str) -> int:
    days = _integer(value, where)
    if days < 0:
        raise PolicyError(where, "an embargo cannot be negative (0 means no embargo)")
    if days > MAX_DAYS:
        raise PolicyError(where, f"must be at most {MAX_DAYS} days")
    return days


def _precision(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(where, f"must be a number of degrees or null, not {_type(value)}")
    for allowed in PRECISIONS:
        if math.isclose(value, allowed, rel_tol=1e-9):
            return allowed
    raise PolicyError(where, f"{value} is not one of 0.1, 0.01, 0.001 (degrees) or null")


def _coarsen(value: Any, where: str) -> str | None:
    if value is None or value == "none":
        return None
    if not isinstance(value, str) or value not in COARSEN_UNITS:
        raise PolicyError(where, f"{value!r} is not one of none, day, month")
    return value


# --- small typed readers -------------------------------------------------------------


def _type(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping", type(None): "null"}.get(type(value),
                                                                    type(value).__name__)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(where, f"must be a mapping, not {_type(value)}")
    for key in value:
        if not isinstance(key, str):
            raise PolicyError(where, f"keys must be strings, not {_type(key)} ({key!r})")
    return value


def _check_keys(value: Mapping[str, Any], allowed: Iterable[str], where: str,
                required: Iterable[str] = ()) -> None:
    allowed = tuple(allowed)
    prefix = f"{where}." if where else ""
    for key in value:
        if key not in allowed:
            raise PolicyError(prefix + key, "unknown key" + did_you_mean(key, allowed)
                              + "; allowed: " + ", ".join(allowed))
    for key in required:
        if key not in value:
            raise PolicyError(prefix + key, "required key is missing")


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(where, f"must be true or false, not {_type(value)}")
    return value


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(where, f"must be an integer, not {_type(value)}")
    return value


def _string_set(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list | tuple):
        raise PolicyError(where, f"must be a list, not {_type(value)}")
    if not value:
        raise PolicyError(where, "must not be empty (an empty list would refuse every request)")
    out: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            raise PolicyError(where, f"items must be strings, not {_type(item)}")
        if item in out:
            raise PolicyError(where, f"{item!r} listed twice")
        out.add(item)
    return frozenset(out)


# --- the shipped default --------------------------------------------------------------


#: The document behind :func:`default_policy`, as an owner would write it (plain
#: dicts and lists, ready for ``yaml.safe_dump``). Treat it as read-only.
DEFAULT_POLICY_DOCUMENT: dict[str, Any] = {
    "tiers": {
        "aggregate": {"aggregate_only": True},
        "generalized": {
            "default_precision": None,
            "coarsen_time": "day",
            "withhold_fields": {r: sorted(f) for r, f in DEFAULT_WITHHELD.items()},
            "pseudonymize_individuals": True,
            "apply_sensitivity": True,
        },
    },
    "sensitivity": {},
    "embargo_days": {"Panthera tigris altaica": 90, "Panthera pardus orientalis": 90},
    "purposes": list(PURPOSES),
    "partners": ["*"],
    "max_duration_days": _DEFAULT_MAX_DURATION,
}


def default_policy() -> Policy:
    """A sensible starting policy for a dataset whose owner has not written one.

    Tiers ``aggregate`` (summary counts only) and ``generalized`` (timestamps
    to the day; people, comments, file paths and EXIF withheld; individual ids
    pseudonymized; the default sensitivity profile applied); a 90-day embargo
    on Amur tiger and Far Eastern leopard records; every purpose; every
    member may ask; agreements of at most two years. Its document is
    :data:`DEFAULT_POLICY_DOCUMENT`.
    """
    return load_policy(copy.deepcopy(DEFAULT_POLICY_DOCUMENT))
