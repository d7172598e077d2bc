"""Access to the registry's settings, signing key and clock from inside a request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app

from crypto.keys import SigningKey
from registry.settings import RegistrySettings


def settings() -> RegistrySettings:
    """The running registry's settings."""
    value: RegistrySettings = current_app.extensions["corridor_settings"]
    return value


def signing_key() -> SigningKey:
    """The registry's active signing key (loaded once at start-up)."""
    key: SigningKey = current_app.extensions["corridor_signing_key"]
    return key


def now() -> datetime:
    """The current time from the app's clock (tests give a fake one)."""
    clock: Callable[[], datetime] = current_app.extensions["corridor_clock"]
    return clock()


def system_clock() -> datetime:
    """Wall-clock time in UTC."""
    return datetime.now(UTC)
