"""Check a data package offline and name the first thing that fails (``corridor verify``'s core).

The checks, in order, each printed as it passes (DESIGN.md §2 invariant 3, §7):

1. the file is a zip that zipfile reads, every member name is safe, and
   there are no links, directories, duplicates or encrypted members;
2. the zip is in the package profile (:mod:`crypto.package`): no prepended,
   hidden or trailing bytes, local headers that match the central
   directory, and every member's data intact (CRC-32, read to the end);
3. ``datapackage.json`` and ``datapackage.json.jws`` are there, and the
   signature over the exact descriptor bytes is by a trusted key;
4. every resource the descriptor lists is in the zip with the stated size
   and SHA-256;
5. nothing else is in the zip.

Nothing is extracted. The checks read an open, seekable stream they are
handed and open nothing themselves: :func:`corridor.package_reader.verify_package`
opens the file, ``corridor verify`` finds the keys.
"""

from __future__ import annotations

import hashlib
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from crypto.errors import InvalidSignature
from crypto.keys import KeySet
from crypto.package import (
    ARCHIVE_END_MAX,
    DESCRIPTOR_NAME,
    LOCAL_HEADER_SIZE,
    SIGNATURE_NAME,
    Inflater,
    PackageError,
    ZipMember,
    check_member_headers,
    check_member_name,
    data_descriptor,
    fold_name,
    local_header_size,
    parse_archive_end,
    parse_central_directory,
    resource_entries,
    signature_kid,
    verify_descriptor,
)
from crypto.trustlist import TrustList

__all__ = ["VerifyReport", "check_package"]

#: Largest ``datapackage.json`` read into memory, in bytes.
MAX_DESCRIPTOR_BYTES = 16 * 1024 * 1024
#: Largest ``datapackage.json.jws``, in bytes (a detached JWS is a few hundred).
MAX_SIGNATURE_BYTES = 64 * 1024
#: Largest central directory read into memory, in bytes.
MAX_CENTRAL_DIRECTORY_BYTES = 64 * 1024 * 1024
_READ_SIZE = 1 << 20

# What zipfile raises on a damaged archive, beyond BadZipFile.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
               OverflowError, NotImplementedError, RuntimeError, struct.error, zlib.error)


@dataclass
class VerifyReport:
    """What :func:`check_package` found.

    :ivar ok: every check passed.
    :ivar checks: one line per passed check, in order.
    :ivar failure: the first failure, ``"<what>: <why>"``, or None.
    :ivar signer_kid: the key that signed the descriptor, once verified.
    :ivar descriptor: the verified ``datapackage.json``.
    :ivar signer_member: the member holding that key, when checked against a trust list.
    """

    ok: bool = False
    checks: list[str] = field(default_factory=list)
    failure: str | None = None
    signer_kid: str | None = None
    descriptor: dict[str, Any] | None = None
    signer_member: str | None = None


class _Failed(Exception):
    """A check failed; ``str()`` is the line that says which and why."""


@dataclass(frozen=True)
class _Digest:
    size: int
    sha256: str
    content: bytes | None  # kept for the descriptor and its signature only


def check_package(source: BinaryIO, name: str, keys: KeySet | TrustList, *,
                  on_check: Callable[[str], None] | None = None) -> VerifyReport:
    """Verify the package read from ``source`` (seekable; ``name`` labels it in messages)
    with ``keys`` (or any member key of a trust list).

    Never raises for a bad package, nor for a stream that fails to read: the
    report says what failed. ``on_check`` is called with each check's line as
    it passes.
    """
    report = VerifyReport()

    def passed(line: str) -> None:
        report.checks.append(line)
        if on_check is not None:
            on_check(line)

    try:
        _PackageCheck(source, name, keys, report, passed).run()
    except _Failed as e:
        report.failure = str(e)
        return report
    except OSError as e:
        report.failure = f"{name}: cannot read ({e.strerror or e})"
        return report
    report.ok = True
    return report


