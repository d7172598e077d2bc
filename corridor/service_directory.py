"""A service's directory as seen from outside it: where its log is and whose keys it trusts.

The auditor's tools read a node's or the registry's directory without
importing either service: each service declares, under the entry-point group
:data:`DIRECTORIES_GROUP` in ``setup.cfg``, a function that recognises its own
directories and describes them as a :class:`ServiceDirectory`. The base only
defines the shape and asks every declared service in turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from corridor.errors import CorridorError
from corridor.tlog import TransparencyLog
from crypto.keys import KeySet

__all__ = [
    "DIRECTORIES_GROUP",
    "ServiceDirectory",
    "ServiceDirectoryError",
    "TrustedKeys",
    "open_service_directory",
]

#: Entry-point group: ``name = module:function``, ``function(Path) -> ServiceDirectory | None``.
DIRECTORIES_GROUP = "corridor.directories"


class ServiceDirectoryError(CorridorError):
    """The directory is not a service's, or it cannot be read; ``str()`` says why."""

    title = "Not a usable service directory"
    public = False


@dataclass(frozen=True)
class TrustedKeys:
    """The registry's keys (pinned) and each member's (from a verified trust list)."""

    registry: KeySet
    members: dict[str, KeySet]


@dataclass(frozen=True)
class ServiceDirectory:
    """What an auditor needs from a service directory on this machine."""

    kind: str
    """``node`` or ``registry``: what the directory holds."""
    database_url: str
    log: TransparencyLog
    """The service's exchange log, bound to its tables."""
    trusted_keys: Callable[[], TrustedKeys]
    """The keys the service pinned itself; raises :class:`ServiceDirectoryError`."""


def open_service_directory(directory: Path) -> ServiceDirectory:
    """Describe ``directory`` through the first installed service that recognises it.

    Raises:
        ServiceDirectoryError: no installed service recognises the directory.
    """
    for entry in sorted(entry_points(group=DIRECTORIES_GROUP), key=lambda e: e.name):
        recognise: Callable[[Path], ServiceDirectory | None] = entry.load()
        found = recognise(directory)
        if found is not None:
            return found
    raise ServiceDirectoryError(f"{directory}: neither a node nor a registry directory")
