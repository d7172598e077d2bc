"""Where an auditor reads a log and the keys to check it: a service's URL or its directory.

A URL is read through the read-only auditor API (``/log/...``, HTTP Basic
with an auditor account); the keys come from the registry anchor the auditor
pinned and the trust list the registry signs. A directory (a node's or the
registry's, on the auditor's own machine) is read straight from its
database, and the keys from the anchor and trust list it pinned itself.
"""

from __future__ import annotations

import base64
import tomllib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audit.checks import AuditFailure
from corridor.anchor import AnchorError, read_anchor
from corridor.db import make_engine, make_session_factory
from corridor.service_directory import (
    ServiceDirectoryError,
    TrustedKeys,
    open_service_directory,
)
from corridor.tlog import MAX_PAGE, LogEntry, TransparencyLog
from crypto.trustlist import TrustListRejected, load_trusted

__all__ = [
    "Credentials",
    "DatabaseSource",
    "DirectorySource",
    "HttpSource",
    "TrustedKeys",
    "open_source",
]

HTTP_TIMEOUT = 30.0


class Credentials:
    """Auditor accounts per service URL, from a TOML file, with one default account.

    The file maps base URLs to tables with ``user`` and ``password``::

        ["https://node.amur.example"]
        user = "inspector"
        password = "..."
    """

    def __init__(self, default: tuple[str, str] | None = None,
                 path: Path | None = None) -> None:
        self.default = default
        self.by_url: dict[str, tuple[str, str]] = {}
        if path is not None:
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise AuditFailure(f"{path}: cannot read the credentials ({e})") from e
            for url, table in data.items():
                if not isinstance(table, dict) or not {"user", "password"} <= table.keys():
                    raise AuditFailure(f"{path}: [{url}] needs user and password")
                self.by_url[url.rstrip("/")] = (str(table["user"]), str(table["password"]))

    def for_url(self, url: str) -> tuple[str, str] | None:
        """The account to use at ``url``."""
        return self.by_url.get(url.rstrip("/"), self.default)


class HttpSource:
    """A log read through a service's auditor API."""

    def __init__(self, url: str, auth: tuple[str, str] | None, http: httpx.Client) -> None:
        self.url = url.rstrip("/")
        self.label = self.url
        self.auth = auth
        self.http = http

    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = self.http.get(self.url + path, params=params, auth=self.auth,
                                     timeout=HTTP_TIMEOUT)
        except httpx.HTTPError as e:
            raise AuditFailure(f"{self.url}: cannot reach the service ({e})") from e
        if response.status_code in (401, 403):
            raise AuditFailure(f"{self.url}{path}: refused ({response.status_code}); "
                               "give an auditor account (--user, or --credentials)")
        return response

    def _json(self, path: str, params: dict[str, Any]) -> Any:
        response = self._get(path, params)
        if response.status_code != 200:
            raise AuditFailure(f"{self.url}{path}: HTTP {response.status_code}: "
                               f"{response.text[:200]}")
        try:
            return response.json()
        except ValueError as e:
            raise AuditFailure(f"{self.url}{path}: not JSON") from e

    def checkpoint_note(self) -> bytes | None:
        """The latest checkpoint, or None (404)."""
        response = self._get("/log/checkpoint")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AuditFailure(f"{self.url}/log/checkpoint: HTTP {response.status_code}")
        return response.content

    def entries(self, start: int, end: int | None = None) -> Iterator[LogEntry]:
        """Entries page by page, following ``next``."""
        position: int | None = start
        while position is not None:
            params: dict[str, Any] = {"from": position}
            if end is not None:
                params["to"] = end
            page = self._json("/log/entries", params)
            try:
                rows = [LogEntry(int(e["index"]), str(e["leaf"]), bytes.fromhex(e["hash"]))
                        for e in page["entries"]]
                following = page.get("next")
            except (KeyError, TypeError, ValueError) as e:
                raise AuditFailure(f"{self.url}/log/entries: malformed page ({e})") from e
            yield from rows
            if following is not None and (not rows or int(following) <= rows[-1].index):
                raise AuditFailure(f"{self.url}/log/entries: pagination does not advance")
            position = None if following is None else int(following)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """The service's proof that size ``old`` is a prefix of size ``new``."""
        body = self._json("/log/proof/consistency", {"from": old, "to": new})
        try:
            return [base64.b64decode(h, validate=True) for h in body["proof"]]
        except (KeyError, TypeError, ValueError) as e:
            raise AuditFailure(f"{self.url}: malformed consistency proof ({e})") from e

    def trusted_keys(self, anchor: Path) -> TrustedKeys:
        """Keys from the auditor's anchor and the trust list its registry serves."""
        try:
            registry_url, registry_keys = read_anchor(anchor)
        except AnchorError as e:
            raise AuditFailure(str(e)) from e
        try:
            response = self.http.get(registry_url + "/trust-list", timeout=HTTP_TIMEOUT)
            response.raise_for_status()
            trust_list = load_trusted(str(response.json()["jws"]), anchor=registry_keys)
        except (httpx.HTTPError, KeyError, TypeError, ValueError, TrustListRejected) as e:
            raise AuditFailure(f"{registry_url}/trust-list: cannot get a trust list signed "
                               f"by the anchored key ({e})") from e
        return TrustedKeys(registry_keys,
                           {m.member_id: m.keys for m in trust_list.members.values()})


class DatabaseSource:
    """A log read straight from a service's database."""

    def __init__(self, sessions: sessionmaker[Session], log: TransparencyLog,
                 label: str) -> None:
        self.sessions, self.log, self.label = sessions, log, label

    def checkpoint_note(self) -> bytes | None:
        """The newest stored checkpoint."""
        with self.sessions() as session:
            row = self.log.latest_checkpoint(session)
            return None if row is None else str(row.note).encode("utf-8")

    def entries(self, start: int, end: int | None = None) -> Iterator[LogEntry]:
        """Entries in index order, read in pages."""
        position = start
        with self.sessions() as session:
            while end is None or position < end:
                page = self.log.entries(session, position, end, limit=MAX_PAGE * 5)
                if not page:
                    return
                yield from page
                position = page[-1].index + 1

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """A proof built from the stored nodes."""
        with self.sessions() as session:
            return self.log.consistency_proof(session, old, new)


class DirectorySource(DatabaseSource, AbstractContextManager["DirectorySource"]):
    """The log of the node or registry whose directory this is."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            self.service = open_service_directory(directory)
        except ServiceDirectoryError as e:
            raise AuditFailure(str(e)) from e
        self.kind = self.service.kind
        self.engine: Engine = make_engine(self.service.database_url)
        super().__init__(make_session_factory(self.engine), self.service.log, str(directory))

    def __exit__(self, *exc: object) -> None:
        """Release the database."""
        self.engine.dispose()

    def trusted_keys(self, anchor: Path | None) -> TrustedKeys:
        """The keys the service pinned itself (its anchor and trust list, or its own keys)."""
        try:
            return self.service.trusted_keys()
        except ServiceDirectoryError as e:
            raise AuditFailure(str(e)) from e


def open_source(target: str, credentials: Credentials,
                http: httpx.Client) -> HttpSource | DirectorySource:
    """A source for a URL (``http://`` or ``https://``) or a service directory."""
    if target.startswith(("http://", "https://")):
        return HttpSource(target, credentials.for_url(target), http)
    path = Path(target)
    if not path.is_dir():
        raise AuditFailure(f"{target}: not a URL and not a directory")
    return DirectorySource(path)
