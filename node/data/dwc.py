"""Camtrap DP 1.0.2 to a Darwin Core Occurrence table, streamed.

Reference behaviour is the Occurrence core written by ``write_dwc()`` in INBO's
R package camtrapdp (``R/write_dwc.R`` at inbo/camtrapdp 08bc5dfe), together
with the helpers it relies on: ``read_camtrapdp()`` joins ``taxon.taxonID`` onto
observations from the package's ``taxonomic`` list, ``taxonomic()`` keeps the
first entry per ``scientificName``, and ``filter_observations()`` keeps only
animal observations of one level. Its snapshot test
``tests/testthat/_snaps/write_dwc/occurrence.csv`` is the golden file that
``tests/node/test_dwc.py`` reproduces value for value.

Strings are formatted the way R formats them:

* numeric columns are printed by ``readr::write_csv()``, i.e. vroom's
  ``dtoa_grisu3()`` (shortest round-trip digits; ``1.3``, ``1``, ``1e-4``);
* numbers pasted into text (``dataGeneralizations``, the certainty in
  ``identificationRemarks``) go through base R ``as.character()``
  (15 significant digits; ``0.001``, ``1e-04``, ``89``);
* datetimes are printed in UTC as ``%Y-%m-%dT%H:%M:%SZ`` (seconds truncated).

Where R would silently print the text ``NA`` inside a value (a deployment
without start or end, a ``featureType`` outside the Camtrap DP enum) or where
the row order would be undefined (no ``eventStart``), :func:`camtrap_to_dwc`
raises :class:`ValueError` instead.

Ordering: R sorts the joined table with ``arrange(deploymentID, eventStart)``, a
stable sort in the C locale. This module does not sort (it streams), so the
caller must supply observations ordered by ``deploymentID`` in code-point
order (``COLLATE "C"`` in PostgreSQL; SQLite's default ``BINARY`` is fine), then
by ``eventStart`` as an instant (compare in UTC, not as offset text), then by
their original row order in ``observations.csv``. Only included observations
(see :func:`camtrap_to_dwc`) need to be in that order; a violation raises
:class:`ValueError` rather than yield a table that differs from R's.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO

__all__ = ["DWC_OCCURRENCE_FIELDS", "camtrap_to_dwc", "observation_level", "write_dwc_csv"]

#: Columns of the Occurrence core, in the order ``write_dwc()`` writes them.
DWC_OCCURRENCE_FIELDS: tuple[str, ...] = (
    "type",
    "license",
    "rightsHolder",
    "datasetID",
    "collectionCode",
    "datasetName",
    "basisOfRecord",
    "dataGeneralizations",
    "occurrenceID",
    "individualCount",
    "sex",
    "lifeStage",
    "behavior",
    "occurrenceStatus",
    "occurrenceRemarks",
    "organismID",
    "eventID",
    "parentEventID",
    "eventDate",
    "habitat",
    "samplingProtocol",
    "samplingEffort",
    "eventRemarks",
    "locationID",
    "locality",
    "minimumDepthInMeters",
    "maximumDepthInMeters",
    "minimumDistanceAboveSurfaceInMeters",
    "maximumDistanceAboveSurfaceInMeters",
    "decimalLatitude",
    "decimalLongitude",
    "geodeticDatum",
    "coordinateUncertaintyInMeters",
    "coordinatePrecision",
    "identifiedBy",
    "dateIdentified",
    "identificationVerificationStatus",
    "identificationRemarks",
    "taxonID",
    "scientificName",
    "kingdom",
)

_FIELD_SET = frozenset(DWC_OCCURRENCE_FIELDS)

# Camtrap DP 1.0.2 deployments.featureType enum -> wording used in eventRemarks.
_FEATURE_TYPES: Mapping[str, str] = {
    "roadPaved": "paved road",
    "roadDirt": "dirt road",
    "trailHiking": "hiking trail",
    "trailGame": "game trail",
    "roadUnderpass": "road underpass",
    "roadOverpass": "road overpass",
    "roadBridge": "road bridge",
    "culvert": "culvert",
    "burrow": "burrow",
    "nestSite": "nest site",
    "carcass": "carcass",
    "waterSource": "water source",
    "fruitingTree": "fruiting tree",
}


def camtrap_to_dwc(
    package: Mapping[str, Any],
    deployments: Iterable[Mapping[str, Any]],
    media: Iterable[Mapping[str, Any]],
    observations: Iterable[Mapping[str, Any]],
) -> Iterator[dict[str, str]]:
    """Yield DwC occurrence rows (all values already formatted as the CSV strings; '' for empty).

    One row per observation with ``observationType == "animal"`` at the
    package's observation level: ``"event"``, unless
    ``package["gbifIngestion"]["observationLevel"] == "media"`` (never both, to
    avoid duplicates). Every other observation is skipped.

    ``package`` is the parsed ``datapackage.json``. Rows of the three tables
    are keyed by Camtrap DP field names with typed values (``None`` when
    missing; datetimes as ISO 8601 text with an offset). ``deployments`` is
    read in full when this function is called; ``observations`` is consumed
    lazily, one row per step, and must be ordered as described in the module
    docstring. ``media`` is accepted for interface symmetry but not read: in
    the reference, media only feed the Audubon extension and ``type`` is
    always ``"Image"``.

    Raises :class:`ValueError` (when called, or while iterating) for a
    duplicate ``deploymentID``, a deployment without start or end, an unknown
    ``featureType``, an included observation whose deployment is unknown or
    that has no ``eventStart``, an unparseable datetime, and observations out
    of order.
    """
    del media  # see docstring: the Occurrence core does not depend on media
    record = _record_terms(package)
    deployment_index = _index_deployments(deployments)
    return _occurrences(
        observations,
        level=observation_level(package),
        record=record,
        deployments=deployment_index,
        taxon_ids=_taxon_ids(package),
    )


def write_dwc_csv(rows: Iterable[Mapping[str, str]], out: TextIO) -> int:
    """Write header + rows with csv module quoting as in the golden file; return row count.

    Fields are quoted only when they contain a comma, a double quote or a line
    break, and lines end in ``\\n``, as ``readr::write_csv()`` does. Open
    ``out`` with ``newline=""``. A key outside :data:`DWC_OCCURRENCE_FIELDS`
    raises :class:`ValueError`; a missing key is written as empty.

    One difference from readr: an R empty string (as opposed to ``NA``) is
    written by readr as ``""``, but rows here carry ``''`` for both, so both
    are written as an empty field. The values read back are identical.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DWC_OCCURRENCE_FIELDS)
    count = 0
    for row in rows:
        unknown = row.keys() - _FIELD_SET
        if unknown:
            raise ValueError(f"not Darwin Core Occurrence columns: {sorted(unknown)}")
        writer.writerow([row.get(name, "") for name in DWC_OCCURRENCE_FIELDS])
        count += 1
    return count


