"""Signed package primitives: descriptor signature, resource list, member names, zip profile."""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile
import zlib
from typing import Any

import pytest

from crypto.errors import SIGNATURE_REJECTED, InvalidSignature
from crypto.jws import sign_compact, sign_detached
from crypto.keys import KeySet, SigningKey
from crypto.package import (
    ARCHIVE_END_MAX,
    DESCRIPTOR_NAME,
    LOCAL_HEADER_SIZE,
    PACKAGE_TYP,
    SIGNATURE_NAME,
    ZIP_CREATE_SYSTEM,
    ZIP_EXTERNAL_ATTR,
    Inflater,
    PackageError,
    ZipMember,
    check_member_headers,
    check_member_name,
    data_descriptor,
    local_header_size,
    parse_archive_end,
    parse_central_directory,
    resource_entries,
    sign_descriptor,
    signature_kid,
    verify_descriptor,
)

SHA = "ab" * 32
DESCRIPTOR = json.dumps({
    "name": "ru-lotl-2024",
    "resources": [{"name": "observations", "path": "observations.csv", "bytes": 12,
                   "hash": f"sha256:{SHA}"}],
}, indent=2).encode()


def reason(excinfo: pytest.ExceptionInfo[InvalidSignature]) -> str:
    return excinfo.value.reason


# --- signature -------------------------------------------------------------------------


def test_signed_descriptor_verifies_and_names_the_key(key: SigningKey, keyset: KeySet) -> None:
    jws = sign_descriptor(DESCRIPTOR, key)
    _, payload, _ = jws.split(".")
    assert payload == ""  # detached: RFC 7515 Appendix F
    verified = verify_descriptor(DESCRIPTOR, jws, keyset)
    assert verified.kid == key.kid
    assert verified.descriptor["name"] == "ru-lotl-2024"
    assert signature_kid(jws) == key.kid
    assert verify_descriptor(DESCRIPTOR, jws.encode(), keyset).kid == key.kid


def test_any_change_to_the_descriptor_bytes_is_refused(key: SigningKey, keyset: KeySet) -> None:
    jws = sign_descriptor(DESCRIPTOR, key)
    # Same JSON value, other bytes: the signature is over bytes, not values.
    reformatted = json.dumps(json.loads(DESCRIPTOR)).encode()
    for other in (DESCRIPTOR + b"\n", DESCRIPTOR.replace(b"12", b"13"), reformatted, b""):
        with pytest.raises(InvalidSignature) as excinfo:
            verify_descriptor(other, jws, keyset)
        assert str(excinfo.value) == SIGNATURE_REJECTED  # opaque to the caller


def test_signature_by_an_unknown_key_is_refused(attacker_key: SigningKey,
                                                keyset: KeySet) -> None:
    with pytest.raises(InvalidSignature) as excinfo:
        verify_descriptor(DESCRIPTOR, sign_descriptor(DESCRIPTOR, attacker_key), keyset)
    assert "unknown kid" in reason(excinfo)


@pytest.mark.parametrize("typ", [None, "JWT", "corridor-trust-list+jwt", "package+jws"])
def test_detached_jws_with_another_typ_is_refused(key: SigningKey, keyset: KeySet,
                                                  typ: str | None) -> None:
    jws = sign_detached(DESCRIPTOR, key, typ=typ)
    with pytest.raises(InvalidSignature) as excinfo:
        verify_descriptor(DESCRIPTOR, jws, keyset)
    assert "typ" in reason(excinfo)


def test_typ_compares_as_a_media_type(key: SigningKey, keyset: KeySet) -> None:
    jws = sign_detached(DESCRIPTOR, key, typ="application/Corridor-Package+JWS")
    assert verify_descriptor(DESCRIPTOR, jws, keyset).kid == key.kid


def test_compact_jws_with_embedded_payload_is_refused(key: SigningKey, keyset: KeySet) -> None:
    compact = sign_compact(DESCRIPTOR, key, typ=PACKAGE_TYP)
    with pytest.raises(InvalidSignature, match=SIGNATURE_REJECTED):
        verify_descriptor(DESCRIPTOR, compact, keyset)


@pytest.mark.parametrize("payload", [
    b"[1, 2]", b'"text"', b"null", b"{not json", b'{"a": 1, "a": 2}', b'{"a": NaN}',
    b"\xff\xfe{}",
])
def test_signed_bytes_that_are_not_a_strict_json_object_are_refused(
        key: SigningKey, keyset: KeySet, payload: bytes) -> None:
    with pytest.raises(InvalidSignature) as excinfo:
        verify_descriptor(payload, sign_descriptor(payload, key), keyset)
    assert "descriptor" in reason(excinfo)


