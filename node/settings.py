"""Typed node settings: one place that reads the node's config file and the environment.

A node directory looks like::

    DIR/node.toml        identity and storage settings (written by ``corridor node init``)
    DIR/keys/            the node's Ed25519 signing keys, mode 0700, files 0600
    DIR/node.db          the SQLite database (unless ``database_url`` points elsewhere)

Environment variables override the file, so one directory can be run against
PostgreSQL in production without editing it:

``CORRIDOR_NODE_DATABASE_URL``
    SQLAlchemy URL of the node database (default ``sqlite:///DIR/node.db``).
``CORRIDOR_NODE_SECRET_KEY``
    Flask session secret (default: generated at ``init`` and kept in ``DIR/keys/``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flask import current_app

from corridor.config import (
    LOOPBACK,
    Network,
    SettingsError,
    metrics_from_setting,
    proxies_setting,
    time_zone_setting,
    toml_string,
    validate_identity,
)
from corridor.keystore import KeyFiles
from crypto.keys import SigningKey

CONFIG_FILE = "node.toml"
KEYS_DIR = "keys"
DEFAULT_DB_FILE = "node.db"



@dataclass(frozen=True)
class NodeSettings:
    """Everything a node needs to know about itself.

    Attributes:
        directory: the node directory (holds config, keys and, by default, the database).
        member_id: the institution's member id, ``cc-name`` (e.g. ``ru-lotl``).
        name: human-readable institution name.
        country: ISO 3166-1 alpha-2 country code.
        url: the node's public base URL (``None`` until the node is given one).
        registry_url: the registry this node belongs to (pinned with its anchor at init).
        sync_interval: seconds between trust-list refreshes while serving (0: never).
        request_poll_interval: seconds between pulls of new requests and pushes of
            decisions while serving (0: only on ``corridor node sync``).
        checkpoint_interval: seconds between checks of the exchange log while
            serving: if it grew, a checkpoint is signed and sent to the registry
            to witness (0: only on ``corridor node log checkpoint``).
        database_url: SQLAlchemy database URL.
        import_batch_rows: rows per INSERT batch during import (memory vs. round trips).
        max_problems_reported: import problems listed in full (the total is always given).
        proxies: reverse proxies in front of the node whose X-Forwarded-For/Proto/Host
            are trusted (0: none; 1 behind the TLS proxy of ``deploy/``).
        time_zone: IANA zone the node's pages give times in (``UTC`` by default).
        metrics_from: networks whose clients may read ``/metrics`` (loopback by default).
    """

    directory: Path
    member_id: str
    name: str
    country: str
    url: str | None = None
    registry_url: str | None = None
    sync_interval: int = 3600
    request_poll_interval: int = 60
    checkpoint_interval: int = 300
    database_url: str = ""
    import_batch_rows: int = 5_000
    max_problems_reported: int = 50
    proxies: int = 0
    time_zone: str = "UTC"
    metrics_from: tuple[Network, ...] = LOOPBACK
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def keys_dir(self) -> Path:
        """Directory holding the node's private keys."""
        return self.directory / KEYS_DIR

    def with_overrides(self, **changes: Any) -> NodeSettings:
        """Return a copy with some fields replaced (used by tests and ``create_app``)."""
        return replace(self, **changes)


def default_database_url(directory: Path) -> str:
    """The embedded SQLite database inside the node directory."""
    return f"sqlite:///{(directory / DEFAULT_DB_FILE).resolve()}"