# --- Record-level terms (package metadata) ---------------------------------


def _record_terms(package: Mapping[str, Any]) -> dict[str, str]:
    """Terms that are the same on every row: constants and package metadata."""
    precision = package.get("coordinatePrecision")
    sources = package.get("sources") or []
    return {
        "type": "Image",
        "license": _text(_first_with(package.get("licenses"), "scope", "data").get("name")),
        "rightsHolder": _text(
            _first_with(package.get("contributors"), "role", "rightsHolder").get("title")
        ),
        "datasetID": _text(package.get("id")),
        "collectionCode": _text(sources[0].get("title")) if sources else "",
        "datasetName": _text(package.get("title")),
        "basisOfRecord": "MachineObservation",
        "dataGeneralizations": (
            ""
            if precision is None
            else f"coordinates rounded to {_format_r_text_number(precision)} degree"
        ),
        "occurrenceStatus": "present",
        "samplingProtocol": "camera trap",
        "geodeticDatum": "EPSG:4326",  # WGS84
        "coordinatePrecision": _format_csv_number(precision),
        "kingdom": "Animalia",
    }


def _first_with(items: Any, key: str, value: str) -> Mapping[str, Any]:
    """First mapping in ``items`` whose ``key`` equals ``value``, else an empty one."""
    for item in items or []:
        if isinstance(item, Mapping) and item.get(key) == value:
            return item
    return {}