@pytest.mark.parametrize("jws", ["", "...", "not-base64!..sig", "e30..", b"\xff\xff"])
def test_signature_kid_of_garbage_is_none(jws: str | bytes) -> None:
    assert signature_kid(jws) is None


# --- resources -------------------------------------------------------------------------


def resource(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "observations", "path": "observations.csv", "bytes": 12,
                            "hash": f"sha256:{SHA}"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_resource_entries_in_order() -> None:
    entries = resource_entries({"resources": [
        resource(),
        resource(name="media", path="data/media.csv", bytes=0, hash="sha256:" + "0" * 64,
                 schema="https://example/schema.json", rows=3)]})
    assert [(e.name, e.path, e.bytes, e.sha256) for e in entries] == [
        ("observations", "observations.csv", 12, SHA), ("media", "data/media.csv", 0, "0" * 64)]


@pytest.mark.parametrize(("descriptor", "message"), [
    ({}, '"resources" must be a non-empty list'),
    ({"resources": []}, '"resources" must be a non-empty list'),
    ({"resources": {"a": 1}}, '"resources" must be a non-empty list'),
    ({"resources": ["observations.csv"]}, "resource 1 is not an object"),
    ({"resources": [resource(name=None)]}, "resource 1 has no name"),
    ({"resources": [resource(name="")]}, "resource 1 has no name"),
    ({"resources": [resource(path=None, data=[[1]])]}, "inline data"),
    ({"resources": [resource(path=["a.csv", "b.csv"])]}, "multi-part"),
    ({"resources": [resource(path="https://example.org/x.csv")]}, "colon"),
    ({"resources": [resource(path="../observations.csv")]}, "'..' segment"),
    ({"resources": [resource(path="/observations.csv")]}, "absolute path"),
    ({"resources": [resource(path=DESCRIPTOR_NAME)]}, "reserved"),
    ({"resources": [resource(path=SIGNATURE_NAME)]}, "reserved"),
    ({"resources": [resource(bytes=None)]}, '"bytes" must be a non-negative integer'),
    ({"resources": [resource(bytes="12")]}, '"bytes" must be a non-negative integer'),
    ({"resources": [resource(bytes=12.0)]}, '"bytes" must be a non-negative integer'),
    ({"resources": [resource(bytes=True)]}, '"bytes" must be a non-negative integer'),
    ({"resources": [resource(bytes=-1)]}, '"bytes" must be a non-negative integer'),
    ({"resources": [resource(hash=None)]}, '"hash" must be "sha256:"'),
    ({"resources": [resource(hash=SHA)]}, '"hash" must be "sha256:"'),  # bare = MD5 in Frictionless
    ({"resources": [resource(hash="md5:" + "a" * 32)]}, '"hash" must be "sha256:"'),
    ({"resources": [resource(hash="sha256:" + "AB" * 32)]}, '"hash" must be "sha256:"'),
    ({"resources": [resource(hash="sha256:" + "a" * 63)]}, '"hash" must be "sha256:"'),
    ({"resources": [resource(), resource(path="other.csv")]}, "name 'observations' appears twice"),
    ({"resources": [resource(), resource(name="b")]}, "path 'observations.csv' appears twice"),
    ({"resources": [resource(), resource(name="b", path="Observations.CSV")]}, "appears twice"),
])
def test_malformed_resource_lists_are_refused(descriptor: dict[str, Any], message: str) -> None:
    with pytest.raises(PackageError, match=r"^datapackage\.json: ") as excinfo:
        resource_entries(descriptor)
    assert message in str(excinfo.value)


# --- member names ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["observations.csv", "data/media.csv", "a/b/c.d.csv",
                                  "наблюдения.csv", "观测.csv", "file..csv", ".hidden"])
def test_safe_member_names(name: str) -> None:
    check_member_name(name)


