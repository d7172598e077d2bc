"""Signed data packages: the descriptor's signature, its resource list, and the zip profile.

A Corridor data package (DESIGN.md §7) is a zip archive holding the resources
(CSV files), a Frictionless ``datapackage.json`` that gives each resource's
``path``, ``bytes`` and ``hash`` (``sha256:<hex>``), and
``datapackage.json.jws``: a detached JWS (RFC 7515 Appendix F) by the node key
over the exact bytes of ``datapackage.json``. The signature covers the
descriptor, the descriptor's hashes cover the resources.

The zip container is checked as strictly as the JSON and base64 in this
package: it must be laid out exactly as :mod:`corridor.package_writer` writes
it (CPython's :mod:`zipfile`, one fixed set of attributes), with every byte of
the file belonging to a member, a header or the central directory. Zip readers
disagree on archives with prepended or hidden data, local headers that
contradict the central directory, or several end records; a strict profile
leaves no room for a second reading, and a changed byte anywhere in the file
is refused (the property tests flip every byte of a package).

Everything here is pure: bytes in, values out; :mod:`crypto.package_check`
reads a stream it is handed, and :mod:`corridor.package_reader` opens the file.
"""

from __future__ import annotations

import hashlib
import re
import stat
import struct
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from crypto._encoding import b64url_decode, strict_json_loads
from crypto.canonical import canonical_json
from crypto.errors import CryptoError, InvalidSignature
from crypto.jws import sign_detached, verify_detached
from crypto.keys import KeySet, SigningKey

__all__ = [
    "ARCHIVE_END_MAX",
    "DESCRIPTOR_NAME",
    "LOCAL_HEADER_SIZE",
    "PACKAGE_TYP",
    "RESERVED_NAMES",
    "SIGNATURE_NAME",
    "ZIP_CREATE_SYSTEM",
    "ZIP_EXTERNAL_ATTR",
    "ArchiveEnd",
    "Inflater",
    "PackageError",
    "ResourceEntry",
    "VerifiedDescriptor",
    "ZipMember",
    "check_member_headers",
    "check_member_name",
    "content_digest",
    "data_descriptor",
    "fold_name",
    "local_header_size",
    "parse_archive_end",
    "parse_central_directory",
    "resource_entries",
    "sign_descriptor",
    "signature_kid",
    "verify_descriptor",
]

PACKAGE_TYP = "corridor-package+jws"
DESCRIPTOR_NAME = "datapackage.json"
SIGNATURE_NAME = "datapackage.json.jws"
RESERVED_NAMES = frozenset({DESCRIPTOR_NAME, SIGNATURE_NAME})

_HASH = re.compile(r"sha256:([0-9a-f]{64})")
_DRIVE = re.compile(r"[A-Za-z]:")
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # Unicode general categories


class PackageError(CryptoError):
    """A package, its descriptor or its zip container is malformed; ``str()`` says what."""


# --- descriptor and signature ----------------------------------------------------------


@dataclass(frozen=True)
class VerifiedDescriptor:
    """A descriptor whose signature verified.

    :ivar descriptor: the parsed ``datapackage.json``.
    :ivar kid: the key that signed it.
    """

    descriptor: dict[str, Any]
    kid: str


@dataclass(frozen=True)
class ResourceEntry:
    """One resource as the descriptor lists it: what the zip member must hold."""

    name: str
    path: str
    bytes: int
    sha256: str  # lowercase hex


def sign_descriptor(descriptor_bytes: bytes, key: SigningKey) -> str:
    """Sign the exact bytes of ``datapackage.json``; return the detached JWS ``header..sig``."""
    return sign_detached(descriptor_bytes, key, typ=PACKAGE_TYP)


def verify_descriptor(descriptor_bytes: bytes, jws: str | bytes,
                      keys: KeySet) -> VerifiedDescriptor:
    """Verify the detached JWS over ``descriptor_bytes`` and parse the descriptor.

    The JWS must have ``typ`` = :data:`PACKAGE_TYP` and be by one of ``keys``;
    the descriptor must be strict JSON (no duplicate names, no NaN) and an object.

    :raises InvalidSignature: whatever failed (opaque; the cause is in ``reason``).
    """
    verified = verify_detached(jws, descriptor_bytes, keys, expected_typ=PACKAGE_TYP)
    try:
        descriptor = strict_json_loads(descriptor_bytes)
    except ValueError as e:
        raise InvalidSignature(f"signed descriptor is not strict JSON: {e}") from e
    if not isinstance(descriptor, dict):
        raise InvalidSignature("signed descriptor is not a JSON object")
    return VerifiedDescriptor(descriptor=descriptor, kid=verified.kid)