class _PackageCheck:
    """One run of the checks over an open package file."""

    def __init__(self, fh: BinaryIO, label: str, keys: KeySet | TrustList,
                 report: VerifyReport, passed: Callable[[str], None]) -> None:
        self.fh = fh
        self.label = label
        self.keys = keys
        self.report = report
        self.passed = passed
        self._data_offsets: dict[str, int] = {}
        self._size = 0

    def run(self) -> None:
        names = self.check_members()
        members = self.check_layout(names)
        digests = {m.name: self.digest(m) for m in members}
        self.passed(f"zip structure: {len(members)} members, canonical layout, CRCs intact, "
                    "no unsafe names, links, directories or duplicates")
        descriptor = self.check_signature(digests)
        listed = self.check_resources(descriptor, digests)
        self.check_nothing_extra(listed, digests)

    # 1. what zipfile sees
    def check_members(self) -> list[str]:
        try:
            with zipfile.ZipFile(self.fh) as archive:
                infos = archive.infolist()
        except _ZIP_ERRORS as e:
            raise _Failed(f"{self.label}: not a readable zip archive (truncated or corrupt: "
                          f"{e})") from e
        if not infos:
            raise _Failed(f"{self.label}: the zip archive is empty")
        seen: set[str] = set()
        for info in infos:
            name = info.orig_filename
            try:
                check_member_name(info.orig_filename)
            except PackageError as e:
                raise _Failed(f"{name!r:.80}: {e}") from e
            kind = _member_kind(info)
            if kind is not None:
                raise _Failed(f"{name!r:.80}: {kind}, not a regular file")
            if info.flag_bits & 0x1:
                raise _Failed(f"{name!r:.80}: encrypted")
            if fold_name(name) in seen:
                raise _Failed(f"{name!r:.80}: duplicate member name")
            seen.add(fold_name(name))
        return [info.orig_filename for info in infos]

    # 2. every byte accounted for, in the package profile
    def check_layout(self, names: list[str]) -> list[ZipMember]:
        try:
            members = self._parse_layout()
        except PackageError as e:
            raise _Failed(str(e)) from e
        if [m.name for m in members] != names:
            raise _Failed("zip: the central directory reads differently to different parsers")
        return members

    def _parse_layout(self) -> list[ZipMember]:
        self._size = self.fh.seek(0, 2)
        self.fh.seek(max(0, self._size - ARCHIVE_END_MAX))
        end = parse_archive_end(self.fh.read(), self._size)
        if end.central_size > MAX_CENTRAL_DIRECTORY_BYTES:
            raise PackageError(f"zip: central directory larger than {MAX_CENTRAL_DIRECTORY_BYTES}"
                               " bytes")
        members = parse_central_directory(self._read_at(end.central_offset, end.central_size),
                                          end.count)
        position = 0
        for m in members:
            if m.header_offset != position:
                raise PackageError(f"{m.name!r:.80}: not where the previous member ends "
                                   "(hidden bytes or overlapping members)")
            fixed = self._read_at(position, LOCAL_HEADER_SIZE)
            header = self._read_at(position, local_header_size(m, fixed))
            zip64 = check_member_headers(m, header)
            data_end = position + len(header) + m.compressed_size
            descriptor = data_descriptor(m, zip64)
            if self._read_at(data_end, len(descriptor)) != descriptor:
                raise PackageError(f"{m.name!r:.80}: data descriptor disagrees with the central "
                                   "directory")
            self._data_offsets[m.name] = position + len(header)
            position = data_end + len(descriptor)
        if position != end.central_offset:
            raise PackageError("zip: bytes between the last member and the central directory")
        return members

    def _read_at(self, offset: int, length: int) -> bytes:
        if offset + length > self._size:  # also keeps absurd offsets away from seek()
            raise PackageError("zip: a header points past the end of the file (truncated)")
        self.fh.seek(offset)
        data = self.fh.read(length)
        if len(data) != length:
            raise PackageError("zip: the file ends inside a member (truncated)")
        return data

    def digest(self, m: ZipMember) -> _Digest:
        limit = {DESCRIPTOR_NAME: MAX_DESCRIPTOR_BYTES, SIGNATURE_NAME: MAX_SIGNATURE_BYTES}
        keep = m.name in limit
        if keep and m.size > limit[m.name]:
            raise _Failed(f"{m.name}: {m.size:,} bytes, more than the {limit[m.name]:,} allowed")
        crc, size, sha256 = 0, 0, hashlib.sha256()
        kept = bytearray()
        try:
            for piece in self._member_data(m):
                crc = zlib.crc32(piece, crc)
                size += len(piece)
                if size > m.size:
                    raise _Failed(f"{m.name}: more data than the {m.size:,} bytes declared")
                sha256.update(piece)
                if keep:
                    kept += piece
        except PackageError as e:
            raise _Failed(str(e)) from e
        if size != m.size:
            raise _Failed(f"{m.name}: {size:,} bytes of data, {m.size:,} declared")
        if crc != m.crc:
            raise _Failed(f"{m.name}: CRC-32 mismatch (the data is corrupt)")
        return _Digest(size=size, sha256=sha256.hexdigest(), content=bytes(kept) if keep else None)

    def _member_data(self, m: ZipMember) -> Iterator[bytes]:
        inflater = Inflater(m.name) if m.deflated else None
        self.fh.seek(self._data_offsets[m.name])
        remaining = m.compressed_size
        if inflater is not None and remaining == 0:
            yield from inflater.feed(b"", final=True)
        while remaining:
            chunk = self.fh.read(min(_READ_SIZE, remaining))
            if not chunk:
                raise _Failed(f"{m.name}: the file ends inside its data (truncated)")
            remaining -= len(chunk)
            if inflater is None:
                yield chunk
            else:
                yield from inflater.feed(chunk, final=remaining == 0)

    # 3. the signature
    def check_signature(self, digests: dict[str, _Digest]) -> dict[str, Any]:
        descriptor_bytes = self._content(digests, DESCRIPTOR_NAME, "not a data package")
        jws = self._content(digests, SIGNATURE_NAME, "the package is unsigned")
        keys, owners = self._candidate_keys(jws)
        try:
            verified = verify_descriptor(descriptor_bytes, jws, keys)
        except InvalidSignature as e:
            raise _Failed(f"{SIGNATURE_NAME}: signature invalid ({e.reason})") from e
        self.report.signer_kid = verified.kid
        self.report.signer_member = owners.get(verified.kid)
        self.report.descriptor = verified.descriptor
        signer = owners.get(verified.kid, "key from the given key set")
        self.passed(f"signature: {DESCRIPTOR_NAME} signed by kid {verified.kid} ({signer})")
        return verified.descriptor

    def _content(self, digests: dict[str, _Digest], name: str, meaning: str) -> bytes:
        digest = digests.get(name)
        if digest is None or digest.content is None:
            raise _Failed(f"{name}: missing ({meaning})")
        return digest.content

    def _candidate_keys(self, jws: bytes) -> tuple[KeySet, dict[str, str]]:
        if isinstance(self.keys, KeySet):
            return self.keys, {}
        # A trust list may hold more keys than one KeySet; the (unverified) kid
        # only picks the member whose keys are tried.
        kid = signature_kid(jws)
        for member_id, member in sorted(self.keys.members.items(), key=lambda item: item[0]):
            if kid in member.keys:
                return member.keys, {k: member_id for k in member.keys}
        return KeySet(), {}

    # 4. every resource as listed
    def check_resources(self, descriptor: dict[str, Any],
                        digests: dict[str, _Digest]) -> set[str]:
        try:
            entries = resource_entries(descriptor)
        except PackageError as e:
            raise _Failed(str(e)) from e
        for entry in entries:
            digest = digests.get(entry.path)
            if digest is None:
                raise _Failed(f"{entry.path}: missing (listed in {DESCRIPTOR_NAME})")
            if digest.size != entry.bytes:
                raise _Failed(f"{entry.path}: size mismatch ({digest.size:,} bytes, "
                              f"{entry.bytes:,} listed)")
            if digest.sha256 != entry.sha256:
                raise _Failed(f"{entry.path}: sha256 mismatch")
            self.passed(f"{entry.path}: {entry.bytes:,} bytes, sha256 matches")
        return {entry.path for entry in entries}

    # 5. nothing else
    def check_nothing_extra(self, listed: set[str], digests: dict[str, _Digest]) -> None:
        for name in digests:
            if name not in listed and name not in (DESCRIPTOR_NAME, SIGNATURE_NAME):
                raise _Failed(f"{name}: extra file, not listed in {DESCRIPTOR_NAME}")
        self.passed(f"contents: {len(listed)} resources, {DESCRIPTOR_NAME} and its signature; "
                    "nothing missing or extra")


def _member_kind(info: zipfile.ZipInfo) -> str | None:
    """What a member is if not a regular file: a link, a directory, a device..."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISDIR(mode) or info.external_attr & 0x10 or info.filename.endswith("/"):
        return "directory"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        return "special file"
    return None


# --- the command ----------------------------------------------------------------------