@pytest.mark.parametrize(("name", "why"), [
    ("", "empty"),
    ("../evil.csv", "'..' segment"),
    ("data/../../evil.csv", "'..' segment"),
    ("..", "'..' segment"),
    ("/etc/passwd", "absolute path"),
    ("//server/share/x.csv", "absolute path"),
    ("..\\evil.csv", "backslash"),
    ("data\\x.csv", "backslash"),
    ("C:/Windows/evil.csv", "drive letter"),
    ("c:evil.csv", "drive letter"),
    ("observations.csv:hidden", "colon"),
    ("evil\x00.csv", "NUL"),
    ("evil\n.csv", "control or format character"),
    ("evil\x7f.csv", "control or format character"),
    ("report\u202evsc.csv", "control or format character"),  # displays as "reportcsv.csv"
    ("a\u2028b.csv", "control or format character"),
    ("./observations.csv", "'.' segment"),
    ("data/./x.csv", "'.' segment"),
    ("data//x.csv", "empty segment"),
    ("data/", "empty segment"),
])
def test_unsafe_member_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(PackageError, match="empty member name" if not name else "unsafe name") \
            as excinfo:
        check_member_name(name)
    assert why in str(excinfo.value)


# --- zip profile -----------------------------------------------------------------------


def make_zip(members: list[tuple[str, bytes]], *, external_attr: int = ZIP_EXTERNAL_ATTR,
             comment: bytes = b"", compress: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name)
            info.create_system = ZIP_CREATE_SYSTEM
            info.external_attr = external_attr
            info.compress_type = compress
            archive.writestr(info, data)
        archive.comment = comment
    return buffer.getvalue()


def parse(data: bytes) -> list[tuple[ZipMember, bytes]]:
    """Each member with its local header, as crypto.package_check reads them."""
    end = parse_archive_end(data[-ARCHIVE_END_MAX:], len(data))
    members = parse_central_directory(
        data[end.central_offset:end.central_offset + end.central_size], end.count)
    out = []
    for m in members:
        start = m.header_offset
        size = local_header_size(m, data[start:start + LOCAL_HEADER_SIZE])
        out.append((m, data[start:start + size]))
    return out


def test_a_zip_written_like_the_package_writer_parses() -> None:
    data = make_zip([("observations.csv", b"a,b\n1,2\n"), ("наблюдения.csv", b"x")])
    (first, local1), (second, local2) = parse(data)
    assert (first.name, first.size, first.crc) == ("observations.csv", 8, zlib.crc32(b"a,b\n1,2\n"))
    assert second.name == "наблюдения.csv"
    assert check_member_headers(first, local1) is False  # no ZIP64 local header
    assert check_member_headers(second, local2) is False
    assert data_descriptor(first, False) == b""  # written seekably: no descriptor


def test_trailing_bytes_comments_and_truncation_are_refused() -> None:
    data = make_zip([("a.csv", b"1")])
    with pytest.raises(PackageError, match="does not end with an end-of-central-directory"):
        parse_archive_end((data + b"\0")[-ARCHIVE_END_MAX:], len(data) + 1)
    with pytest.raises(PackageError, match="does not end with an end-of-central-directory"):
        parse_archive_end(data[:-1][-ARCHIVE_END_MAX:], len(data) - 1)
    commented = make_zip([("a.csv", b"1")], comment=b"hello")
    with pytest.raises(PackageError, match="end-of-central-directory"):
        parse_archive_end(commented[-ARCHIVE_END_MAX:], len(commented))
    with pytest.raises(PackageError, match="bytes prepended or inserted"):
        parse_archive_end(b"\0" + data[-ARCHIVE_END_MAX:], len(data) + 1)


def test_zip64_end_records_are_read_and_must_be_canonical() -> None:
    count, size, offset = 70_000, 5_000_000, 3 << 30
    tail = (struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size,
                        offset)
            + struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + size, 1)
            # CPython caps each field at its sentinel: the offset (< 4 GiB) stays as it is.
            + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, size, offset, 0))
    file_size = offset + size + len(tail)
    end = parse_archive_end(tail, file_size)
    assert (end.count, end.central_size, end.central_offset) == (count, size, offset)
    bad = bytearray(tail)
    bad[12] = 44  # "version made by" of the ZIP64 end record
    with pytest.raises(PackageError, match="not in canonical form"):
        parse_archive_end(bytes(bad), file_size)


@pytest.mark.parametrize(("offset", "value", "field"), [
    (4, 19, "version made by"),         # zip spec version
    (5, 0, "version made by"),          # host system: MS-DOS instead of Unix
    (34, 1, "disk number"),
    (36, 1, "internal attributes"),     # "text file"
    (40, 0x80, "external attributes"),  # mode 0600 instead of 0644
])
def test_central_fields_outside_the_profile_are_named(offset: int, value: int,
                                                      field: str) -> None:
    data = bytearray(make_zip([("a.csv", b"1,2\n")]))
    cd = parse_archive_end(bytes(data[-ARCHIVE_END_MAX:]), len(data)).central_offset
    data[cd + offset] = value
    ((member, local),) = parse(bytes(data))
    with pytest.raises(PackageError, match=f"not in the package profile \\({field}\\)"):
        check_member_headers(member, local)


