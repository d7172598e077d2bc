"""Reading datasets: listing, lookup and the metadata view served to clients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from node.data.catalog import rounded_bbox
from node.errors import DatasetNotFound
from node.models import Dataset, Individual, Observation, Occurrence
from policies.disclosure import released_contributors


def current_datasets(session: Session) -> Sequence[Dataset]:
    """The current version of every dataset, by name."""
    return session.scalars(
        select(Dataset).where(Dataset.current.is_(True)).order_by(Dataset.name)
    ).all()


def get_dataset(session: Session, name: str, version: int | None = None) -> Dataset:
    """One dataset by name (the current version unless ``version`` is given).

    Raises:
        DatasetNotFound: no such dataset or version.
    """
    query = select(Dataset).where(Dataset.name == name)
    query = query.where(Dataset.version == version) if version else query.where(
        Dataset.current.is_(True)
    )
    dataset = session.scalars(query).first()
    if dataset is None:
        raise DatasetNotFound(f"no dataset named {name!r}" + (f" v{version}" if version else ""))
    return dataset


def stored_taxa(session: Session, dataset: Dataset) -> list[str]:
    """Every scientific name the dataset's rows hold, as written, whatever their type.

    The names a plan's sensitivity and embargo rules are matched against. Not
    the summary's ``taxa`` (animal observations only, for the catalogue): a
    leopard filed as an ``unknown`` observation, or only as an individual,
    is still a leopard the export would release, so its rules must apply.
    """
    names = union(*(select(model.scientificName).where(model.dataset_id == dataset.id,
                                                        model.scientificName.is_not(None))
                    for model in (Observation, Occurrence, Individual)))
    return sorted(name for name in session.scalars(names) if name)


def metadata_view(dataset: Dataset) -> dict[str, Any]:
    """The public metadata of a dataset (the API's ``Dataset`` object).

    Anyone may read it, so it is no finer than the registry's catalog: the
    bounding box is rounded outward to whole degrees (an exact corner is the
    position of a camera), and contributors are institutions only, with no
    person's name or e-mail address (:func:`released_contributors` as for a
    package that withholds the fields naming people).
    """
    bbox = None
    corners = (dataset.bbox_west, dataset.bbox_south, dataset.bbox_east, dataset.bbox_north)
    if all(c is not None for c in corners):
        bbox = list(rounded_bbox(*(float(c) for c in corners)))  # type: ignore[arg-type]
    return {
        "name": dataset.name,
        "version": dataset.version,
        "profile": dataset.profile,
        "title": dataset.title,
        "description": dataset.description,
        "licenses": dataset.licenses,
        "contributors": released_contributors(dataset.contributors or [], people_hidden=True),
        "taxa": dataset.taxa,
        "counts": dataset.counts,
        "coverage": {"start": dataset.temporal_start, "end": dataset.temporal_end, "bbox": bbox},
        "imported_at": dataset.imported_at,
    }