def signature_kid(jws: str | bytes) -> str | None:
    """The ``kid`` a JWS header names, UNVERIFIED: only for choosing which keys to try.

    Returns None when the header cannot be read; verification will say why.
    """
    raw = jws.encode("ascii", "replace") if isinstance(jws, str) else bytes(jws)
    try:
        header = strict_json_loads(b64url_decode(raw.split(b".", 1)[0]))
    except ValueError:
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def resource_entries(descriptor: Mapping[str, Any]) -> list[ResourceEntry]:
    """The resources a descriptor lists (Frictionless Data Resource ``path``/``bytes``/``hash``).

    Each resource must be an object with a ``name``, one safe relative
    ``path`` (no inline data, URL or multi-part path), an integer ``bytes``
    and ``hash`` = ``sha256:`` + 64 lowercase hex digits; names and paths are
    unique (paths also case- and normalization-insensitively, as a filesystem
    may see them).

    :raises PackageError: naming the resource and what is wrong with it.
    """
    resources = descriptor.get("resources")
    if not isinstance(resources, list) or not resources:
        raise PackageError('datapackage.json: "resources" must be a non-empty list')
    entries: list[ResourceEntry] = []
    names: set[str] = set()
    paths: set[str] = set()
    for index, resource in enumerate(resources, 1):
        entry = _resource_entry(index, resource)
        if entry.name in names:
            raise PackageError(f"datapackage.json: resource name {entry.name!r} appears twice")
        if fold_name(entry.path) in paths:
            raise PackageError(f"datapackage.json: resource path {entry.path!r} appears twice")
        names.add(entry.name)
        paths.add(fold_name(entry.path))
        entries.append(entry)
    return entries


def _resource_entry(index: int, resource: Any) -> ResourceEntry:
    if not isinstance(resource, dict):
        raise PackageError(f"datapackage.json: resource {index} is not an object")
    name = resource.get("name")
    if not isinstance(name, str) or not name:
        raise PackageError(f"datapackage.json: resource {index} has no name")
    where = f"datapackage.json: resource {name!r:.80}"
    path = resource.get("path")
    if not isinstance(path, str):
        raise PackageError(f'{where}: "path" must be one relative file path '
                           "(inline data, URLs and multi-part paths are not supported)")
    try:
        check_member_name(path)
    except PackageError as e:
        raise PackageError(f"{where}: {e}") from e
    if path in RESERVED_NAMES:
        raise PackageError(f"{where}: path {path!r} is reserved for the descriptor")
    size = resource.get("bytes")
    if type(size) is not int or size < 0:
        raise PackageError(f'{where}: "bytes" must be a non-negative integer')
    digest = resource.get("hash")
    match = _HASH.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise PackageError(f'{where}: "hash" must be "sha256:" and 64 lowercase hex digits')
    return ResourceEntry(name=name, path=path, bytes=size, sha256=match.group(1))


def content_digest(entries: Iterable[ResourceEntry]) -> str:
    """The package's content digest: hex SHA-256 of its resource list, canonically.

    RFC 8785 canonical JSON of ``[{"path", "sha256", "bytes"}, ...]`` in the
    descriptor's order. The provider logs it when it serves a package (before
    the descriptor exists, so it cannot be the descriptor's digest) and the
    recipient recomputes it from the verified descriptor: equal digests mean
    the same files, byte for byte (DESIGN.md §10).
    """
    return hashlib.sha256(canonical_json(
        [{"path": e.path, "sha256": e.sha256, "bytes": e.bytes} for e in entries])).hexdigest()


