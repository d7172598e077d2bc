"""Backups of a service directory: its configuration, keys, trust store and database, in one file.

A backup is a gzip-compressed tar whose first member, ``backup.json``, lists
every other member with its SHA-256 and size. The database is taken while
the service runs: SQLite through its online backup API (a consistent copy;
writers wait for it, up to the busy timeout), PostgreSQL through
``pg_dump --format=custom`` (one snapshot transaction). The file holds the
service's private keys, so it is written mode 0600 and must be stored as
the keys are.

Restoring reads the manifest first and accepts only the members it names,
as regular files under safe relative paths, each checked against its digest
as it is written; it writes into a staging directory next to the target and
renames it into place only when everything checked, so a bad or truncated
backup leaves nothing behind. The database goes to the target directory's
own SQLite file, or into an empty PostgreSQL database or schema through
``pg_restore`` in a single transaction.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import unquote

from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from corridor.db import make_engine, migration_state
from corridor.errors import CorridorError
from corridor.files import written_whole

__all__ = [
    "BACKUP_FORMAT",
    "BackupError",
    "BackupSummary",
    "Layout",
    "RestoreSummary",
    "read_manifest",
    "restore_backup",
    "write_backup",
]

#: The ``format`` of ``backup.json``; a restore refuses any other.
BACKUP_FORMAT = "corridor-backup/1"
MANIFEST = "backup.json"
_MANIFEST_LIMIT = 1 << 20
_CHUNK = 1 << 20
_SAFE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,200}")
_SQLITE_MEMBER = "database/database.sqlite"
_PGDUMP_MEMBER = "database/database.pgdump"

#: A progress callback: (bytes done, bytes in all or None when unknown).
Progress = Callable[[int, int | None], None]


class BackupError(CorridorError):
    """A backup could not be made or restored; ``str()`` says why and what to do."""

    title = "Backup or restore failed"
    public = False


@dataclass(frozen=True)
class Layout:
    """What a service keeps in its directory, for backups (each service declares its own)."""

    kind: str
    """``node`` or ``registry``; a backup restores only into the same kind."""
    config_file: str
    """The config file at the top of the directory (``node.toml``)."""
    default_database_file: str
    """The SQLite file the service uses when its config names no database."""
    database_env: str
    """The environment variable that overrides the config's database URL."""
    migrations: Path
    """The service's Alembic migrations (the manifest records the database's revision)."""
    members: tuple[str, ...] = ("anchor.json", "keys", "trust")
    """Files and directories backed up besides the config, where they exist."""


@dataclass(frozen=True)
class BackupSummary:
    """What a backup holds."""

    path: Path
    files: int
    database: str
    revision: str | None
    bytes: int


@dataclass(frozen=True)
class RestoreSummary:
    """What a restore wrote and where."""

    directory: Path
    files: int
    database: str
    database_url: str
    revision: str | None


# --- writing ---------------------------------------------------------------------------------

def write_backup(layout: Layout, directory: Path, database_url: str, out: Path, *,
                 progress: Progress | None = None, now: datetime | None = None) -> BackupSummary:
    """Back up the service at ``directory`` (database at ``database_url``) into ``out``.

    :raises BackupError: ``out`` exists, the database cannot be read or dumped.
    """
    if out.exists():
        raise BackupError(f"{out} already exists; give a new file name (nothing was overwritten)")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a directory")
    url = make_url(database_url)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".corridor-backup-") as tmp:
        staging = Path(tmp)
        if url.get_backend_name() == "sqlite":
            member, dump = _SQLITE_MEMBER, staging / "database.sqlite"
            _sqlite_snapshot(_sqlite_path(url), dump, progress)
        elif url.get_backend_name() == "postgresql":
            member, dump = _PGDUMP_MEMBER, staging / "database.pgdump"
            _pg_dump(url, dump)
        else:
            raise BackupError(f"cannot back up a {url.get_backend_name()} database")
        revision = _revision(database_url, layout.migrations)
        # Copied first, so that a file the service replaces meanwhile (its trust
        # list, a rotated key) is archived exactly as hashed.
        files = [(name, _snapshot(directory / name, staging / "files" / name))
                 for name in _directory_members(layout, directory)]
        files.append((member, dump))
        entries = [_entry(name, path) for name, path in files]
        manifest = {
            "format": BACKUP_FORMAT,
            "kind": layout.kind,
            "created": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "corridor": _corridor_version(),
            "database": {"dialect": url.get_backend_name(), "member": member,
                         "revision": revision},
            "members": entries,
        }
        raw = json.dumps(manifest, indent=2, sort_keys=True).encode()
        with written_whole(out) as part:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as sink, tarfile.open(fileobj=sink, mode="w|gz") as tar:
                _add(tar, MANIFEST, len(raw), io.BytesIO(raw))
                for name, path in files:
                    with path.open("rb") as handle:
                        _add(tar, name, path.stat().st_size, handle)
    return BackupSummary(out, len(files) - 1, url.get_backend_name(), revision,
                         out.stat().st_size)