def observation_level(package: Mapping[str, Any]) -> str:
    """The observation level published: "media" only when the package asks for it."""
    ingestion = package.get("gbifIngestion")
    if isinstance(ingestion, Mapping) and ingestion.get("observationLevel") == "media":
        return "media"
    return "event"


def _taxon_ids(package: Mapping[str, Any]) -> dict[str, str]:
    """``scientificName`` -> ``taxonID`` from ``package["taxonomic"]``; the first entry wins."""
    taxon_ids: dict[str, str] = {}
    for taxon in package.get("taxonomic") or []:
        name = taxon.get("scientificName")
        if name is not None and name not in taxon_ids:
            taxon_ids[name] = _text(taxon.get("taxonID"))
    return taxon_ids


# --- Deployment terms --------------------------------------------------------


@dataclass(frozen=True)
class _Deployment:
    """What a deployment contributes to each of its occurrences, preformatted."""

    terms: dict[str, str]
    #: Start of eventRemarks, e.g. "camera trap without bait near game trail".
    remarks_head: str
    #: End of eventRemarks: " | <deploymentComments>" or "".
    remarks_tail: str


def _index_deployments(deployments: Iterable[Mapping[str, Any]]) -> dict[str, _Deployment]:
    """Preformat every deployment once, keyed by ``deploymentID``."""
    index: dict[str, _Deployment] = {}
    for deployment in deployments:
        deployment_id = deployment.get("deploymentID")
        if not isinstance(deployment_id, str):
            raise ValueError(f"deployment without a deploymentID: {dict(deployment)!r}")
        if deployment_id in index:
            raise ValueError(f"duplicate deploymentID {deployment_id!r} in deployments")
        index[deployment_id] = _deployment_terms(deployment_id, deployment)
    return index


def _deployment_terms(deployment_id: str, deployment: Mapping[str, Any]) -> _Deployment:
    start = _instant(deployment, "deploymentStart", f"deployment {deployment_id!r}")
    end = _instant(deployment, "deploymentEnd", f"deployment {deployment_id!r}")
    if start is None or end is None:
        # R would paste the text "NA" into samplingEffort.
        raise ValueError(f"deployment {deployment_id!r} has no deploymentStart or deploymentEnd")
    depth = _format_csv_number(deployment.get("cameraDepth"))
    height = _format_csv_number(deployment.get("cameraHeight"))
    comments = deployment.get("deploymentComments")
    return _Deployment(
        terms={
            "habitat": _text(deployment.get("habitat")),
            "samplingEffort": f"{_format_utc(start)}/{_format_utc(end)}",
            "locationID": _text(deployment.get("locationID")),
            "locality": _text(deployment.get("locationName")),
            "minimumDepthInMeters": depth,
            "maximumDepthInMeters": depth,
            "minimumDistanceAboveSurfaceInMeters": height,
            "maximumDistanceAboveSurfaceInMeters": height,
            "decimalLatitude": _format_csv_number(deployment.get("latitude")),
            "decimalLongitude": _format_csv_number(deployment.get("longitude")),
            "coordinateUncertaintyInMeters": _format_csv_number(
                deployment.get("coordinateUncertainty")
            ),
        },
        remarks_head=_setup_remarks(deployment_id, deployment),
        remarks_tail="" if comments is None else f" | {comments}",
    )


