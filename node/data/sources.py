"""Reading import inputs: a package directory, a zip file, or loose CSV files.

Every open goes through :func:`safe_member`, so a descriptor cannot make the
importer read outside the package (``..``, absolute paths, links).
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from corridor.errors import BadRequest

MAX_DESCRIPTOR_BYTES = 4 * 1024 * 1024


class SourceError(BadRequest):
    """The input cannot be read as a package (missing, unsafe or malformed)."""

    title = "Input unreadable"


def safe_member(path: str) -> str:
    """Return a normalised relative POSIX path or raise if it could escape the package."""
    if not path or "\\" in path or "\x00" in path:
        raise SourceError(f"unsafe resource path {path!r}")
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("..", "") for part in pure.parts) or ":" in pure.parts[0]:
        raise SourceError(f"unsafe resource path {path!r}: must be relative, without '..'")
    return str(pure)


class CountingReader(io.RawIOBase):
    """A binary reader that reports each chunk it reads and feeds it to a digest."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None] | None,
                 digest: Any = None) -> None:
        self._raw = raw
        self._on_bytes = on_bytes
        self._digest = digest

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the underlying stream and report the count."""
        try:
            data = self._raw.read(len(buffer))
        except (zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise SourceError(f"corrupt archive: {e}") from e
        n = len(data)
        buffer[:n] = data
        if n:
            if self._digest is not None:
                self._digest.update(data)
            if self._on_bytes is not None:
                self._on_bytes(n)
        return n

    def drain(self) -> None:
        """Read (and hash) whatever is left of the stream."""
        while self.read(1 << 16):
            pass


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
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise SourceError(f"{self.location}: neither a directory nor a readable zip file") \
                from e
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

    def _open_dir_member(self, member: str) -> IO[bytes]:
        """Open without following a final symlink, and check what was opened."""
        path = self._dir_path(member)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            raise SourceError(f"{member}: cannot open ({e.strerror})") from e
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise SourceError(f"{member}: listed in datapackage.json but not a regular file")
        return os.fdopen(fd, "rb")

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        """Open a member for binary reading."""
        member = safe_member(member)
        if self._zip is not None:
            try:
                info = self._zip.getinfo(self._prefix + member)
                fh = self._zip.open(info)
            except KeyError as e:
                raise SourceError(f"{member}: listed in datapackage.json but not in the zip") from e
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, ValueError) as e:
                # encrypted members, unknown compression methods, corrupt headers
                raise SourceError(f"{member}: cannot be read from the zip ({e})") from e
            with fh:
                yield fh
            return
        with self._open_dir_member(member) as fh:
            yield fh

    def descriptor(self) -> tuple[dict[str, Any], bytes]:
        """The parsed ``datapackage.json`` and its bytes."""
        with self.open("datapackage.json") as fh:
            try:
                data = fh.read(MAX_DESCRIPTOR_BYTES + 1)
            except (zipfile.BadZipFile, EOFError, zlib.error) as e:
                raise SourceError(f"datapackage.json: corrupt archive ({e})") from e
        if len(data) > MAX_DESCRIPTOR_BYTES:
            raise SourceError("datapackage.json is larger than 4 MiB")
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise SourceError(f"datapackage.json is not valid JSON: {str(e)[:200]}") from e
        if not isinstance(parsed, dict):
            raise SourceError("datapackage.json must be a JSON object")
        return parsed, data
