"""The registry directory described for the auditor's tools (:mod:`corridor.service_directory`)."""

from __future__ import annotations

from pathlib import Path

from corridor.config import SettingsError
from corridor.keystore import KeystoreError, public_keys
from corridor.service_directory import ServiceDirectory, ServiceDirectoryError, TrustedKeys
from registry.log.exchange_log import LOG
from registry.settings import CONFIG_FILE, load_settings

__all__ = ["open_directory"]


def open_directory(directory: Path) -> ServiceDirectory | None:
    """The registry at ``directory``, or None if it is not a registry directory."""
    if not (directory / CONFIG_FILE).exists():
        return None
    try:
        settings = load_settings(directory)
    except SettingsError as e:
        raise ServiceDirectoryError(str(e)) from e

    def trusted_keys() -> TrustedKeys:
        try:
            return TrustedKeys(public_keys(settings.keys_dir), {})
        except KeystoreError as e:
            raise ServiceDirectoryError(f"{directory}: cannot read its keys ({e})") from e

    return ServiceDirectory("registry", settings.database_url, LOG, trusted_keys)