def _setup_remarks(deployment_id: str, deployment: Mapping[str, Any]) -> str:
    """Describe bait use and feature type, e.g. "camera trap with bait near burrow"."""
    bait_use = deployment.get("baitUse")
    feature_type = deployment.get("featureType")
    if bait_use is True:
        head = "camera trap with bait"
    elif bait_use is False:
        head = "camera trap without bait"
    elif feature_type is not None:
        head = "camera trap"
    else:
        head = ""
    if feature_type is None:
        return head
    feature = _FEATURE_TYPES.get(feature_type)
    if feature is None:
        # R would write " near NA".
        raise ValueError(f"deployment {deployment_id!r} has unknown featureType {feature_type!r}")
    return f"{head} near {feature}"


# --- Observation terms and the stream ----------------------------------------


def _occurrences(
    observations: Iterable[Mapping[str, Any]],
    *,
    level: str,
    record: Mapping[str, str],
    deployments: Mapping[str, _Deployment],
    taxon_ids: Mapping[str, str],
) -> Iterator[dict[str, str]]:
    """Join each included observation to its deployment, checking the input order."""
    previous: tuple[str, datetime] | None = None
    for observation in observations:
        if (
            observation.get("observationType") != "animal"
            or observation.get("observationLevel") != level
        ):
            continue
        where = f"observation {observation.get('observationID')!r}"
        deployment_id = observation.get("deploymentID")
        if not isinstance(deployment_id, str) or deployment_id not in deployments:
            raise ValueError(f"{where} references unknown deployment {deployment_id!r}")
        deployment = deployments[deployment_id]
        start = _instant(observation, "eventStart", where)
        if start is None:
            raise ValueError(f"{where} has no eventStart")
        key = (deployment_id, start)
        if previous is not None and key < previous:
            raise ValueError(
                f"{where} is out of order: observations must be sorted by deploymentID, "
                "then eventStart (UTC), then original row order"
            )
        previous = key
        row = {
            **record,
            **deployment.terms,
            **_observation_terms(observation, start, where, taxon_ids),
            "eventRemarks": _event_remarks(deployment, observation.get("observationTags")),
        }
        yield {name: row[name] for name in DWC_OCCURRENCE_FIELDS}


def _observation_terms(
    observation: Mapping[str, Any],
    start: datetime,
    where: str,
    taxon_ids: Mapping[str, str],
) -> dict[str, str]:
    """Terms taken from the observation itself."""
    end = _instant(observation, "eventEnd", where)
    identified = _instant(observation, "classificationTimestamp", where)
    scientific_name = observation.get("scientificName")
    return {
        "occurrenceID": _text(observation.get("observationID")),
        "individualCount": _format_csv_number(observation.get("count")),
        "sex": _text(observation.get("sex")),
        "lifeStage": _text(observation.get("lifeStage")),
        "behavior": _text(observation.get("behavior")),
        "occurrenceRemarks": _text(observation.get("observationComments")),
        "organismID": _text(observation.get("individualID")),
        "eventID": _text(observation.get("eventID")),
        "parentEventID": _text(observation.get("deploymentID")),
        "eventDate": _event_date(start, end),
        "identifiedBy": _text(observation.get("classifiedBy")),
        "dateIdentified": "" if identified is None else _format_utc(identified),
        **_identification_terms(
            observation.get("classificationMethod"),
            observation.get("classificationProbability"),
        ),
        "taxonID": "" if scientific_name is None else taxon_ids.get(scientific_name, ""),
        "scientificName": _text(scientific_name),
    }


def _event_date(start: datetime, end: datetime | None) -> str:
    """An instant when the event has no duration, else an ISO 8601 interval."""
    if end is None:
        return ""  # R: NA == x is NA, so eventDate is NA
    if start == end:
        return _format_utc(start)
    return f"{_format_utc(start)}/{_format_utc(end)}"


