"""A Darwin Core Archive of a camera-trap dataset: what GBIF and IPT ingest.

The archive (Darwin Core text guide, https://dwc.tdwg.org/text/) holds:

* ``occurrence.csv`` — the Occurrence core of :mod:`node.data.dwc`, one row
  per animal observation at the published level;
* ``multimedia.csv`` — the Audubon/Audiovisual Media Description extension
  (Audubon Core, https://ac.tdwg.org/), one row per image or video an
  occurrence rests on: the medium of a media-level observation, or every
  medium of the camera inside an event-level observation's start and end.
  A medium behind two occurrences is repeated, as the GBIF camera-trap guide
  (Reyserhove et al. 2023, doi:10.35035/doc-0qzp-2x37) asks;
* ``meta.xml`` — which file is which, and which term each column is;
* ``eml.xml`` — the dataset's metadata in Ecological Metadata Language 2.1.1.

Everything is read from the node's database in a fixed order and streamed:
memory holds one camera's media index at a time, not the table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import IO, Any
from xml.etree import ElementTree as ET

from sqlalchemy import Engine, select

from corridor.db import table_of
from node.data.dwc import DWC_OCCURRENCE_FIELDS
from node.models import Deployment, Media, Observation

DWC = "http://rs.tdwg.org/dwc/terms/"
DCTERMS = "http://purl.org/dc/terms/"
AC = "http://rs.tdwg.org/ac/terms/"
XMP = "http://ns.adobe.com/xap/1.0/"

#: Occurrence columns from Dublin Core rather than Darwin Core.
_DCTERMS_COLUMNS = frozenset({"type", "license", "rightsHolder"})

#: The Audubon extension's columns and the term each one is.
MULTIMEDIA_TERMS: tuple[tuple[str, str], ...] = (
    ("occurrenceID", DWC + "occurrenceID"),
    ("identifier", DCTERMS + "identifier"),
    ("type", DCTERMS + "type"),
    ("providerManagedID", AC + "providerManagedID"),
    ("captureDevice", AC + "captureDevice"),
    ("resourceCreationTechnique", AC + "resourceCreationTechnique"),
    ("accessURI", AC + "accessURI"),
    ("format", DCTERMS + "format"),
    ("serviceExpectation", AC + "serviceExpectation"),
    ("rights", DCTERMS + "rights"),
    ("CreateDate", XMP + "CreateDate"),
    ("comments", AC + "comments"),
)
MULTIMEDIA_FIELDS = tuple(name for name, _ in MULTIMEDIA_TERMS)

OCCURRENCE_ROW_TYPE = DWC + "Occurrence"
MULTIMEDIA_ROW_TYPE = AC + "Multimedia"


def occurrence_terms() -> list[tuple[str, str]]:
    """(column, term URI) of ``occurrence.csv``, in file order."""
    return [(name, (DCTERMS if name in _DCTERMS_COLUMNS else DWC) + name)
            for name in DWC_OCCURRENCE_FIELDS]


def _medium_type(mediatype: str | None) -> str:
    """The DCMI type of a file by its media type: StillImage, MovingImage or Sound."""
    kind = (mediatype or "").split("/", 1)[0]
    return {"image": "StillImage", "video": "MovingImage", "audio": "Sound"}.get(kind, "")


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def multimedia_rows(engine: Engine, dataset_id: int, level: str, media_rights: str
                    ) -> Iterator[dict[str, str]]:
    """Rows of ``multimedia.csv`` for the occurrences of one observation level.

    Observations in the core's order (camera, start, source row); each
    camera's media are read once, when its first observation comes.
    """
    obs, media, deps = table_of(Observation), table_of(Media), table_of(Deployment)
    with engine.connect() as conn:
        devices = {d: model for d, model in conn.execute(
            select(deps.c.deploymentID, deps.c.cameraModel).where(deps.c.dataset_id == dataset_id))}
        observations = conn.execution_options(yield_per=2_000).execute(
            select(obs.c.observationID, obs.c.deploymentID, obs.c.mediaID,
                   obs.c.eventStart_utc, obs.c.eventEnd_utc)
            .where(obs.c.dataset_id == dataset_id, obs.c.observationType == "animal",
                   obs.c.observationLevel == level)
            .order_by(obs.c.deploymentID, obs.c.eventStart_utc, obs.c.source_row))
        camera: str | None = None
        shown: list[Mapping[str, Any]] = []
        for observation_id, deployment, media_id, start, end in observations:
            if deployment != camera:
                camera = deployment
                with engine.connect() as inner:
                    shown = [dict(m) for m in inner.execute(
                        select(media).where(media.c.dataset_id == dataset_id,
                                            media.c.deploymentID == deployment)
                        .order_by(media.c.timestamp_utc, media.c.source_row)).mappings()]
            if media_id:
                matched = [m for m in shown if m["mediaID"] == media_id]
            else:
                matched = [m for m in shown if start <= m["timestamp_utc"] <= end]
            for medium in matched:
                yield _multimedia_row(observation_id, medium, devices.get(deployment),
                                      media_rights)


def _multimedia_row(occurrence_id: str, medium: Mapping[str, Any], device: str | None,
                    rights: str) -> dict[str, str]:
    public = medium["filePublic"]
    return {
        "occurrenceID": occurrence_id,
        "identifier": medium["mediaID"],
        "type": _medium_type(medium["fileMediatype"]),
        "providerManagedID": medium["mediaID"],
        "captureDevice": device or "",
        "resourceCreationTechnique": medium["captureMethod"] or "",
        "accessURI": medium["filePath"] or "",
        "format": medium["fileMediatype"] or "",
        "serviceExpectation": "online" if public else "authenticate",
        "rights": rights,
        "CreateDate": _utc(medium["timestamp_utc"]),
        "comments": medium["mediaComments"] or "",
    }


def write_csv(rows: Iterator[Mapping[str, str]], fields: Sequence[str], out: IO[bytes]) -> int:
    """Header and rows as UTF-8 CSV (``\\n`` line ends, quoted only where needed)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(fields)
    count = 0
    for row in rows:
        writer.writerow([row.get(name, "") for name in fields])
        count += 1
        if count % 2_000 == 0:
            out.write(text.getvalue().encode("utf-8"))
            text.seek(0)
            text.truncate()
    out.write(text.getvalue().encode("utf-8"))
    return count


