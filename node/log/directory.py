"""A node directory described for the auditor's tools (see :mod:`corridor.service_directory`)."""

from __future__ import annotations

from pathlib import Path

from corridor.anchor import AnchorError
from corridor.config import SettingsError
from corridor.service_directory import ServiceDirectory, ServiceDirectoryError, TrustedKeys
from crypto.trustlist import TrustListRejected
from node.exchange.trust_store import TrustStore
from node.log.exchange_log import LOG
from node.settings import CONFIG_FILE, load_settings

__all__ = ["open_directory"]


def open_directory(directory: Path) -> ServiceDirectory | None:
    """The node at ``directory``, or None if it is not a node directory."""
    if not (directory / CONFIG_FILE).exists():
        return None

    def trusted_keys() -> TrustedKeys:
        try:
            store = TrustStore(directory)
            trust_list = store.current()
        except (AnchorError, TrustListRejected, OSError) as e:
            raise ServiceDirectoryError(f"{directory}: cannot read its trust list ({e})") from e
        members = {} if trust_list is None else {
            m.member_id: m.keys for m in trust_list.members.values()}
        return TrustedKeys(store.anchor, members)

    try:
        database_url = load_settings(directory).database_url
    except SettingsError as e:
        raise ServiceDirectoryError(str(e)) from e
    return ServiceDirectory("node", database_url, LOG, trusted_keys)