def _event_remarks(deployment: _Deployment, tags: str | None) -> str:
    """Setup, then observation tags, then deployment comments, e.g. "... | tags: a | b"."""
    tag_part = "" if tags is None else f" | tags: {tags}"
    return f"{deployment.remarks_head}{tag_part}{deployment.remarks_tail}"


def _identification_terms(method: str | None, probability: float | None) -> dict[str, str]:
    """identificationVerificationStatus and identificationRemarks."""
    verified = method == "human" and probability is not None and probability == 1
    remarks = "classified" if method is None else f"classified by a {method}"
    if probability is not None:
        remarks += f" with {_format_r_text_number(probability * 100)}% certainty"
    return {
        "identificationVerificationStatus": "verified using recorded media" if verified else "",
        "identificationRemarks": remarks,
    }


# --- Value formatting ----------------------------------------------------------


def _text(value: Any) -> str:
    """A string value as written, with ``None`` as empty."""
    return "" if value is None else str(value)


def _instant(row: Mapping[str, Any], field: str, where: str) -> datetime | None:
    """Parse an ISO 8601 datetime field that carries an offset, as an aware UTC datetime."""
    value = row.get(field)
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError as e:
            raise ValueError(f"{where}: {field} {value!r} is not an ISO 8601 datetime") from e
    if parsed.tzinfo is None:
        raise ValueError(f"{where}: {field} {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _format_utc(moment: datetime) -> str:
    """R's ``format(x, "%Y-%m-%dT%H:%M:%SZ")`` of a UTC POSIXct (seconds truncated)."""
    # isoformat() always pads the year to four digits, unlike glibc's strftime("%Y").
    naive = moment.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    return f"{naive.isoformat()}Z"


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of a positive finite float: ``value == digits * 10**exponent``."""
    parts = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, parts.digits)).lstrip("0")
    significant = digits.rstrip("0")
    return significant, int(parts.exponent) + len(digits) - len(significant)


def _format_csv_number(value: Any) -> str:
    """A numeric cell as ``readr::write_csv()`` prints it (vroom's ``dtoa_grisu3()``).

    Integers print in full. Doubles use their shortest round-trip digits:
    whole numbers below about 1e15 in full ("1", "100000"), small magnitudes
    as "0.001" only down to two leading zeros, otherwise with an exponent
    ("1e-4", "1.5e-5", "1e20"). ``None`` and NaN are empty.
    """
    if value is None or isinstance(value, bool):
        return _text(value)
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, float):
        return str(value)  # e.g. a metadata value given as text
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return f"{sign}0"
    digits, exponent = _shortest_digits(abs(value))
    length = len(digits)
    if 0 <= exponent <= max(2, 15 - length):
        return f"{sign}{digits}{'0' * exponent}"
    if exponent < 0 and length + exponent > -3 and length <= -exponent:
        return f"{sign}0.{'0' * (-exponent - length)}{digits}"
    if exponent < 0 and length > 1:
        decimals = min(-exponent, length - 1)
        mantissa = f"{digits[:-decimals]}.{digits[-decimals:]}"
        exponent += decimals
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{digits}e{exponent}"


def _format_r_text_number(value: Any) -> str:
    """A number as base R ``as.character()`` prints it, e.g. inside ``paste()``.

    Doubles get at most 15 significant digits and are written in fixed
    notation unless scientific notation is shorter ("0.001", "89", "1e-04",
    "1e+05").
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _text(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    mantissa, exponent_text = f"{value:.14e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    exponent = int(exponent_text)
    significant = len(mantissa.lstrip("-").replace(".", ""))
    fixed = f"{value:.{max(0, significant - 1 - exponent)}f}"
    scientific = f"{mantissa}e{exponent:+03d}"
    # R's formatReal(): fixed unless wider than scientific (scipen = 0).
    return fixed if len(fixed) <= len(scientific) else scientific
