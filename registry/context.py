"""Access to the registry's settings, signing key and clock from inside a request."""

from __future__ import annotations

from flask import current_app

from corridor.clock import now
from crypto.keys import SigningKey
from registry.settings import RegistrySettings

__all__ = ["now", "settings", "signing_key"]


def settings() -> RegistrySettings:
    """The running registry's settings."""
    value: RegistrySettings = current_app.extensions["corridor_settings"]
    return value


def signing_key() -> SigningKey:
    """The registry's active signing key (loaded once at start-up)."""
    key: SigningKey = current_app.extensions["corridor_signing_key"]
    return key