def check_member_name(name: str) -> None:
    """Refuse a zip member name that could land outside the extraction directory.

    Accepted: non-empty ``/``-separated relative paths whose segments are
    neither empty, ``.`` nor ``..``, without backslashes, colons (drive
    letters, NTFS streams, URLs), NUL, control or Unicode format characters.

    :raises PackageError: naming the name and the rule it breaks.
    """
    if not isinstance(name, str) or not name:
        raise PackageError("empty member name")
    shown = f"{name!r:.80}"
    if "\x00" in name:
        raise PackageError(f"unsafe name {shown}: contains NUL")
    if any(unicodedata.category(c) in _INVISIBLE for c in name):
        # Controls, and format characters such as U+202E (right-to-left
        # override), which make a name display as another.
        raise PackageError(f"unsafe name {shown}: contains a control or format character")
    if "\\" in name:
        raise PackageError(f"unsafe name {shown}: contains a backslash")
    if name.startswith("/"):
        raise PackageError(f"unsafe name {shown}: absolute path")
    if _DRIVE.match(name):
        raise PackageError(f"unsafe name {shown}: drive letter")
    if ":" in name:
        raise PackageError(f"unsafe name {shown}: contains a colon")
    segments = name.split("/")
    if ".." in segments:
        raise PackageError(f"unsafe name {shown}: '..' segment (path traversal)")
    if "." in segments:
        raise PackageError(f"unsafe name {shown}: '.' segment")
    if "" in segments:
        raise PackageError(f"unsafe name {shown}: empty segment (directory or '//')")


def fold_name(name: str) -> str:
    """The key under which two names would be the same file on a case-insensitive filesystem."""
    return unicodedata.normalize("NFC", name).casefold()


# --- the zip profile --------------------------------------------------------------------
# APPNOTE.TXT (PKWARE .ZIP File Format Specification 6.3.10) §4.3; layouts as
# CPython's zipfile writes them (structFileHeader, structCentralDir, ...).

#: "version made by" host: Unix, so that the mode below is meaningful.
ZIP_CREATE_SYSTEM = 3
#: Every member is a regular file, mode 0644.
ZIP_EXTERNAL_ATTR = (stat.S_IFREG | 0o644) << 16

_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")
_LOCAL_SIG = b"PK\x03\x04"
_CENTRAL_SIG = b"PK\x01\x02"
_END_SIG = b"PK\x05\x06"
_END64_SIG = b"PK\x06\x06"
_LOCATOR64_SIG = b"PK\x06\x07"
_DESCRIPTOR_SIG = b"PK\x07\x08"

LOCAL_HEADER_SIZE = _LOCAL.size
#: How many bytes from the end of the file :func:`parse_archive_end` needs at most.
ARCHIVE_END_MAX = _END.size + _LOCATOR64.size + _END64.size

_ZIP64_LIMIT = (1 << 31) - 1  # zipfile.ZIP64_LIMIT: beyond it, CPython writes ZIP64 fields
_COUNT_LIMIT = 0xFFFF
_SENTINEL32 = 0xFFFFFFFF
_VERSION = 20  # 2.0: deflate
_VERSION64 = 45  # 4.5: ZIP64
_STORED, _DEFLATED = 0, 8
_FLAG_DESCRIPTOR = 0x08  # sizes and CRC follow the data (written to a non-seekable stream)
_FLAG_UTF8 = 0x800  # APPNOTE Appendix D: the name is UTF-8
_ZIP64_EXTRA = 0x0001


@dataclass(frozen=True)
class ArchiveEnd:
    """Where the central directory is, as the end-of-central-directory record(s) say."""

    central_offset: int
    central_size: int
    count: int


