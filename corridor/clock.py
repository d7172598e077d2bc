"""The app clock: wall time in production, a fake one in tests (CONVENTIONS.md §9)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask, current_app

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Wall-clock time in UTC."""
    return datetime.now(UTC)


def install_clock(app: Flask, clock: Clock | None) -> None:
    """Give ``app`` a clock (the system clock unless one is passed)."""
    app.extensions["corridor_clock"] = clock or system_clock


def now() -> datetime:
    """The current time according to the running app's clock."""
    clock: Clock = current_app.extensions["corridor_clock"]
    return clock()