def _directory_members(layout: Layout, directory: Path) -> list[str]:
    names = [layout.config_file]
    for name in layout.members:
        path = directory / name
        if path.is_file():
            names.append(name)
        elif path.is_dir():
            names += sorted(p.relative_to(directory).as_posix() for p in path.rglob("*")
                            if p.is_file() and not p.is_symlink())
    for name in names:
        _check_member_name(name)
    return names


def _entry(name: str, path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"path": name, "sha256": digest.hexdigest(), "bytes": size}


def _snapshot(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def _add(tar: tarfile.TarFile, name: str, size: int, contents: IO[bytes]) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    tar.addfile(info, contents)


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("the database is in memory: there is nothing on disk to back up")
    return Path(url.database)


def _sqlite_snapshot(source: Path, target: Path, progress: Progress | None) -> None:
    """A consistent copy of a live SQLite database (the online backup API, one step)."""
    if not source.is_file():
        raise BackupError(f"the database {source} does not exist")
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(target)
            try:
                # One step: a copy of one moment. Writers wait for it (their busy
                # timeout); a stepwise copy would restart at every write instead.
                src.backup(dst, pages=-1, progress=None if progress is None else
                           lambda _status, remaining, total: progress(total - remaining, total))
                check = dst.execute("PRAGMA integrity_check").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as e:
        raise BackupError(f"could not copy the database {source}: {e}") from e
    if check != ("ok",):
        raise BackupError(f"the copy of {source} fails SQLite's integrity check: {check}")


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for ``url`` without its password, and the environment with it."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _search_path(url: URL) -> list[str]:
    """The schemas a ``options=-csearch_path=...`` query parameter names (empty: none)."""
    options = url.query.get("options")
    for option in [options] if isinstance(options, str) else list(options or ()):
        # "-csearch_path=a,b" or "-c search_path=a,b" (libpq accepts both)
        for word in unquote(option).replace("-c ", "-c").split():
            if word.startswith("-csearch_path="):
                return [s.strip().strip('"') for s in word.split("=", 1)[1].split(",")
                        if s.strip()]
    return []


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: install the PostgreSQL client tools "
                          "of the server's major version (Debian: postgresql-client)")
    return found


def _pg_dump(url: URL, target: Path) -> None:
    uri, env = _libpq(url)
    schemas = [f"--schema={schema}" for schema in _search_path(url)]
    _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
          *schemas, f"--file={target}", f"--dbname={uri}"], env, "pg_dump")


def _run(argv: list[str], env: Mapping[str, str], what: str) -> None:
    try:
        # A list, no shell; the tool is the one shutil.which found on PATH.
        done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=3600,  # noqa: S603
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BackupError(f"{what} did not run: {e}") from e
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{what} failed: {' / '.join(detail[-3:]) or f'exit {done.returncode}'}")


def _revision(database_url: str, migrations: Path) -> str | None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return migration_state(connection, migrations)[0]
    finally:
        engine.dispose()


def _corridor_version() -> str:
    try:
        return version("corridor")
    except PackageNotFoundError:
        return "unknown"


def _check_member_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if name != path.as_posix() or path.is_absolute() or not path.parts \
            or not all(_SAFE_PART.fullmatch(part) for part in path.parts) \
            or any(part in {".", ".."} for part in path.parts):
        raise BackupError(f"unsafe file name in the backup: {name!r}")
    return path