@dataclass(frozen=True)
class ZipMember:
    """One member as its central directory record describes it."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    dos_time: int
    dos_date: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    record: bytes  # the record as read, compared with the canonical one

    @property
    def has_descriptor(self) -> bool:
        """Whether CRC and sizes follow the data in a data descriptor."""
        return bool(self.flags & _FLAG_DESCRIPTOR)

    @property
    def deflated(self) -> bool:
        """Whether the data is raw deflate (else stored)."""
        return self.method == _DEFLATED


def _archive_end_bytes(end: ArchiveEnd) -> bytes:
    """The end records CPython writes after a central directory (zipfile._write_end_record)."""
    count, size, offset = end.count, end.central_size, end.central_offset
    records = b""
    if count > _COUNT_LIMIT or offset > _ZIP64_LIMIT or size > _ZIP64_LIMIT:
        records = _END64.pack(_END64_SIG, _END64.size - 12, _VERSION64, _VERSION64, 0, 0,
                              count, count, size, offset)
        records += _LOCATOR64.pack(_LOCATOR64_SIG, 0, offset + size, 1)
        count, size, offset = (min(count, _COUNT_LIMIT), min(size, _SENTINEL32),
                               min(offset, _SENTINEL32))
    return records + _END.pack(_END_SIG, 0, 0, count, count, size, offset, 0)


def parse_archive_end(tail: bytes, file_size: int) -> ArchiveEnd:
    """Read the end records from the last :data:`ARCHIVE_END_MAX` bytes of the file.

    The end-of-central-directory record must close the file (no comment, no
    trailing bytes), and the central directory must end where the end records
    begin.

    :raises PackageError: if any of that does not hold.
    """
    if len(tail) < _END.size or tail[-_END.size:][:4] != _END_SIG:
        raise PackageError("zip: the file does not end with an end-of-central-directory "
                           "record (truncated, or bytes appended)")
    _, _, _, _, count, size, offset, _ = _END.unpack(tail[-_END.size:])
    zip64_end = len(tail) - _END.size - _LOCATOR64.size
    if zip64_end >= _END64.size and tail[zip64_end:zip64_end + 4] == _LOCATOR64_SIG:
        record = tail[zip64_end - _END64.size:zip64_end]
        if record[:4] == _END64_SIG:
            _, _, _, _, _, _, count, _, size, offset = _END64.unpack(record)
    end = ArchiveEnd(central_offset=offset, central_size=size, count=count)
    expected = _archive_end_bytes(end)
    if tail[-len(expected):] != expected:
        raise PackageError("zip: the end-of-central-directory records are not in canonical form")
    if offset + size + len(expected) != file_size:
        raise PackageError("zip: the central directory is not where its end record says "
                           "(bytes prepended or inserted)")
    return end


def parse_central_directory(data: bytes, count: int) -> list[ZipMember]:
    """Parse ``count`` central directory records that must fill ``data`` exactly.

    Only what the profile allows is accepted: stored or deflated members,
    UTF-8 names flagged as such, no encryption, comments or foreign extra
    fields. Whether each record is exactly canonical is checked with its
    local header (:func:`check_member_headers`).

    :raises PackageError: naming the member and the problem.
    """
    members: list[ZipMember] = []
    pos = 0
    for index in range(count):
        fixed = data[pos:pos + _CENTRAL.size]
        if len(fixed) < _CENTRAL.size or fixed[:4] != _CENTRAL_SIG:
            raise PackageError(f"zip: central directory record {index + 1} is damaged")
        fields = _CENTRAL.unpack(fixed)
        name_len, extra_len, comment_len = fields[12:15]
        end = pos + _CENTRAL.size + name_len + extra_len + comment_len
        if end > len(data):
            raise PackageError(f"zip: central directory record {index + 1} is truncated")
        raw_name = data[pos + _CENTRAL.size:pos + _CENTRAL.size + name_len]
        extra = data[pos + _CENTRAL.size + name_len:pos + _CENTRAL.size + name_len + extra_len]
        members.append(_member(fields, raw_name, extra, data[pos:end]))
        pos = end
    if pos != len(data):
        raise PackageError("zip: the central directory holds more than its records")
    return members


def _member(fields: tuple[Any, ...], raw_name: bytes, extra: bytes, record: bytes) -> ZipMember:
    flags, method, dos_time, dos_date, crc, csize, size = fields[5:12]
    offset = fields[18]
    try:
        name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "ascii")
    except UnicodeDecodeError as e:
        raise PackageError(f"zip: member name {raw_name!r:.80} is not "
                           f"{'UTF-8' if flags & _FLAG_UTF8 else 'ASCII (and not flagged UTF-8)'}"
                           ) from e
    where = f"{name!r:.80}"
    if flags & ~(_FLAG_DESCRIPTOR | _FLAG_UTF8) or bool(flags & _FLAG_UTF8) != (not name.isascii()):
        raise PackageError(f"{where}: zip flags {flags:#06x} are outside the package profile "
                           "(encrypted, or written by another tool)")
    if method not in (_STORED, _DEFLATED):
        raise PackageError(f"{where}: compression method {method} (only stored and deflated)")
    # APPNOTE §4.5.3: the ZIP64 extra holds, in this order, exactly the fields set to 0xFFFFFFFF.
    wide = [v == _SENTINEL32 for v in (size, csize, offset)]
    values: tuple[int, ...] = ()
    if extra:
        header_id, length = struct.unpack_from("<HH", extra) if len(extra) >= 4 else (0, -1)
        if header_id != _ZIP64_EXTRA or length != len(extra) - 4 or length != 8 * sum(wide):
            raise PackageError(f"{where}: unexpected extra field in the central directory")
        values = struct.unpack_from(f"<{sum(wide)}Q", extra, 4)
    elif any(wide):
        raise PackageError(f"{where}: ZIP64 sizes are announced but missing")
    it = iter(values)
    size, csize, offset = (next(it) if w else v for w, v in zip(wide, (size, csize, offset),
                                                                 strict=True))
    return ZipMember(name=name, raw_name=raw_name, flags=flags, method=method,
                     dos_time=dos_time, dos_date=dos_date, crc=crc, compressed_size=csize,
                     size=size, header_offset=offset, record=record)


def _central_record(m: ZipMember, local_zip64: bool) -> bytes:
    """The central directory record zipfile._write_end_record writes for ``m``."""
    values: list[int] = []
    size32, csize32, offset32 = m.size, m.compressed_size, m.header_offset
    if m.size > _ZIP64_LIMIT or m.compressed_size > _ZIP64_LIMIT:
        values += [m.size, m.compressed_size]
        size32 = csize32 = _SENTINEL32
    if m.header_offset > _ZIP64_LIMIT:
        values.append(m.header_offset)
        offset32 = _SENTINEL32
    extra = struct.pack(f"<HH{len(values)}Q", _ZIP64_EXTRA, 8 * len(values), *values) \
        if values else b""
    version = _VERSION64 if local_zip64 or values else _VERSION
    return _CENTRAL.pack(_CENTRAL_SIG, version, ZIP_CREATE_SYSTEM, version, 0, m.flags,
                         m.method, m.dos_time, m.dos_date, m.crc, csize32, size32,
                         len(m.raw_name), len(extra), 0, 0, 0, ZIP_EXTERNAL_ATTR,
                         offset32) + m.raw_name + extra


def _local_header(m: ZipMember, zip64: bool) -> bytes:
    """The local header ZipInfo.FileHeader writes for ``m`` (CRC and sizes final)."""
    crc, csize, size = (0, 0, 0) if m.has_descriptor else (m.crc, m.compressed_size, m.size)
    if zip64:
        extra = struct.pack("<HHQQ", _ZIP64_EXTRA, 16, size, csize)
        size32 = csize32 = _SENTINEL32
    else:
        if max(csize, size) > _ZIP64_LIMIT:
            raise PackageError(f"{m.name!r:.80}: large member without ZIP64 local header")
        extra, size32, csize32 = b"", size, csize
    return _LOCAL.pack(_LOCAL_SIG, _VERSION64 if zip64 else _VERSION, 0, m.flags, m.method,
                       m.dos_time, m.dos_date, crc, csize32, size32, len(m.raw_name),
                       len(extra)) + m.raw_name + extra


def local_header_size(m: ZipMember, fixed: bytes) -> int:
    """The full size of ``m``'s local header, from its first :data:`LOCAL_HEADER_SIZE` bytes.

    :raises PackageError: if there is no local header there.
    """
    if len(fixed) < _LOCAL.size or fixed[:4] != _LOCAL_SIG:
        raise PackageError(f"{m.name!r:.80}: no local header where the central directory "
                           "points (hidden or missing bytes)")
    name_len, extra_len = _LOCAL.unpack(fixed)[-2:]
    return int(_LOCAL.size + name_len + extra_len)


def check_member_headers(m: ZipMember, local: bytes) -> bool:
    """Check ``m``'s local header and central record against their canonical bytes.

    The one free choice, a ZIP64 extra in the local header, is read from
    ``local``; every other field must be what the central record says, and
    the central record what the profile prescribes.

    :returns: whether the local header carries ZIP64 sizes (the data
        descriptor is then 24 bytes instead of 16).
    :raises PackageError: naming the member and the first field that differs.
    """
    zip64 = len(local) >= _LOCAL.size and _LOCAL.unpack(local[:_LOCAL.size])[-1] == 20
    expected = _local_header(m, zip64)
    if local != expected:
        raise PackageError(f"{m.name!r:.80}: local header disagrees with the central directory "
                           f"({_first_difference(_LOCAL, local, expected)})")
    canonical = _central_record(m, zip64)
    if m.record != canonical:
        raise PackageError(f"{m.name!r:.80}: central directory record is not in the package "
                           f"profile ({_first_difference(_CENTRAL, m.record, canonical)})")
    return zip64


_LOCAL_FIELDS = ("signature", "version needed", "version needed", "flags", "method", "time",
                 "date", "crc-32", "compressed size", "size", "name length", "extra length")
_CENTRAL_FIELDS = ("signature", "version made by", "version made by", "version needed",
                   "version needed", "flags", "method", "time", "date", "crc-32",
                   "compressed size", "size", "name length", "extra length", "comment length",
                   "disk number", "internal attributes", "external attributes",
                   "local header offset")


def _first_difference(layout: struct.Struct, actual: bytes, expected: bytes) -> str:
    names = _LOCAL_FIELDS if layout is _LOCAL else _CENTRAL_FIELDS
    if len(actual) >= layout.size:
        for name, a, b in zip(names, layout.unpack(actual[:layout.size]),
                              layout.unpack(expected[:layout.size]), strict=True):
            if a != b:
                return name
    return "name or extra field"


def data_descriptor(m: ZipMember, zip64: bool) -> bytes:
    """The data descriptor that must follow ``m``'s data (empty if it has none)."""
    if not m.has_descriptor:
        return b""
    layout = "<4sLQQ" if zip64 else "<4sLLL"
    return struct.pack(layout, _DESCRIPTOR_SIG, m.crc, m.compressed_size, m.size)


