"""Reading import inputs: a package directory, a zip file, or loose CSV files.

Every open goes through :func:`safe_member`, so a descriptor cannot make the
importer read outside the package (``..``, absolute paths, links).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

MAX_DESCRIPTOR_BYTES = 4 * 1024 * 1024


class SourceError(Exception):
    """The input cannot be read as a package (missing, unsafe or malformed)."""


def safe_member(path: str) -> str:
    """Return a normalised relative POSIX path or raise if it could escape the package."""
    if not path or "\\" in path or "\x00" in path:
        raise SourceError(f"unsafe resource path {path!r}")
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("..", "") for part in pure.parts) or ":" in pure.parts[0]:
        raise SourceError(f"unsafe resource path {path!r}: must be relative, without '..'")
    return str(pure)


class CountingReader(io.RawIOBase):
    """A binary reader that reports how many bytes have been read so far."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the underlying stream and report the count."""
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n and self._on_bytes is not None:
            self._on_bytes(n)
        return n


@dataclass
class PackageSource:
    """A Camtrap DP package in a directory or a zip file."""

    location: Path

    def __post_init__(self) -> None:
        if not self.location.exists():
            raise SourceError(f"{self.location}: no such file or directory")
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        if self.location.is_dir():
            if not (self.location / "datapackage.json").is_file():
                raise SourceError(f"{self.location}: no datapackage.json in this directory")
            return
        try:
            self._zip = zipfile.ZipFile(self.location)
        except zipfile.BadZipFile as e:
            raise SourceError(f"{self.location}: neither a directory nor a zip file") from e
        names = self._zip.namelist()
        candidates = [n for n in names if PurePosixPath(n).name == "datapackage.json"]
        candidates.sort(key=lambda n: n.count("/"))
        if not candidates or candidates[0].count("/") > 1:
            raise SourceError(f"{self.location}: no datapackage.json at the top of the zip")
        self._prefix = candidates[0][: -len("datapackage.json")]

    def close(self) -> None:
        """Release the zip file, if any."""
        if self._zip is not None:
            self._zip.close()

    def size(self, member: str) -> int:
        """Uncompressed size of a member in bytes."""
        member = safe_member(member)
        if self._zip is not None:
            try:
                return self._zip.getinfo(self._prefix + member).file_size
            except KeyError as e:
                raise SourceError(f"{member}: listed in datapackage.json but not in the zip") from e
        path = self._dir_path(member)
        return path.stat().st_size

    def _dir_path(self, member: str) -> Path:
        path = self.location / member
        if path.is_symlink() or not path.is_file():
            raise SourceError(f"{member}: listed in datapackage.json but not a regular file")
        root = self.location.resolve()
        if root not in path.resolve().parents:
            raise SourceError(f"{member}: resolves outside the package")
        return path

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        """Open a member for binary reading."""
        member = safe_member(member)
        if self._zip is not None:
            try:
                info = self._zip.getinfo(self._prefix + member)
            except KeyError as e:
                raise SourceError(f"{member}: listed in datapackage.json but not in the zip") from e
            with self._zip.open(info) as fh:
                yield fh
            return
        with self._dir_path(member).open("rb") as fh:
            yield fh

    def descriptor(self) -> dict[str, Any]:
        """The parsed ``datapackage.json``."""
        with self.open("datapackage.json") as fh:
            data = fh.read(MAX_DESCRIPTOR_BYTES + 1)
        if len(data) > MAX_DESCRIPTOR_BYTES:
            raise SourceError("datapackage.json is larger than 4 MiB")
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise SourceError(f"datapackage.json is not valid JSON: {e}") from e
        if not isinstance(parsed, dict):
            raise SourceError("datapackage.json must be a JSON object")
        return parsed

    def sha256(self, members: list[str]) -> str:
        """SHA-256 over the named members, in order (identifies the source version)."""
        digest = hashlib.sha256()
        for member in members:
            digest.update(member.encode() + b"\0")
            with self.open(member) as fh:
                _hash_stream(digest, fh)
        return digest.hexdigest()


def sha256_files(paths: list[Path]) -> str:
    """SHA-256 over loose files, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            _hash_stream(digest, fh)
    return digest.hexdigest()


def _hash_stream(digest: Any, stream: IO[bytes]) -> None:
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
