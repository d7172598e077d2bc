"""Errors the node reports over HTTP (problem+json) and on the CLI (one line)."""

from __future__ import annotations

from corridor.web import BadRequest, Conflict, CorridorError, Forbidden, NotFound, Unauthorized

__all__ = [
    "BadRequest",
    "Conflict",
    "CorridorError",
    "DatasetNotFound",
    "Forbidden",
    "NodeError",
    "NotFound",
    "Unauthorized",
]


class NodeError(CorridorError):
    """Root of node-specific errors."""


class DatasetNotFound(NotFound):
    """No current dataset has that name."""

    title = "Dataset not found"