def test_other_modes_attributes_and_extra_fields_are_refused() -> None:
    data = make_zip([("a.csv", b"1")], external_attr=(stat.S_IFREG | 0o600) << 16)
    ((member, local),) = parse(data)
    with pytest.raises(PackageError, match="external attributes"):
        check_member_headers(member, local)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("a.csv")
        info.extra = struct.pack("<HH4s", 0x5455, 4, b"abcd")  # an "extended timestamp"
        archive.writestr(info, b"1")
    with pytest.raises(PackageError, match="unexpected extra field"):
        parse(buffer.getvalue())


def test_local_header_must_match_the_central_directory() -> None:
    data = bytearray(make_zip([("a.csv", b"1,2\n")]))
    data[10] ^= 0x01  # local header: modification time
    ((member, local),) = parse(bytes(data))
    with pytest.raises(PackageError, match=r"local header disagrees .* \(time\)"):
        check_member_headers(member, local)


@pytest.mark.parametrize(("flags", "message"), [
    (0x0001, "outside the package profile"),  # encrypted
    (0x0800, "outside the package profile"),  # UTF-8 flag on an ASCII name
    (0x0002, "outside the package profile"),
])
def test_flags_outside_the_profile_are_refused(flags: int, message: str) -> None:
    data = bytearray(make_zip([("a.csv", b"1")]))
    cd = parse_archive_end(bytes(data[-ARCHIVE_END_MAX:]), len(data)).central_offset
    struct.pack_into("<H", data, cd + 8, flags)
    with pytest.raises(PackageError, match=message):
        parse(bytes(data))


def test_non_ascii_name_without_utf8_flag_is_refused() -> None:
    data = bytearray(make_zip([("é.csv", b"1")]))
    cd = parse_archive_end(bytes(data[-ARCHIVE_END_MAX:]), len(data)).central_offset
    struct.pack_into("<H", data, cd + 8, 0)
    with pytest.raises(PackageError, match="not ASCII"):
        parse(bytes(data))


def test_other_compression_methods_are_refused() -> None:
    data = make_zip([("a.csv", b"1" * 100)], compress=zipfile.ZIP_BZIP2)
    with pytest.raises(PackageError, match="compression method 12"):
        parse(data)


# --- deflate ---------------------------------------------------------------------------


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def inflate(data: bytes, *, chunk: int = 7) -> bytes:
    inflater = Inflater("x.csv", piece=5)
    pieces: list[bytes] = []
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
    for index, part in enumerate(chunks):
        pieces.extend(inflater.feed(part, final=index == len(chunks) - 1))
    return b"".join(pieces)


@pytest.mark.parametrize("data", [b"", b"a", b"id,species\n" * 200, bytes(range(256)) * 40])
def test_inflater_round_trips_in_small_pieces(data: bytes) -> None:
    assert inflate(deflate(data)) == data
    assert inflate(deflate(data), chunk=1 << 20) == data


def test_inflater_refuses_bytes_after_the_stream() -> None:
    for junk in (b"\0", b"PK\x03\x04junk"):
        with pytest.raises(PackageError, match=r"does not end with the data|after the end"):
            inflate(deflate(b"a,b\n") + junk)


def test_inflater_refuses_a_stream_that_ends_early_or_is_corrupt() -> None:
    with pytest.raises(PackageError, match="does not end with the data"):
        inflate(deflate(b"id,species\n" * 50)[:-2])
    with pytest.raises(PackageError, match=r"corrupt deflate data|does not end"):
        inflate(b"\xff" * 20)


def test_inflater_refuses_padding_bits_that_zlib_ignores() -> None:
    for n in range(1, 200):
        stream = deflate(b"x" * n)
        last = stream[-1]
        for bit in range(8):
            if last & (1 << bit):
                continue
            variant = stream[:-1] + bytes([last | 1 << bit])
            plain = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                same = plain.decompress(variant) == b"x" * n and plain.eof \
                    and not plain.unused_data
            except zlib.error:
                same = False
            if same:  # zlib reads it as the same data: only the padding differs
                assert inflate(stream) == b"x" * n
                with pytest.raises(PackageError, match="non-zero padding"):
                    inflate(variant)
                return
    pytest.fail("no stream with padding bits found")
