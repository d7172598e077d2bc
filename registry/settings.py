"""Typed registry settings: one place that reads the registry's config file and environment.

A registry directory looks like::

    DIR/registry.toml    identity and policy settings (written by ``corridor registry init``)
    DIR/keys/            the registry's Ed25519 signing keys, mode 0700, files 0600
    DIR/registry.db      the SQLite database (unless ``database_url`` points elsewhere)

Environment variables override the file:

``CORRIDOR_REGISTRY_DATABASE_URL``
    SQLAlchemy URL of the registry database (default ``sqlite:///DIR/registry.db``).
``CORRIDOR_REGISTRY_DIR``
    The registry directory for ``gunicorn registry.wsgi:app`` (default: current directory).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from corridor.config import (
    LOOPBACK,
    Network,
    SettingsError,
    metrics_from_setting,
    proxies_setting,
    time_zone_setting,
    toml_string,
)

CONFIG_FILE = "registry.toml"
DEFAULT_DB_FILE = "registry.db"

__all__ = ["RegistrySettings", "SettingsError", "load_settings", "render_config"]


@dataclass(frozen=True)
class RegistrySettings:
    """Everything the registry needs to know about itself.

    Attributes:
        directory: the registry directory (config, keys, default database).
        name: human-readable name, e.g. "NEASPEC Registry".
        url: the registry's public base URL (token endpoint and issuer derive from it).
        database_url: SQLAlchemy database URL.
        development: accept ``http://`` node URLs on loopback addresses (demo and tests).
        trust_list_ttl: seconds a signed trust list stays valid.
        token_ttl: seconds an access token stays valid (at most 300).
        assertion_max_age: seconds a client assertion may live (``exp - iat``).
        proxies: reverse proxies in front of the registry whose X-Forwarded-Proto/Host/For
            headers are trusted (0: none). Behind a TLS proxy this must be 1, or the
            OAuth2 endpoints see http:// and refuse every request.
        checkpoint_interval: seconds between checks that sign a new checkpoint of the
            registry's exchange log when it grew (0: only ``corridor registry log checkpoint``).
        time_zone: IANA zone the registry's pages give times in (``UTC`` by default).
        metrics_from: networks whose clients may read ``/metrics`` (loopback by default).
    """

    directory: Path
    name: str
    url: str
    database_url: str
    development: bool = False
    trust_list_ttl: int = 7 * 24 * 3600
    token_ttl: int = 300
    assertion_max_age: int = 300
    proxies: int = 0
    checkpoint_interval: int = 300
    time_zone: str = "UTC"
    metrics_from: tuple[Network, ...] = LOOPBACK

    @property
    def keys_dir(self) -> Path:
        """Directory holding the registry's private keys."""
        return self.directory / "keys"

    @property
    def issuer(self) -> str:
        """The OAuth2 issuer identifier (RFC 8414): the registry's URL."""
        return self.url.rstrip("/")

    @property
    def token_endpoint(self) -> str:
        """Absolute URL of the token endpoint (the ``aud`` of client assertions)."""
        return f"{self.issuer}/oauth/token"


def load_settings(directory: Path, environ: Mapping[str, str] | None = None) -> RegistrySettings:
    """Read ``DIR/registry.toml`` and apply environment overrides.

    Raises:
        SettingsError: the directory is not an initialised registry or its config is invalid.
    """
    env = os.environ if environ is None else environ
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise SettingsError(f"{directory} is not a Corridor registry directory (no {CONFIG_FILE}); "
                            "run 'corridor registry --dir DIR init' first")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        reg = data["registry"]
        storage = data.get("storage", {})
        ttl = int(reg.get("token_ttl", 300))
        if not 30 <= ttl <= 300:
            raise SettingsError(f"{path}: token_ttl must be 30..300 seconds")
        interval = reg.get("checkpoint_interval", 300)
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 0:
            raise SettingsError(f"{path}: checkpoint_interval must be a whole number of "
                                "seconds, 0 or more (0 disables it)")
        return RegistrySettings(
            directory=directory,
            name=str(reg["name"]),
            url=str(reg["url"]),
            database_url=(env.get("CORRIDOR_REGISTRY_DATABASE_URL") or storage.get("database_url")
                          or f"sqlite:///{(directory / DEFAULT_DB_FILE).resolve()}"),
            development=bool(reg.get("development", False)),
            trust_list_ttl=int(reg.get("trust_list_ttl", 7 * 24 * 3600)),
            token_ttl=ttl,
            proxies=proxies_setting(reg.get("proxies", 0)),
            checkpoint_interval=interval,
            time_zone=time_zone_setting(reg.get("time_zone", "UTC")),
        metrics_from=metrics_from_setting(reg.get("metrics_from")),
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
        if isinstance(e, SettingsError):
            raise
        raise SettingsError(f"{path}: invalid configuration ({e})") from e


def render_config(name: str, url: str, *, development: bool,
                  database_url: str | None = None) -> str:
    """The initial ``registry.toml`` written by ``corridor registry init``."""
    lines = [
        "# Corridor registry configuration. CORRIDOR_REGISTRY_* environment variables override it.",
        "[registry]",
        f"name = {toml_string(name)}",
        f"url = {toml_string(url)}",
        f"development = {'true' if development else 'false'}"
        "  # true: accept http:// node URLs on loopback (demo, tests)",
        "trust_list_ttl = 604800  # seconds a signed trust list stays valid",
        "token_ttl = 300          # seconds an access token stays valid (30..300)",
        "proxies = 0              # 1 behind a TLS reverse proxy (trust its X-Forwarded-*)",
        "checkpoint_interval = 300  # seconds between signed checkpoints of the log (0: off)",
        'time_zone = "UTC"        # the pages\' times, e.g. "Asia/Seoul" (IANA names)',
        'metrics_from = ["127.0.0.1/32", "::1/128"]  # who may read /metrics ([]: nobody)',
        "",
        "[storage]",
    ]
    if database_url:
        lines.append(f"database_url = {toml_string(database_url)}")
    lines.append("")
    return "\n".join(lines)


def registry_directory(environ: Mapping[str, str] | None = None) -> Path:
    """The registry directory named by ``CORRIDOR_REGISTRY_DIR`` (default: current directory)."""
    env = os.environ if environ is None else environ
    return Path(env.get("CORRIDOR_REGISTRY_DIR", "."))