class Inflater:
    """Raw deflate (RFC 1951) decompression that accepts one spelling of the data.

    Besides decompressing, it refuses bytes after the end of the deflate
    stream and non-zero padding bits in its last byte: neither changes the
    decompressed data, so the CRC would not catch them. (Alignment bits inside
    stored blocks are not checked; zlib does not expose them.) Output comes in
    pieces of at most ``piece`` bytes, so a small input cannot allocate much.
    """

    def __init__(self, name: str, *, piece: int = 1 << 20) -> None:
        """Start inflating the member called ``name`` (for messages)."""
        self._name = f"{name!r:.80}"
        self._piece = piece
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)

    def feed(self, data: bytes, *, final: bool) -> Iterator[bytes]:
        """Inflate the next compressed bytes; ``final`` for the last of them.

        :raises PackageError: if the stream is corrupt, ends early or late,
            or has non-zero padding.
        """
        try:
            if not final:
                yield from self._drain(self._inflate, data)
                return
            yield from self._drain(self._inflate, data[:-1])
            before = self._inflate.copy()
            last = data[-1:]
            tail = b"".join(self._drain(self._inflate, last)) + self._inflate.flush()
        except zlib.error as e:
            raise PackageError(f"{self._name}: corrupt deflate data ({e})") from e
        if not self._inflate.eof or self._inflate.unused_data or not last:
            raise PackageError(f"{self._name}: the deflate stream does not end with the data")
        self._check_padding(before, last[0], tail)
        yield tail

    def _drain(self, inflate: Any, data: bytes) -> Iterator[bytes]:
        while data:
            if inflate.eof:
                raise PackageError(f"{self._name}: bytes after the end of the deflate stream")
            piece = inflate.decompress(data, self._piece)
            if piece:
                yield piece
            data = inflate.unconsumed_tail

    def _check_padding(self, before: Any, last: int, tail: bytes) -> None:
        # The decoder reads the last byte from bit 0 up; what it never reads is
        # padding. The fewest low bits that decode to the same end are the ones
        # used; any set bit above them is padding that must be zero.
        for used in range(8):
            masked = last & ((1 << used) - 1)
            if masked == last:
                return
            trial = before.copy()
            try:
                out = trial.decompress(bytes([masked])) + trial.flush()
            except zlib.error:
                continue
            if trial.eof and not trial.unused_data and out == tail:
                raise PackageError(f"{self._name}: non-zero padding after the deflate stream")