# --- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Entry:
    path: str
    sha256: str
    bytes: int


def read_manifest(raw: bytes, layout: Layout) -> tuple[dict[str, Any], dict[str, _Entry]]:
    """The manifest of a backup, checked, and its members by name.

    :raises BackupError: not a Corridor backup of this kind, or a malformed manifest.
    """
    try:
        manifest = json.loads(raw)
    except ValueError as e:
        raise BackupError(f"{MANIFEST} is not JSON: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise BackupError(f"not a Corridor backup (its {MANIFEST} is not {BACKUP_FORMAT})")
    if manifest.get("kind") != layout.kind:
        raise BackupError(f"this is a backup of a {manifest.get('kind')!s:.20}, not of a "
                          f"{layout.kind}: restore it with 'corridor {manifest.get('kind')!s:.20} "
                          "restore'")
    database = manifest.get("database")
    members = manifest.get("members")
    if not isinstance(database, dict) or not isinstance(members, list):
        raise BackupError(f"{MANIFEST} lacks its database or members")
    entries: dict[str, _Entry] = {}
    for item in members:
        if not isinstance(item, dict):
            raise BackupError(f"{MANIFEST}: a member is not an object")
        path, digest, size = item.get("path"), item.get("sha256"), item.get("bytes")
        if not isinstance(path, str) or not isinstance(digest, str) \
                or not re.fullmatch(r"[0-9a-f]{64}", digest) \
                or type(size) is not int or size < 0:
            raise BackupError(f"{MANIFEST}: member {path!s:.80} lacks a sha256 or size")
        _check_member_name(path)
        if path in entries or path == MANIFEST:
            raise BackupError(f"{MANIFEST}: member {path!r:.80} is listed twice")
        entries[path] = _Entry(path, digest, size)
    expected = {"sqlite": _SQLITE_MEMBER, "postgresql": _PGDUMP_MEMBER}.get(
        str(database.get("dialect")))
    if expected is None or database.get("member") != expected or expected not in entries:
        raise BackupError(f"{MANIFEST}: the database member is missing or of an unknown kind")
    if layout.config_file not in entries:
        raise BackupError(f"{MANIFEST}: the backup holds no {layout.config_file}")
    return manifest, entries


def restore_backup(layout: Layout, backup: Path, directory: Path, *,
                   database_url: str | None = None, url_from_env: bool = False,
                   progress: Progress | None = None) -> RestoreSummary:
    """Restore ``backup`` into the new or empty ``directory``; nothing is written on failure.

    ``database_url`` is where the database goes: by default the directory's
    own SQLite file; a PostgreSQL backup needs an empty PostgreSQL database
    (or schema, through ``options=-csearch_path=...``). Unless the URL came
    from the environment (``url_from_env``), the restored config names it.

    :raises BackupError: the backup is damaged, of another kind, or the target is not empty.
    """
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} exists and is not empty: restore into a new directory")
    if not backup.is_file():
        raise BackupError(f"{backup}: no such file")
    parent = directory.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BackupError(f"cannot create {parent}: {e.strerror}") from e
    with _staging(parent, directory.name) as staging, _open_tar(backup) as tar:
        manifest, entries = _extract(tar, layout, staging, progress)
        dialect = manifest["database"]["dialect"]
        dump = staging / manifest["database"]["member"]
        default_url = f"sqlite:///{(directory.resolve() / layout.default_database_file)}"
        target_url = database_url or default_url
        target = make_url(target_url)
        if dialect == "sqlite":
            if target.get_backend_name() != "sqlite":
                raise BackupError("this backup holds a SQLite database: restore it to SQLite "
                                  "(the default) and move it with your own tools if needed")
            final = _sqlite_path(target)
            if final.exists():
                raise BackupError(f"{final} already exists; nothing was overwritten")
            staged = staging / layout.default_database_file
            dump.replace(staged)
        else:
            if target.get_backend_name() != "postgresql":
                raise BackupError("this backup holds a PostgreSQL dump: give --database-url "
                                  "of an empty PostgreSQL database to restore it into")
            _require_empty(target_url)
        _write_database_url(staging / layout.config_file,
                            None if url_from_env or target_url == default_url else target_url)
        if dialect == "postgresql":
            _pg_restore(target, dump)  # one transaction: all of it or none
        shutil.rmtree(staging / "database")
        if directory.exists():
            directory.rmdir()
        staging.replace(directory)
    if dialect == "sqlite" and target_url != default_url:
        (directory / layout.default_database_file).replace(_sqlite_path(target))
    files = len(entries) - 1
    return RestoreSummary(directory, files, dialect, target.render_as_string(hide_password=True),
                          _revision(target_url, layout.migrations))


