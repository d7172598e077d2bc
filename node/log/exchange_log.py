"""The node's exchange log (DESIGN.md §10): see :mod:`corridor.tlog`."""

from __future__ import annotations

from corridor.tlog import TransparencyLog
from node.models import LogCheckpoint, LogEntry, LogHead, LogNode

__all__ = ["LOG"]

LOG = TransparencyLog(LogEntry, LogNode, LogHead, LogCheckpoint)
