"""Write a signed data package as a stream (DESIGN.md §7).

::

    with PackageWriter(out, key=node_key) as package:
        with package.open_resource("observations", "observations.csv",
                                   schema=OBSERVATIONS_SCHEMA_URL) as raw:
            with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                rows = write_csv(text, plan.rows())
            raw.properties["rows"] = rows
        descriptor_bytes = package.finish({"profile": CAMTRAP_DP_PROFILE, ...})

Each resource's bytes go straight into its zip member while SHA-256 and a
byte count run over them, so memory stays flat however large the export;
``out`` may be a pipe or an HTTP response body (zipfile then writes data
descriptors instead of seeking back). :meth:`PackageWriter.finish` writes
``datapackage.json`` listing every resource, then its detached signature.

Fail closed: if anything goes wrong before :meth:`~PackageWriter.finish` (an
exception in a resource's ``with`` block, or in the writer's), the zip is
closed without ``datapackage.json`` and without the signature, so it can
never verify; nothing is ever signed that was not completely written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Protocol

from crypto.keys import SigningKey
from crypto.package import (
    DESCRIPTOR_NAME,
    RESERVED_NAMES,
    SIGNATURE_NAME,
    ZIP_CREATE_SYSTEM,
    ZIP_EXTERNAL_ATTR,
    PackageError,
    ResourceEntry,
    check_member_name,
    fold_name,
    resource_entries,
    sign_descriptor,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["PackageWriter", "ResourceStream", "Sink"]

#: Bytes gathered before they are hashed and written to the zip member.
CHUNK_SIZE = 64 * 1024
#: Deflate level when ``compress=True``: fast; exports are CPU-bound, not size-bound.
COMPRESS_LEVEL = 1
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest DOS time: the default, for reproducible zips
_CORE_PROPERTIES = frozenset({"name", "path", "profile", "format", "mediatype", "encoding",
                              "schema", "bytes", "hash"})


class Sink(Protocol):
    """Where a package goes: a binary file, a pipe, a socket, an HTTP response body."""

    def write(self, b: bytes, /) -> int:
        """Write all of ``b``."""

    def flush(self) -> None:
        """Push written bytes on."""

    def close(self) -> None:
        """Not called by the writer: whoever opened the sink closes it."""


class ResourceStream(io.BufferedIOBase):
    """A resource being written: a writable binary stream into one zip member.

    Every byte written is counted and hashed (SHA-256) on its way into the
    member. Set extra resource properties (e.g. ``rows``) in
    :attr:`properties` any time before :meth:`PackageWriter.finish`.
    Closing the stream completes the resource; leaving its ``with`` block by
    an exception aborts it and the package with it.
    """

    def __init__(self, *, name: str, path: str, metadata: dict[str, Any], handle: IO[bytes],
                 on_close: Callable[[ResourceStream, bool], None]) -> None:
        """Wrap an open zip member ``handle``; ``on_close(stream, complete)`` is called once."""
        super().__init__()
        self.name = name
        self.path = path
        #: Extra properties for this resource's entry in ``datapackage.json``.
        self.properties: dict[str, Any] = {}
        self._metadata = metadata
        self._handle = handle
        self._on_close = on_close
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._buffer = bytearray()
        self._aborted = False

    @property
    def size(self) -> int:
        """Bytes written so far (including any not yet flushed to the member)."""
        return self._size + len(self._buffer)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the resource; only once the stream is closed."""
        if not self.closed:
            raise ValueError("the resource's SHA-256 is known only once it is closed")
        return self._sha256.hexdigest()

    def writable(self) -> bool:
        """Always: this is a write-only stream."""
        return True

    def write(self, data: ReadableBuffer) -> int:
        """Write ``data`` to the resource; returns its length."""
        if self.closed:
            raise ValueError("write to a closed resource stream")
        view = memoryview(data).cast("B")
        if not self._buffer and view.nbytes >= CHUNK_SIZE:
            self._emit(bytes(view))  # large writes skip the buffer
        else:
            self._buffer += view
            if len(self._buffer) >= CHUNK_SIZE:
                self._drain()
        return view.nbytes

    def flush(self) -> None:
        """Nothing to do: buffered bytes reach the member in chunks and on close."""
        if self.closed:
            raise ValueError("flush of a closed resource stream")

    def close(self) -> None:
        """Complete the resource (or, after :meth:`abort`, just release the member)."""
        if self.closed:
            return
        complete = False
        try:
            if not self._aborted:
                self._drain()
            self._handle.close()
            complete = not self._aborted
        finally:
            super().close()
            self._on_close(self, complete)

    def abort(self) -> None:
        """Give up on this resource: the package will not be finished."""
        self._aborted = True
        self.close()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close on success; abort if the block raised."""
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def entry(self) -> dict[str, Any]:
        """This resource's entry in ``datapackage.json``."""
        entry = {**self._metadata, "bytes": self._size, "hash": f"sha256:{self.sha256}"}
        for key, value in self.properties.items():
            if key in _CORE_PROPERTIES:
                raise ValueError(f"resource {self.name!r}: property {key!r} is set by the writer")
            entry[key] = value
        return entry

    def _drain(self) -> None:
        if self._buffer:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            self._emit(chunk)

    def _emit(self, chunk: bytes) -> None:
        self._sha256.update(chunk)
        self._size += len(chunk)
        self._handle.write(chunk)


