"""Exports that read a dataset back out of the database as a stream."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Engine, select
from sqlalchemy.orm import Session

from corridor.db import make_engine, table_of
from corridor.errors import BadRequest
from corridor.files import written_whole
from corridor.package_reader import verify_package
from crypto.trustlist import TrustList
from node.data.datasets import get_dataset
from node.data.dwc import (
    DWC_OCCURRENCE_FIELDS,
    camtrap_to_dwc,
    observation_level,
    write_dwc_csv,
)
from node.data.dwca import MULTIMEDIA_FIELDS, eml_xml, meta_xml, multimedia_rows, write_csv
from node.data.importer import Importer
from node.db import Base, upgrade
from node.models import PROFILE_CAMTRAP, Dataset, Deployment, Media, Observation

# camtrapdp::write_dwc() order: deployment (plain character order), event start
# as a UTC instant, then the order of the source file.
DWC_OBSERVATION_ORDER = ("deploymentID", "eventStart_utc", "source_row")
STREAM_BATCH_ROWS = 2_000


def stream_rows(engine: Engine, model: type[Base], dataset_id: int,
                order: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Yield a dataset's rows of one table as dicts, in a stable order, without buffering."""
    table = table_of(model)

    def key(name: str) -> Any:
        column: Column[Any] = table.c[name]
        # Plain byte order for identifiers on every backend (PostgreSQL sorts by locale).
        if engine.dialect.name == "postgresql" and isinstance(column.type.python_type, type) \
                and column.type.python_type is str:
            return column.collate("C")
        return column

    query = select(table).where(table.c.dataset_id == dataset_id).order_by(*map(key, order))
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=STREAM_BATCH_ROWS).execute(query)
        for row in result.mappings():
            yield dict(row)


def _camtrap_dataset(engine: Engine, name: str) -> Dataset:
    with Session(engine) as session:
        dataset = get_dataset(session, name)
    if dataset.profile != PROFILE_CAMTRAP:
        raise BadRequest(f"{name} is a {dataset.profile} dataset; "
                         "export-dwc converts camera-trap data")
    return dataset


def _occurrences(engine: Engine, dataset: Dataset) -> Iterator[dict[str, str]]:
    return camtrap_to_dwc(
        dataset.descriptor,
        stream_rows(engine, Deployment, dataset.id, ("deploymentID",)),
        stream_rows(engine, Media, dataset.id, ("mediaID",)),
        stream_rows(engine, Observation, dataset.id, DWC_OBSERVATION_ORDER),
    )


def export_dwca(engine: Engine, name: str, out_path: Path, *, now: datetime) -> dict[str, int]:
    """Write a camera-trap dataset as a Darwin Core Archive zip; return rows per file.

    ``occurrence.csv`` (the core), ``multimedia.csv`` (Audubon extension),
    ``meta.xml`` and ``eml.xml``: see :mod:`node.data.dwca`. Written whole or
    not at all, like :func:`export_dwc`.
    """
    dataset = _camtrap_dataset(engine, name)
    descriptor = dataset.descriptor
    rights = next((str(lic.get("name") or lic.get("path") or "")
                   for lic in descriptor.get("licenses") or []
                   if isinstance(lic, dict) and lic.get("scope") == "media"), "")
    level = observation_level(descriptor)
    def member(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=now.astimezone(UTC).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        return info

    with written_whole(out_path) as part, zipfile.ZipFile(part, "w") as archive:
        with archive.open(member("occurrence.csv"), "w", force_zip64=True) as out:
            core = write_csv(_occurrences(engine, dataset), DWC_OCCURRENCE_FIELDS, out)
        with archive.open(member("multimedia.csv"), "w", force_zip64=True) as out:
            extension = write_csv(multimedia_rows(engine, dataset.id, level, rights),
                                  MULTIMEDIA_FIELDS, out)
        archive.writestr(member("meta.xml"), meta_xml())
        archive.writestr(member("eml.xml"), eml_xml(descriptor, package_id=str(
            descriptor.get("id") or dataset.name), published=now.date().isoformat()))
    return {"occurrence": core, "multimedia": extension}


def export_dwc(engine: Engine, name: str, out_path: Path) -> int:
    """Write a camera-trap dataset as a Darwin Core occurrence CSV; return the row count.

    The file is written to ``<out>.part`` and renamed when complete, so a failed
    export never leaves a truncated file under the requested name.
    """
    dataset = _camtrap_dataset(engine, name)
    with written_whole(out_path) as part, part.open("w", encoding="utf-8", newline="") as fh:
        return write_dwc_csv(_occurrences(engine, dataset), fh)


def received_to_dwc(package: Path, keys: TrustList, out_path: Path, *, archive: bool,
                    now: datetime) -> dict[str, int]:
    """Convert a received Camtrap DP package to Darwin Core, after verifying it.

    The package must verify against ``keys`` (signature, digests, sizes) and
    pass the same checks as an import; it is loaded into a scratch SQLite
    database that is deleted afterwards, and written like a dataset of this
    node (``archive``: the Darwin Core Archive, else the occurrence table).

    :raises BadRequest: the package does not verify, or is not camera-trap data.
    :raises ImportRefused: its rows do not pass the import's checks.
    """
    report = verify_package(package, keys)
    if not report.ok:
        raise BadRequest(f"{package.name} does not verify: {report.failure}")
    with tempfile.TemporaryDirectory(prefix="corridor-dwc-") as scratch:
        engine = make_engine(f"sqlite:///{Path(scratch) / 'received.db'}")
        try:
            upgrade(engine)
            name = Importer(engine).import_camtrap(package, name="received").name
            if archive:
                return export_dwca(engine, name, out_path, now=now)
            return {"occurrence": export_dwc(engine, name, out_path)}
        finally:
            engine.dispose()