@contextmanager
def _staging(parent: Path, name: str) -> Iterator[Path]:
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.restoring-"))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _open_tar(backup: Path) -> Iterator[tarfile.TarFile]:
    try:
        with tarfile.open(backup, mode="r|gz") as tar:
            yield tar
    except (tarfile.TarError, EOFError, OSError) as e:
        raise BackupError(f"{backup} is not a readable backup (truncated or not gzip/tar): "
                          f"{e}") from e


def _extract(tar: tarfile.TarFile, layout: Layout, staging: Path,
             progress: Progress | None) -> tuple[dict[str, Any], dict[str, _Entry]]:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isreg() \
            or first.size > _MANIFEST_LIMIT:
        raise BackupError(f"not a Corridor backup: it does not begin with {MANIFEST}")
    manifest, entries = read_manifest(_read_all(tar, first), layout)
    total = sum(e.bytes for e in entries.values())
    done = 0
    seen: set[str] = set()
    while (member := tar.next()) is not None:
        entry = entries.get(member.name)
        if entry is None or member.name in seen:
            raise BackupError(f"the backup holds {member.name!r:.80}, which its manifest "
                              "does not list (or lists once)")
        if not member.isreg():
            raise BackupError(f"{member.name!r:.80} in the backup is not a regular file")
        if member.size != entry.bytes:
            raise BackupError(f"{member.name}: {member.size} bytes, the manifest says "
                              f"{entry.bytes}")
        seen.add(member.name)
        target = staging.joinpath(*PurePosixPath(member.name).parts)
        for folder in reversed(target.relative_to(staging).parents[:-1]):
            (staging / folder).mkdir(mode=0o700, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None  # a regular file always has contents
        digest = _copy(source, target)
        if digest != entry.sha256:
            raise BackupError(f"{member.name} does not match its digest in the manifest: "
                              "the backup is damaged")
        done += entry.bytes
        if progress is not None:
            progress(done, total)
    missing = sorted(set(entries) - seen)
    if missing:
        raise BackupError(f"the backup is incomplete: {', '.join(missing[:5])} missing")
    return manifest, entries


def _read_all(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise BackupError(f"{member.name} is not a regular file")
    return handle.read(_MANIFEST_LIMIT + 1)


def _copy(source: IO[bytes], target: Path) -> str:
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as sink:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            sink.write(chunk)
    return digest.hexdigest()


def _write_database_url(config: Path, url: str | None) -> None:
    """Point the restored config at ``url`` (None: comment out any database_url it names)."""
    lines = config.read_text("utf-8").splitlines()
    pattern = re.compile(r"\s*database_url\s*=")
    kept = [line for line in lines if not pattern.match(line)]
    if url is not None:
        at = next((i + 1 for i, line in enumerate(kept) if line.strip() == "[storage]"), None)
        entry = f"database_url = {json.dumps(url)}"
        if at is None:
            kept += ["", "[storage]", entry]
        else:
            kept.insert(at, entry)
    config.write_text("\n".join(kept) + "\n", "utf-8")


def _require_empty(url: str) -> None:
    engine: Engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tables = connection.execute(text(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = ANY (current_schemas(false))")).scalar_one()
    except SQLAlchemyError as e:
        raise BackupError(f"cannot reach the target database: {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}") from e
    finally:
        engine.dispose()
    if tables:
        raise BackupError(f"the target database already holds {tables} table(s): restore "
                          "into an empty database (nothing was changed)")


def _pg_restore(url: URL, dump: Path) -> None:
    uri, env = _libpq(url)
    _run([_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
          "--single-transaction", f"--dbname={uri}", str(dump)], env, "pg_restore")
