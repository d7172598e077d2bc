"""Where a served process's log lines go: stderr, as text or as one JSON object per line.

gunicorn logs its own lines (``errorlog``, ``accesslog``) but leaves Python's
root logger without a handler, so the services' warnings would reach stderr
bare and their information lines not at all. :func:`configure_logging` gives
the root logger one handler on stderr, chosen by two environment variables
that the ``wsgi`` modules read:

* ``CORRIDOR_LOG_FORMAT``: ``text`` (default) or ``json`` — one object per
  line with ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``pid``,
  ``message`` and, for an exception, ``exception`` (the traceback), for a log
  shipper such as journald's JSON export, Loki or Elasticsearch;
* ``CORRIDOR_LOG_LEVEL``: a level name (default ``INFO``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from corridor.config import SettingsError

__all__ = ["FORMATS", "JsonFormatter", "LogSettingError", "configure_logging"]

FORMATS = ("text", "json")
_TEXT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class LogSettingError(SettingsError):
    """``CORRIDOR_LOG_FORMAT`` or ``CORRIDOR_LOG_LEVEL`` holds a value we do not know."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as compact JSON (non-ASCII text kept as is)."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(environ: Mapping[str, str] | None = None) -> logging.Handler:
    """Send the root logger's records to stderr as ``CORRIDOR_LOG_FORMAT`` says; the handler.

    Calling it again replaces the handler it installed before (not others).

    Raises:
        LogSettingError: an unknown format or level, naming the variable.
    """
    env = os.environ if environ is None else environ
    form = env.get("CORRIDOR_LOG_FORMAT", "text").strip().lower() or "text"
    level = env.get("CORRIDOR_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if form not in FORMATS:
        raise LogSettingError(f"CORRIDOR_LOG_FORMAT must be one of {', '.join(FORMATS)}, "
                              f"not {form!r}")
    if level not in _LEVELS:
        raise LogSettingError(f"CORRIDOR_LOG_LEVEL must be one of {', '.join(_LEVELS)}, "
                              f"not {level!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_corridor", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(_TEXT))
    handler._corridor = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # httpx says INFO for every request the services make; keep that for DEBUG.
    logging.getLogger("httpx").setLevel(level if level == "DEBUG" else "WARNING")
    return handler