class PackageWriter:
    """Stream a signed zip data package into ``out`` (see the module docstring).

    :param out: where the zip goes; need not be seekable. Not closed here.
    :param key: the node key that signs ``datapackage.json``.
    :param compress: deflate members (level 1) instead of storing them.
    :param modified: the members' timestamp; default 1980-01-01, so that the
        same content always makes the same bytes.
    """

    def __init__(self, out: Sink, *, key: SigningKey, compress: bool = False,
                 modified: datetime | None = None) -> None:
        """Start a package; nothing is written until the first resource."""
        self._key = key
        self._compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self._date_time = _EPOCH if modified is None else _dos_time(modified)
        self._zip = zipfile.ZipFile(out, "w", compression=self._compression,
                                    compresslevel=COMPRESS_LEVEL if compress else None)
        self._resources: list[ResourceStream] = []
        self._open: ResourceStream | None = None
        self._names: set[str] = set()
        self._paths: set[str] = set()
        self._failure: str | None = None
        self._done = False

    def __enter__(self) -> PackageWriter:
        """Use as a context manager; see :meth:`__exit__`."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Abort unless :meth:`finish` ran; leaving the block normally without it is an error."""
        if self._done:
            return
        self.abort()
        if exc_type is None:
            raise RuntimeError("PackageWriter left without finish(): the package is unsigned")

    def open_resource(self, name: str, path: str, *,
                      schema: str | Mapping[str, Any] | None = None,
                      profile: str = "tabular-data-resource", mediatype: str = "text/csv",
                      format: str = "csv", encoding: str = "utf-8") -> ResourceStream:
        """Start the resource ``name`` at ``path`` in the zip; return its stream.

        One resource is written at a time; use the stream as a context manager.

        :raises ValueError: an unsafe, reserved or repeated path, or a repeated name.
        :raises RuntimeError: another resource is open, or the writer is done.
        """
        self._check_usable()
        if self._open is not None:
            raise RuntimeError(f"resource {self._open.path!r} is still open")
        if not isinstance(name, str) or not name or name in self._names:
            raise ValueError(f"resource name {name!r} is empty or already used")
        try:
            check_member_name(path)
        except PackageError as e:
            raise ValueError(str(e)) from e
        if path in RESERVED_NAMES or fold_name(path) in self._paths:
            raise ValueError(f"resource path {path!r} is reserved or already used")
        metadata: dict[str, Any] = {"name": name, "path": path, "profile": profile,
                                    "format": format, "mediatype": mediatype,
                                    "encoding": encoding}
        if schema is not None:
            metadata["schema"] = schema
        # force_zip64: the size is unknown up front and may pass 2 GiB.
        handle = self._zip.open(self._member(path), "w", force_zip64=True)
        stream = ResourceStream(name=name, path=path, metadata=metadata, handle=handle,
                                on_close=self._resource_closed)
        self._names.add(name)
        self._paths.add(fold_name(path))
        self._open = stream
        return stream

    def resource_entries(self) -> list[ResourceEntry]:
        """The resources written so far (path, size, SHA-256), in order.

        With :func:`crypto.package.content_digest` this gives the package's
        content digest before :meth:`finish`, e.g. to log the package as
        served and put that log index into the descriptor.
        """
        return [ResourceEntry(name=r.name, path=r.path, bytes=r.size, sha256=r.sha256)
                for r in self._resources]

    def finish(self, descriptor: Mapping[str, Any]) -> bytes:
        """Write ``datapackage.json`` and its signature, close the zip, return the descriptor bytes.

        ``descriptor`` holds the package-level properties; ``resources`` is
        added here, in the order the resources were written. The returned
        bytes are exactly what was written and signed.

        :raises ValueError: ``descriptor`` already has ``resources``, there are
            none, a resource property overrides one the writer sets, or the
            descriptor is not JSON-serialisable (NaN included); the package
            is then abandoned, unsigned.
        :raises RuntimeError: a resource is still open, one failed, or already finished.
        """
        self._check_usable()
        if self._open is not None:
            raise RuntimeError(f"resource {self._open.path!r} is still open")
        if "resources" in descriptor:
            raise ValueError("the descriptor's resources are added by the writer")
        if not self._resources:
            raise ValueError("a data package needs at least one resource")
        try:
            document = {**descriptor, "resources": [r.entry() for r in self._resources]}
            data = json.dumps(document, indent=2, ensure_ascii=False,
                              allow_nan=False).encode("utf-8")
            resource_entries(json.loads(data))  # what the verifier will demand
            self._zip.writestr(self._member(DESCRIPTOR_NAME), data)
            self._zip.writestr(self._member(SIGNATURE_NAME),
                               sign_descriptor(data, self._key).encode("ascii"))
            self._zip.close()
        except BaseException:
            self._failure = "finish() failed"
            self.abort()
            raise
        self._done = True
        return data

    def abort(self) -> None:
        """Close the zip without descriptor or signature: the package will not verify."""
        if self._done:
            return
        self._done = True
        self._failure = self._failure or "aborted"
        # The sink itself may be what failed (a client went away): the original
        # error is already on its way up, there is nothing more to write.
        with contextlib.suppress(OSError):
            if self._open is not None:
                self._open.abort()
        with contextlib.suppress(OSError):
            self._zip.close()

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"the package cannot be finished: {self._failure}")
        if self._done:
            raise RuntimeError("the package is already finished")

    def _resource_closed(self, stream: ResourceStream, complete: bool) -> None:
        if self._open is stream:
            self._open = None
        if complete:
            self._resources.append(stream)
        elif self._failure is None:
            self._failure = f"resource {stream.path!r} was not completely written"

    def _member(self, path: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=self._date_time)
        info.compress_type = self._compression
        # CPython 3.11 reads the level from this private slot when a ZipInfo is given.
        info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]
        info.create_system = ZIP_CREATE_SYSTEM
        info.external_attr = ZIP_EXTERNAL_ATTR
        return info


def _dos_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    """A zip (DOS) timestamp for ``moment``, in UTC (zip times carry no zone)."""
    if moment.tzinfo is None:
        raise ValueError("modified must be timezone-aware")
    utc = moment.astimezone(UTC)
    if utc.year < 1980:
        raise ValueError("zip timestamps start in 1980")
    return (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
