"""Errors only the node reports (the shared ones are in :mod:`corridor.errors`)."""

from __future__ import annotations

from corridor.errors import NotFound

__all__ = ["DatasetNotFound"]


class DatasetNotFound(NotFound):
    """No current dataset has that name."""

    title = "Dataset not found"
