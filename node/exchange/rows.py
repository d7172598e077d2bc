"""Exports that read a dataset back out of the database as a stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Engine, select
from sqlalchemy.orm import Session

from corridor.db import table_of
from corridor.errors import BadRequest
from corridor.files import written_whole
from node.data.datasets import get_dataset
from node.data.dwc import camtrap_to_dwc, write_dwc_csv
from node.db import Base
from node.models import PROFILE_CAMTRAP, Deployment, Media, Observation

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


def export_dwc(engine: Engine, name: str, out_path: Path) -> int:
    """Write a camera-trap dataset as a Darwin Core occurrence CSV; return the row count.

    The file is written to ``<out>.part`` and renamed when complete, so a failed
    export never leaves a truncated file under the requested name.
    """
    with Session(engine) as session:
        dataset = get_dataset(session, name)
    if dataset.profile != PROFILE_CAMTRAP:
        raise BadRequest(f"{name} is a {dataset.profile} dataset; "
                         "export-dwc converts camera-trap data")
    with written_whole(out_path) as part, part.open("w", encoding="utf-8", newline="") as fh:
        count = write_dwc_csv(camtrap_to_dwc(
            dataset.descriptor,
            stream_rows(engine, Deployment, dataset.id, ("deploymentID",)),
            stream_rows(engine, Media, dataset.id, ("mediaID",)),
            stream_rows(engine, Observation, dataset.id, DWC_OBSERVATION_ORDER),
        ), fh)
    return count