def _file_element(parent: ET.Element, tag: str, row_type: str, location: str,
                  terms: Sequence[tuple[str, str]], key: str, key_column: str) -> None:
    table = ET.SubElement(parent, tag, {
        "encoding": "UTF-8", "fieldsTerminatedBy": ",", "linesTerminatedBy": "\\n",
        "fieldsEnclosedBy": '"', "ignoreHeaderLines": "1", "rowType": row_type})
    ET.SubElement(ET.SubElement(table, "files"), "location").text = location
    columns = [name for name, _ in terms]
    ET.SubElement(table, key, {"index": str(columns.index(key_column))})
    for index, (_, term) in enumerate(terms):
        ET.SubElement(table, "field", {"index": str(index), "term": term})


def meta_xml() -> bytes:
    """The archive descriptor: the core, the extension and the metadata file."""
    archive = ET.Element("archive", {"xmlns": "http://rs.tdwg.org/dwc/text/",
                                     "metadata": "eml.xml"})
    _file_element(archive, "core", OCCURRENCE_ROW_TYPE, "occurrence.csv", occurrence_terms(),
                  "id", "occurrenceID")
    _file_element(archive, "extension", MULTIMEDIA_ROW_TYPE, "multimedia.csv",
                  MULTIMEDIA_TERMS, "coreid", "occurrenceID")
    ET.indent(archive)
    return bytes(ET.tostring(archive, encoding="utf-8", xml_declaration=True))


def _para(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(ET.SubElement(parent, tag), "para").text = text


def eml_xml(descriptor: Mapping[str, Any], *, package_id: str, published: str) -> bytes:
    """EML 2.1.1 for a Camtrap DP descriptor: title, people, abstract, rights, coverage."""
    eml = ET.Element("eml:eml", {
        "xmlns:eml": "eml://ecoinformatics.org/eml-2.1.1",
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:schemaLocation": "eml://ecoinformatics.org/eml-2.1.1 "
                              "http://rs.gbif.org/schema/eml-gbif-profile/1.1/eml.xsd",
        "packageId": package_id, "system": "corridor", "xml:lang": "eng"})
    dataset = ET.SubElement(eml, "dataset")
    ET.SubElement(dataset, "title", {"xml:lang": "eng"}).text = str(
        descriptor.get("title") or descriptor.get("name") or package_id)
    people = [c for c in descriptor.get("contributors") or [] if isinstance(c, Mapping)]
    creators = [c for c in people if c.get("role") in ("principalInvestigator", "contact")]
    for tag, who in (("creator", creators or people[:1]),
                     ("contact", [c for c in people if c.get("role") == "contact"]
                      or people[:1])):
        for person in who:
            party = ET.SubElement(dataset, tag)
            if person.get("organization") and not person.get("title"):
                ET.SubElement(party, "organizationName").text = str(person["organization"])
            else:
                name = ET.SubElement(party, "individualName")
                ET.SubElement(name, "surName").text = str(person.get("title") or "unknown")
                if person.get("organization"):
                    ET.SubElement(party, "organizationName").text = str(person["organization"])
            if person.get("email"):
                ET.SubElement(party, "electronicMailAddress").text = str(person["email"])
    ET.SubElement(dataset, "pubDate").text = published
    ET.SubElement(dataset, "language").text = "eng"
    _para(dataset, "abstract", str(descriptor.get("description") or ""))
    licences = [str(lic.get("name") or lic.get("path")) for lic in descriptor.get("licenses") or []
                if isinstance(lic, Mapping) and lic.get("scope", "data") == "data"]
    _para(dataset, "intellectualRights", "; ".join(licences) or "not stated")
    coverage = ET.SubElement(dataset, "coverage")
    _geographic(coverage, descriptor.get("spatial"))
    temporal = descriptor.get("temporal")
    if isinstance(temporal, Mapping) and temporal.get("start") and temporal.get("end"):
        period = ET.SubElement(ET.SubElement(coverage, "temporalCoverage"), "rangeOfDates")
        for tag, when in (("beginDate", temporal["start"]), ("endDate", temporal["end"])):
            ET.SubElement(ET.SubElement(period, tag), "calendarDate").text = str(when)
    ET.indent(eml)
    return bytes(ET.tostring(eml, encoding="utf-8", xml_declaration=True))


def _geographic(coverage: ET.Element, spatial: Any) -> None:
    """A bounding box from the descriptor's GeoJSON polygon, if it has one."""
    if not isinstance(spatial, Mapping) or spatial.get("type") != "Polygon":
        return
    ring = (spatial.get("coordinates") or [[]])[0]
    if not ring:
        return
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    geo = ET.SubElement(coverage, "geographicCoverage")
    ET.SubElement(geo, "geographicDescription").text = "Extent of the cameras"
    box = ET.SubElement(geo, "boundingCoordinates")
    for tag, value in (("westBoundingCoordinate", min(lons)),
                       ("eastBoundingCoordinate", max(lons)),
                       ("northBoundingCoordinate", max(lats)),
                       ("southBoundingCoordinate", min(lats))):
        ET.SubElement(box, tag).text = repr(float(value))