def load_settings(directory: Path, environ: Mapping[str, str] | None = None) -> NodeSettings:
    """Read ``DIR/node.toml`` and apply environment overrides.

    Raises:
        SettingsError: the directory is not an initialised node or its config is invalid.
    """
    env = os.environ if environ is None else environ
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise SettingsError(
            f"{directory} is not a Corridor node directory (no {CONFIG_FILE}); "
            "run 'corridor node --dir DIR init' first"
        )
    try:
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SettingsError(f"{config_path}: not valid TOML: {e}") from e
    node = data.get("node")
    if not isinstance(node, dict):
        raise SettingsError(f"{config_path}: missing [node] table")
    try:
        member_id = str(node["member_id"])
        name = str(node["name"])
        country = str(node["country"])
    except KeyError as e:
        raise SettingsError(f"{config_path}: [node] is missing {e.args[0]!r}") from e
    validate_identity(member_id, country)
    storage = data.get("storage", {})
    database_url = (
        env.get("CORRIDOR_NODE_DATABASE_URL")
        or storage.get("database_url")
        or default_database_url(directory)
    )
    return NodeSettings(
        directory=directory,
        member_id=member_id,
        name=name,
        country=country,
        url=node.get("url") or None,
        registry_url=(data.get("registry", {}).get("url") or "").rstrip("/") or None,
        sync_interval=int(data.get("registry", {}).get("sync_interval", 3600)),
        request_poll_interval=int(data.get("registry", {}).get("request_poll_interval", 60)),
        checkpoint_interval=int(data.get("registry", {}).get("checkpoint_interval", 300)),
        database_url=str(database_url),
        import_batch_rows=int(storage.get("import_batch_rows", 5_000)),
        proxies=proxies_setting(node.get("proxies", 0)),
        time_zone=time_zone_setting(node.get("time_zone", "UTC")),
        metrics_from=metrics_from_setting(node.get("metrics_from")),
        extra={k: v for k, v in data.items() if k not in {"node", "storage", "registry"}},
    )


def render_config(member_id: str, name: str, country: str, url: str | None,
                  database_url: str | None = None, registry_url: str | None = None) -> str:
    """The initial ``node.toml`` written by ``corridor node init``."""
    lines = [
        "# Corridor node configuration. Environment variables CORRIDOR_NODE_* override it.",
        "[node]",
        f"member_id = {toml_string(member_id)}",
        f"name = {toml_string(name)}",
        f"country = {toml_string(country)}",
        "proxies = 0  # 1 behind a TLS reverse proxy (trust its X-Forwarded-*)",
        'time_zone = "UTC"  # the pages\' times, e.g. "Asia/Vladivostok" (IANA names)',
        'metrics_from = ["127.0.0.1/32", "::1/128"]  # who may read /metrics ([]: nobody)',
    ]
    if url:
        lines.append(f"url = {toml_string(url)}")
    if registry_url:
        lines += ["", "[registry]", f"url = {toml_string(registry_url)}",
                  "sync_interval = 3600  # seconds between trust-list refreshes while serving",
                  "request_poll_interval = 60  # seconds between pulls of requests and "
                  "pushes of decisions",
                  "checkpoint_interval = 300  # seconds between signed, witnessed checkpoints "
                  "of the log (0: off)"]
    lines += ["", "[storage]"]
    if database_url:
        lines.append(f"database_url = {toml_string(database_url)}")
    else:
        lines.append('# database_url = "postgresql+psycopg://user@host/db"'
                     "  (default: node.db in this directory)")
    lines.append("")
    return "\n".join(lines)


def secret_key_override(environ: Mapping[str, str] | None = None) -> str | None:
    """The Flask session secret from ``CORRIDOR_NODE_SECRET_KEY``, if set."""
    env = os.environ if environ is None else environ
    return env.get("CORRIDOR_NODE_SECRET_KEY") or None


def node_directory(environ: Mapping[str, str] | None = None) -> Path:
    """The node directory named by ``CORRIDOR_NODE_DIR`` (default: the current directory)."""
    env = os.environ if environ is None else environ
    return Path(env.get("CORRIDOR_NODE_DIR", "."))


def current_settings() -> NodeSettings:
    """The settings of the node app handling the current request."""
    settings: NodeSettings = current_app.extensions["corridor_settings"]
    return settings


def current_signing_key() -> SigningKey:
    """The active signing key of the node app handling the current request.

    Read once per app and again only when the key directory changes
    (:class:`corridor.keystore.KeyFiles`), not on every request.
    """
    keys: KeyFiles | None = current_app.extensions.get("corridor_keys")
    if keys is None:
        keys = current_app.extensions["corridor_keys"] = KeyFiles(current_settings().keys_dir)
    return keys.signing_key()
