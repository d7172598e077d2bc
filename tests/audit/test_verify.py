"""Signed data packages end to end: PackageWriter writes real zips, ``corridor verify`` checks them.

Every way a package can be damaged or forged must fail and say why, naming
the first thing that is wrong; a good package passes whether it was written
to a file or to a pipe.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tempfile
import threading
import tracemalloc
import warnings
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.verify_cli import verify
from corridor.package_reader import verify_package
from corridor.package_writer import PackageWriter
from crypto.jws import sign_detached
from crypto.keys import KeySet, SigningKey
from crypto.package import (
    DESCRIPTOR_NAME,
    SIGNATURE_NAME,
    ZIP_CREATE_SYSTEM,
    ZIP_EXTERNAL_ATTR,
    sign_descriptor,
)
from crypto.package_check import VerifyReport, check_package
from crypto.trustlist import ANCHOR_TYP, MemberEntry, TrustList, load_trusted, sign_trust_list

KEY = SigningKey.generate()
ATTACKER = SigningKey.generate()
REGISTRY = SigningKey.generate()
KEYS = KeySet([KEY.public_key])
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

OBSERVATIONS = (b"observationID,deploymentID,scientificName,count\n"
                + b"".join(b"obs-%04d,dep-%d,Panthera tigris altaica,%d\n" % (i, i % 3, i % 4 + 1)
                           for i in range(200)))
DEPLOYMENTS = b"deploymentID,latitude,longitude\ndep-0,43.1,131.4\ndep-1,43.2,131.5\n"


class NonSeekable(io.RawIOBase):
    """A write-only sink without tell() or seek(), like a socket or an HTTP response body."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += b
        return len(memoryview(b).cast("B"))


def write_package(out: Any, *, key: SigningKey = KEY, compress: bool = False,
                  observations: bytes = OBSERVATIONS, name: str = "ru-lotl-tigers") -> bytes:
    """A two-resource Camtrap-DP-like package; returns the descriptor bytes."""
    with PackageWriter(out, key=key, compress=compress) as package:
        with package.open_resource("deployments", "deployments.csv",
                                   schema="https://example.org/deployments-table-schema.json"
                                   ) as raw:
            raw.write(DEPLOYMENTS)
        with package.open_resource("observations", "observations.csv") as raw:
            with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                text.write(observations.decode())
            raw.properties["rows"] = observations.count(b"\n") - 1
        return package.finish({"name": name, "profile": "tabular-data-package",
                               "created": "2026-11-22T12:00:00Z"})


def package_bytes(**kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    write_package(buffer, **kwargs)
    return buffer.getvalue()


VALID = package_bytes()


def members_of(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def zip_of(members: list[tuple[str, bytes]], *, attrs: dict[str, int] | None = None) -> bytes:
    """A zip in the package profile (as a careful forger would make it) with these members."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns on duplicate names
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in members:
                info = zipfile.ZipInfo(name)
                info.create_system = ZIP_CREATE_SYSTEM
                info.external_attr = (attrs or {}).get(name, ZIP_EXTERNAL_ATTR)
                archive.writestr(info, data)
    return buffer.getvalue()


def replace(data: bytes, name: str, content: bytes) -> bytes:
    return zip_of([(n, content if n == name else c) for n, c in members_of(data)])


def check(tmp_path: Path, data: bytes, keys: KeySet | TrustList = KEYS) -> VerifyReport:
    path = tmp_path / "package.zip"
    path.write_bytes(data)
    return verify_package(path, keys)


def failure(tmp_path: Path, data: bytes, keys: KeySet | TrustList = KEYS) -> str:
    report = check(tmp_path, data, keys)
    assert not report.ok and report.failure is not None, report.checks
    assert "\n" not in report.failure
    return report.failure


# --- good packages ---------------------------------------------------------------------


def test_valid_package_passes_every_check_in_order(tmp_path: Path) -> None:
    report = check(tmp_path, VALID)
    assert report.ok and report.failure is None
    assert report.signer_kid == KEY.kid
    assert report.checks == [
        "zip structure: 4 members, canonical layout, CRCs intact, no unsafe names, links, "
        "directories or duplicates",
        f"signature: datapackage.json signed by kid {KEY.kid} (key from the given key set)",
        f"deployments.csv: {len(DEPLOYMENTS)} bytes, sha256 matches",
        f"observations.csv: {len(OBSERVATIONS):,} bytes, sha256 matches",
        "contents: 2 resources, datapackage.json and its signature; nothing missing or extra",
    ]
    assert report.descriptor is not None
    observations = report.descriptor["resources"][1]
    assert observations["rows"] == 200 and observations["bytes"] == len(OBSERVATIONS)
    assert report.descriptor["resources"][0]["schema"].endswith("deployments-table-schema.json")


def test_the_checks_read_a_stream_they_are_handed_and_open_nothing(tmp_path: Path) -> None:
    data = VALID
    in_memory = check_package(io.BytesIO(data), "in-memory.zip", KEYS)
    on_disk = check(tmp_path, data)
    assert in_memory.ok and on_disk.ok and in_memory.checks == on_disk.checks
    damaged = check_package(io.BytesIO(data[:-40]), "in-memory.zip", KEYS)
    assert not damaged.ok and damaged.failure.startswith("in-memory.zip")  # type: ignore[union-attr]


def test_an_unreadable_file_is_a_failure_not_an_exception(tmp_path: Path) -> None:
    report = verify_package(tmp_path / "missing.zip", KEYS)
    assert not report.ok
    assert report.failure == "missing.zip: cannot read (No such file or directory)"


def test_descriptor_is_written_and_signed_as_returned(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    descriptor = write_package(buffer)
    members = dict(members_of(buffer.getvalue()))
    assert members[DESCRIPTOR_NAME] == descriptor
    assert list(members) == ["deployments.csv", "observations.csv", DESCRIPTOR_NAME,
                             SIGNATURE_NAME]
    document = json.loads(descriptor)
    assert list(document) == ["name", "profile", "created", "resources"]
    assert document["resources"][0] == {
        "name": "deployments", "path": "deployments.csv", "profile": "tabular-data-resource",
        "format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
        "schema": "https://example.org/deployments-table-schema.json",
        "bytes": len(DEPLOYMENTS),
        "hash": "sha256:" + hashlib.sha256(DEPLOYMENTS).hexdigest(),
    }
    assert descriptor == json.dumps(document, indent=2, ensure_ascii=False).encode()


def test_same_content_makes_the_same_bytes() -> None:
    assert package_bytes() == VALID  # Ed25519 is deterministic; timestamps fixed


def test_compressed_package_passes_and_is_smaller(tmp_path: Path) -> None:
    data = package_bytes(compress=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    assert len(data) < len(VALID)
    assert check(tmp_path, data).ok


@pytest.mark.parametrize("compress", [False, True])
def test_package_written_to_a_non_seekable_stream_passes(tmp_path: Path, compress: bool) -> None:
    sink = NonSeekable()
    write_package(sink, compress=compress)
    with zipfile.ZipFile(io.BytesIO(bytes(sink.data))) as archive:
        assert all(i.flag_bits & 0x08 for i in archive.infolist())  # data descriptors
    assert check(tmp_path, bytes(sink.data)).ok


def test_package_written_into_a_pipe_passes(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    received = bytearray()

    def drain() -> None:
        with open(read_fd, "rb") as pipe:
            while chunk := pipe.read(65536):
                received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with open(write_fd, "wb") as pipe:  # a BufferedWriter whose tell() fails
        write_package(pipe, observations=OBSERVATIONS * 50)
    reader.join(timeout=30)
    assert check(tmp_path, bytes(received)).ok


def test_modified_timestamp_is_used(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with PackageWriter(buffer, key=KEY, modified=datetime(2026, 11, 22, 23, 30,
                                                            tzinfo=UTC) + timedelta(hours=10)
                       ) as package:
        with package.open_resource("r", "r.csv") as raw:
            raw.write(b"a\n")
        package.finish({"name": "x"})
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        assert archive.infolist()[0].date_time == (2026, 11, 23, 9, 30, 0)
    assert check(tmp_path, buffer.getvalue()).ok


# --- damaged or forged packages --------------------------------------------------------


def test_flipped_byte_in_a_csv_fails(tmp_path: Path) -> None:
    data = bytearray(VALID)
    data[VALID.index(b"obs-0100") + 4] ^= 0x01
    assert failure(tmp_path, bytes(data)) == (
        "observations.csv: CRC-32 mismatch (the data is corrupt)")


def test_edited_csv_with_a_correct_crc_fails_on_its_hash(tmp_path: Path) -> None:
    edited = replace(VALID, "observations.csv", OBSERVATIONS.replace(b"obs-0100", b"obs-0101"))
    assert failure(tmp_path, edited) == "observations.csv: sha256 mismatch"
    shorter = replace(VALID, "observations.csv", OBSERVATIONS[:-10])
    assert failure(tmp_path, shorter) == (
        f"observations.csv: size mismatch ({len(OBSERVATIONS) - 10:,} bytes, "
        f"{len(OBSERVATIONS):,} listed)")


def test_flipped_byte_in_the_descriptor_fails(tmp_path: Path) -> None:
    data = bytearray(VALID)
    data[VALID.index(b'"tabular-data-package"') + 3] ^= 0x20
    assert failure(tmp_path, bytes(data)) == (
        "datapackage.json: CRC-32 mismatch (the data is corrupt)")
    descriptor = dict(members_of(VALID))[DESCRIPTOR_NAME]
    edited = replace(VALID, DESCRIPTOR_NAME, descriptor.replace(b"ru-lotl", b"ru-LOTL"))
    assert failure(tmp_path, edited).startswith(
        "datapackage.json.jws: signature invalid (joserfc rejected the JWS")


def test_swapped_descriptor_from_another_package_by_the_same_key_fails(tmp_path: Path) -> None:
    # Same key, same layout, other observations of the same length: the
    # signature is valid, the hashes are not.
    other = package_bytes(observations=OBSERVATIONS.replace(b"altaica", b"ALTAICA"),
                          name="ru-lotl-other")
    swapped = dict(members_of(VALID))
    other_members = dict(members_of(other))
    swapped[DESCRIPTOR_NAME] = other_members[DESCRIPTOR_NAME]
    swapped[SIGNATURE_NAME] = other_members[SIGNATURE_NAME]
    assert failure(tmp_path, zip_of(list(swapped.items()))) == "observations.csv: sha256 mismatch"
    # The descriptor alone, under the original signature: the signature fails first.
    swapped[SIGNATURE_NAME] = dict(members_of(VALID))[SIGNATURE_NAME]
    assert failure(tmp_path, zip_of(list(swapped.items()))).startswith(
        "datapackage.json.jws: signature invalid")


def test_missing_resource_fails(tmp_path: Path) -> None:
    members = [(n, c) for n, c in members_of(VALID) if n != "observations.csv"]
    assert failure(tmp_path, zip_of(members)) == (
        "observations.csv: missing (listed in datapackage.json)")


def test_missing_descriptor_or_signature_fails(tmp_path: Path) -> None:
    unsigned = [(n, c) for n, c in members_of(VALID) if n != SIGNATURE_NAME]
    assert failure(tmp_path, zip_of(unsigned)) == (
        "datapackage.json.jws: missing (the package is unsigned)")
    bare = [(n, c) for n, c in members_of(VALID) if n != DESCRIPTOR_NAME]
    assert failure(tmp_path, zip_of(bare)) == "datapackage.json: missing (not a data package)"


@pytest.mark.parametrize("name", ["extra.csv", "data/notes.txt", "Observations.csv.bak"])
def test_extra_file_fails(tmp_path: Path, name: str) -> None:
    members = [*members_of(VALID), (name, b"smuggled\n")]
    assert failure(tmp_path, zip_of(members)) == (
        f"{name}: extra file, not listed in datapackage.json")


@pytest.mark.parametrize(("name", "why"), [
    ("../evil.csv", "'..' segment (path traversal)"),
    ("data/../../evil.csv", "'..' segment (path traversal)"),
    ("/etc/cron.d/evil", "absolute path"),
    ("..\\evil.csv", "backslash"),
    ("C:/Users/evil.csv", "drive letter"),
    ("./observations.csv", "'.' segment"),
    ("evil\x00.csv", "contains NUL"),
])
def test_unsafe_member_names_fail(tmp_path: Path, name: str, why: str) -> None:
    # zipfile cuts names at NUL when writing; put the NUL in afterwards, in both headers.
    members = [*members_of(VALID), (name.replace("\x00", "~"), b"x")]
    data = zip_of(members).replace(b"evil~.csv", b"evil\x00.csv")
    message = failure(tmp_path, data)
    assert message.startswith(f"{name!r}: unsafe name") and message.endswith(why), message


def test_symlink_member_fails(tmp_path: Path) -> None:
    members = [*members_of(VALID), ("link.csv", b"/etc/passwd")]
    data = zip_of(members, attrs={"link.csv": (stat.S_IFLNK | 0o777) << 16})
    assert failure(tmp_path, data) == "'link.csv': symbolic link, not a regular file"


def test_directory_members_fail(tmp_path: Path) -> None:
    as_mode = zip_of([*members_of(VALID), ("data", b"")],
                     attrs={"data": (stat.S_IFDIR | 0o755) << 16})
    assert failure(tmp_path, as_mode) == "'data': directory, not a regular file"
    as_name = zip_of([*members_of(VALID), ("data/", b"")])
    assert failure(tmp_path, as_name).startswith("'data/': unsafe name")


def test_duplicate_member_names_fail(tmp_path: Path) -> None:
    members = members_of(VALID)
    evil = ("observations.csv", OBSERVATIONS.replace(b"altaica", b"ALTAICA"))
    assert failure(tmp_path, zip_of([*members, evil])) == (
        "'observations.csv': duplicate member name")
    # Different in case only: the same file on Windows and macOS.
    folded = ("OBSERVATIONS.csv", evil[1])
    assert failure(tmp_path, zip_of([*members, folded])) == (
        "'OBSERVATIONS.csv': duplicate member name")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_package_fails(tmp_path: Path, keep: float) -> None:
    message = failure(tmp_path, VALID[:int(len(VALID) * keep)])
    assert message.startswith("package.zip: not a readable zip archive (truncated or corrupt")


def test_package_cut_just_before_its_end_fails(tmp_path: Path) -> None:
    assert "not a readable zip archive" in failure(tmp_path, VALID[:-1])


@pytest.mark.parametrize("content", [b"", b"datapackage.json\n", b"PK\x03\x04", b"\0" * 100])
def test_empty_or_non_zip_file_fails(tmp_path: Path, content: bytes) -> None:
    assert failure(tmp_path, content).startswith("package.zip: not a readable zip archive")


def test_hidden_bytes_fail(tmp_path: Path) -> None:
    # zipfile reads a zip with bytes in front (self-extractor style); other tools may see
    # different members, so the package profile refuses it.
    prepended = failure(tmp_path, b"MZ" + b"\0" * 62 + VALID)
    assert prepended == ("zip: the central directory is not where its end record says "
                         "(bytes prepended or inserted)")
    appended = failure(tmp_path, VALID + b"\0" * 30)
    assert "not a readable zip archive" in appended or "end-of-central-directory" in appended


def test_zip_not_in_the_package_profile_fails(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members_of(VALID):
            archive.writestr(name, content)  # zipfile's defaults: mode 0600, MS-DOS time...
    message = failure(tmp_path, buffer.getvalue())
    assert message.startswith("'deployments.csv': central directory record is not in the "
                              "package profile")


def test_zip_comment_fails(tmp_path: Path) -> None:
    buffer = io.BytesIO(VALID)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.comment = b"looks harmless"
    assert "end-of-central-directory" in failure(tmp_path, buffer.getvalue())


def test_signature_by_an_unknown_key_fails(tmp_path: Path) -> None:
    message = failure(tmp_path, package_bytes(key=ATTACKER))
    assert message == ("datapackage.json.jws: signature invalid "
                       f"(unknown kid {ATTACKER.kid!r})")


def test_signature_over_other_bytes_fails(tmp_path: Path) -> None:
    other = sign_descriptor(b'{"name": "something else"}', KEY).encode()
    message = failure(tmp_path, replace(VALID, SIGNATURE_NAME, other))
    assert message.startswith("datapackage.json.jws: signature invalid (joserfc rejected")


def test_signature_with_the_wrong_typ_fails(tmp_path: Path) -> None:
    descriptor = dict(members_of(VALID))[DESCRIPTOR_NAME]
    for typ in ("JWT", "corridor-trust-list+jwt"):
        jws = sign_detached(descriptor, KEY, typ=typ).encode()
        message = failure(tmp_path, replace(VALID, SIGNATURE_NAME, jws))
        assert message == ("datapackage.json.jws: signature invalid "
                           f"(typ {typ!r} does not match 'corridor-package+jws')")


def test_signature_file_that_is_not_a_jws_fails(tmp_path: Path) -> None:
    for junk in (b"", b"not a jws", b"a.b.c.d", b"\xff" * 10):
        message = failure(tmp_path, replace(VALID, SIGNATURE_NAME, junk))
        assert message.startswith("datapackage.json.jws: signature invalid")


def test_signed_but_malformed_descriptor_fails_naming_the_resource(tmp_path: Path) -> None:
    descriptor = json.loads(dict(members_of(VALID))[DESCRIPTOR_NAME])
    descriptor["resources"][1]["path"] = "../observations.csv"
    data = json.dumps(descriptor).encode()
    forged = replace(replace(VALID, DESCRIPTOR_NAME, data), SIGNATURE_NAME,
                     sign_descriptor(data, KEY).encode())
    assert failure(tmp_path, forged) == (
        "datapackage.json: resource 'observations': unsafe name '../observations.csv': "
        "'..' segment (path traversal)")


def test_zip_bomb_member_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with PackageWriter(buffer, key=KEY, compress=True) as package:
        with package.open_resource("zeros", "zeros.csv") as raw:
            for _ in range(64):
                raw.write(bytes(1 << 20))
        package.finish({"name": "bomb"})
    assert len(buffer.getvalue()) < 400_000  # 64 MiB of data
    tracemalloc.start()
    try:
        assert check(tmp_path, buffer.getvalue()).ok
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


# --- the writer's own refusals ---------------------------------------------------------


def test_exception_inside_a_resource_leaves_a_package_that_never_verifies(
        tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with pytest.raises(ZeroDivisionError), PackageWriter(buffer, key=KEY) as package, \
            package.open_resource("observations", "observations.csv") as raw:
        raw.write(OBSERVATIONS[:100])
        raise ZeroDivisionError
    names = [name for name, _ in members_of(buffer.getvalue())]
    assert names == ["observations.csv"]  # no descriptor, no signature
    assert failure(tmp_path, buffer.getvalue()) == (
        "datapackage.json: missing (not a data package)")


def test_caught_resource_failure_still_blocks_finish() -> None:
    package = PackageWriter(io.BytesIO(), key=KEY)
    with pytest.raises(ValueError, match="boom"), package.open_resource("a", "a.csv"):
        raise ValueError("boom")
    with pytest.raises(RuntimeError, match=r"'a\.csv' was not completely written"):
        package.finish({"name": "x"})
    with pytest.raises(RuntimeError, match="cannot be finished"):
        package.open_resource("b", "b.csv")
    package.abort()


def test_leaving_the_writer_without_finish_is_an_error(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with pytest.raises(RuntimeError, match="without finish"), \
            PackageWriter(buffer, key=KEY) as package, package.open_resource("a", "a.csv") as raw:
        raw.write(b"1\n")
    assert "missing" in failure(tmp_path, buffer.getvalue())


@pytest.mark.parametrize(("name", "path", "message"), [
    ("x", "../x.csv", "unsafe name"),
    ("x", "/x.csv", "absolute path"),
    ("x", DESCRIPTOR_NAME, "reserved"),
    ("x", SIGNATURE_NAME, "reserved"),
    ("a", "other.csv", "resource name 'a'"),
    ("x", "a.csv", "already used"),
    ("x", "A.CSV", "already used"),
    ("", "x.csv", "empty"),
])
def test_open_resource_refuses_bad_names_and_paths(name: str, path: str, message: str) -> None:
    package = PackageWriter(io.BytesIO(), key=KEY)
    with package.open_resource("a", "a.csv") as raw:
        raw.write(b"1\n")
    with pytest.raises(ValueError, match=message):
        package.open_resource(name, path)
    package.abort()


def test_one_resource_at_a_time_and_finish_only_when_all_are_closed() -> None:
    package = PackageWriter(io.BytesIO(), key=KEY)
    with pytest.raises(ValueError, match="at least one resource"):
        package.finish({"name": "x"})
    raw = package.open_resource("a", "a.csv")
    with pytest.raises(RuntimeError, match=r"'a\.csv' is still open"):
        package.open_resource("b", "b.csv")
    with pytest.raises(RuntimeError, match=r"'a\.csv' is still open"):
        package.finish({"name": "x"})
    raw.close()
    with pytest.raises(ValueError, match="resources are added by the writer"):
        package.finish({"name": "x", "resources": []})
    package.finish({"name": "x"})
    with pytest.raises(RuntimeError, match="already finished"):
        package.finish({"name": "x"})


@pytest.mark.parametrize("key", ["hash", "bytes", "path", "name"])
def test_properties_cannot_override_what_the_writer_computes(key: str) -> None:
    package = PackageWriter(io.BytesIO(), key=KEY)
    with package.open_resource("a", "a.csv") as raw:
        raw.write(b"1\n")
        raw.properties[key] = "forged"
    with pytest.raises(ValueError, match=f"property '{key}' is set by the writer"):
        package.finish({"name": "x"})
    with pytest.raises(RuntimeError, match="finish\\(\\) failed"):
        package.finish({"name": "x"})


def test_nan_in_the_descriptor_is_refused() -> None:
    package = PackageWriter(io.BytesIO(), key=KEY)
    with package.open_resource("a", "a.csv") as raw:
        raw.write(b"1\n")
    with pytest.raises(ValueError, match="JSON compliant"):
        package.finish({"name": "x", "coordinatePrecision": float("nan")})


def test_stream_reports_size_and_hash_only_when_complete() -> None:
    package = PackageWriter(io.BytesIO(), key=KEY)
    raw = package.open_resource("a", "a.csv")
    raw.write(memoryview(b"abc"))
    raw.write(bytearray(b"def"))
    assert raw.size == 6 and raw.writable() and not raw.seekable()
    with pytest.raises(ValueError, match="only once it is closed"):
        _ = raw.sha256
    raw.close()
    assert raw.sha256 == hashlib.sha256(b"abcdef").hexdigest()
    with pytest.raises(ValueError, match="closed"):
        raw.write(b"more")
    package.abort()


def test_writing_200_mb_keeps_memory_flat() -> None:
    """The export budget (DESIGN.md §12): memory flat in the data size."""
    chunk = bytes(range(256)) * 256  # 64 KiB
    sink = _CountingSink()
    tracemalloc.start()
    try:
        with PackageWriter(sink, key=KEY) as package:
            with package.open_resource("big", "big.csv") as raw:
                for _ in range(200 * 16):  # 200 MiB in 64 KiB writes
                    raw.write(chunk)
            with package.open_resource("rows", "rows.csv") as raw, \
                    io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                for i in range(100_000):
                    text.write(f"obs-{i},Panthera pardus orientalis,1\n")
            descriptor = package.finish({"name": "big"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size > 200 * 1024 * 1024
    assert json.loads(descriptor)["resources"][0]["bytes"] == 200 * 1024 * 1024
    print(f"peak traced memory writing {sink.size / 2**20:.0f} MiB: {peak / 2**20:.2f} MiB")
    assert peak < 20 * 1024 * 1024


class _CountingSink(io.RawIOBase):
    """A non-seekable sink that keeps nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        n = len(memoryview(b).cast("B"))
        self.size += n
        return n


# --- the command -----------------------------------------------------------------------


@click.group()
def cli() -> None:
    """A local root, as deploy.cli adds the command."""


cli.add_command(verify)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["verify", *map(str, args)], catch_exceptions=False)


@pytest.fixture
def package_file(tmp_path: Path) -> Path:
    path = tmp_path / "ru-lotl-tigers.zip"
    path.write_bytes(VALID)
    return path


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(KEYS.to_jwks()))
    return path


def members(*entries: tuple[str, SigningKey]) -> list[MemberEntry]:
    return [MemberEntry(member_id, member_id, member_id[:2].upper(), f"https://{member_id}.example",
                        KeySet([k.public_key])) for member_id, k in entries]


def trust_list_jws(entries: list[MemberEntry], *, key: SigningKey = REGISTRY) -> str:
    return sign_trust_list(version=3, issued_at=NOW, expires_at=NOW + timedelta(days=7),
                           registry_url="https://registry.example",
                           registry_keys=KeySet([key.public_key]), members=entries, key=key)


@pytest.fixture
def trust_files(tmp_path: Path) -> tuple[Path, Path]:
    trust = tmp_path / "trust-list.jws"
    trust.write_text(trust_list_jws(members(("cn-ntlnp", ATTACKER), ("ru-lotl", KEY))))
    anchor = tmp_path / "anchor.json"
    anchor.write_text(json.dumps({"typ": ANCHOR_TYP, "registry_url": "https://registry.example",
                                  "keys": KeySet([REGISTRY.public_key]).to_jwks()["keys"]}))
    return trust, anchor


def test_cli_with_a_jwks_prints_each_check(package_file: Path, jwks_file: Path) -> None:
    result = run(package_file, "--key", jwks_file)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("✓ zip structure: 4 members")
    assert lines[1] == f"✓ signature: datapackage.json signed by kid {KEY.kid} " \
                       "(key from the given key set)"
    assert f"✓ observations.csv: {len(OBSERVATIONS):,} bytes, sha256 matches" in lines
    assert lines[-1] == "OK: ru-lotl-tigers.zip is complete and signed"


def test_cli_accepts_a_single_jwk(package_file: Path, tmp_path: Path) -> None:
    jwk = tmp_path / "key.json"
    jwk.write_text(json.dumps(KEY.public_key.to_jwk()))
    assert run(package_file, "--key", jwk).exit_code == 0


def test_cli_with_an_anchored_trust_list_names_the_member(
        package_file: Path, trust_files: tuple[Path, Path]) -> None:
    trust, anchor = trust_files
    result = run(package_file, "--trust-list", trust, "--anchor", anchor)
    assert result.exit_code == 0, result.output
    assert ("✓ trust list: version 3 of https://registry.example, 2 members, signed by the "
            "anchored registry key (valid until 2026-11-29 12:00 UTC)") in result.output
    assert f"✓ signature: datapackage.json signed by kid {KEY.kid} (ru-lotl)" in result.output


def test_cli_with_a_trust_list_but_no_anchor_says_so(
        package_file: Path, trust_files: tuple[Path, Path]) -> None:
    result = run(package_file, "--trust-list", trust_files[0])
    assert result.exit_code == 0, result.output
    assert "! trust list: not checked against a registry anchor" in result.output
    assert "(ru-lotl)" in result.output


def test_cli_refuses_a_trust_list_the_anchor_did_not_sign(
        package_file: Path, tmp_path: Path, trust_files: tuple[Path, Path]) -> None:
    forged = tmp_path / "forged.jws"
    forged.write_text(trust_list_jws(members(("ru-lotl", ATTACKER)), key=ATTACKER))
    result = run(package_file, "--trust-list", forged, "--anchor", trust_files[1])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "FAILED: trust list: stored trust list does not verify against the anchor")


def test_cli_fails_on_a_package_signed_by_a_non_member(
        tmp_path: Path, trust_files: tuple[Path, Path]) -> None:
    path = tmp_path / "p.zip"
    path.write_bytes(package_bytes(key=SigningKey.generate()))
    result = run(path, "--trust-list", trust_files[0], "--anchor", trust_files[1])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(
        "FAILED: datapackage.json.jws: signature invalid (unknown kid")


def test_cli_names_the_first_failure_in_one_line(tmp_path: Path, jwks_file: Path) -> None:
    path = tmp_path / "edited.zip"
    path.write_bytes(replace(VALID, "observations.csv",
                             OBSERVATIONS.replace(b"obs-0100", b"obs-0101")))
    result = run(path, "--key", jwks_file)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[-1] == "FAILED: observations.csv: sha256 mismatch"
    assert lines[-2] == f"✓ deployments.csv: {len(DEPLOYMENTS)} bytes, sha256 matches"
    assert not any(line.startswith("OK") for line in lines)


def test_cli_failure_text_is_not_read_as_markup(tmp_path: Path, jwks_file: Path) -> None:
    path = tmp_path / "markup.zip"
    path.write_bytes(zip_of([*members_of(VALID), ("[bold]x[/bold].csv", b"1")]))
    result = run(path, "--key", jwks_file)
    assert result.output.splitlines()[-1] == (
        "FAILED: [bold]x[/bold].csv: extra file, not listed in datapackage.json")


@pytest.mark.parametrize("args", [[], ["--key", "J", "--trust-list", "T"], ["--anchor", "A"]])
def test_cli_needs_exactly_one_source_of_keys(package_file: Path, tmp_path: Path,
                                              args: list[str]) -> None:
    for name in ("J", "T", "A"):
        (tmp_path / name).write_text("{}")
    result = run(package_file, *[str(tmp_path / a) if a in "JTA" else a for a in args])
    assert result.exit_code == 2


def test_cli_refuses_unusable_key_files(package_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}')
    result = run(package_file, "--key", bad)
    assert result.exit_code == 1 and "not a usable JWKS" in result.output
    bad.write_text("not json")
    assert "not a usable JWKS" in run(package_file, "--key", bad).output
    assert "not a readable trust list" in run(package_file, "--trust-list", bad).output


def test_trust_list_with_more_keys_than_one_key_set_holds(tmp_path: Path) -> None:
    others = [(f"m{i:02d}-node", SigningKey.generate()) for i in range(70)]
    jws = trust_list_jws(members(*others[:40], ("ru-lotl", KEY), *others[40:]))
    trust_list = load_trusted(jws, anchor=KeySet([REGISTRY.public_key]))
    report = check(tmp_path, VALID, trust_list)
    assert report.ok and report.signer_member == "ru-lotl"


# --- property --------------------------------------------------------------------------


def _variants() -> dict[str, bytes]:
    small = OBSERVATIONS[:200]
    variants = {}
    for compress in (False, True):
        seekable = io.BytesIO()
        write_package(seekable, compress=compress, observations=small)
        streamed = NonSeekable()
        write_package(streamed, compress=compress, observations=small)
        variants[f"file-{'deflate' if compress else 'stored'}"] = seekable.getvalue()
        variants[f"stream-{'deflate' if compress else 'stored'}"] = bytes(streamed.data)
    return variants


VARIANTS = _variants()


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_flip_fails(scratch: Path, variant: str, data: st.DataObject) -> None:
    original = VARIANTS[variant]
    assert check(scratch, original).ok
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor")
    flipped = bytearray(original)
    flipped[position] ^= mask
    report = check(scratch, bytes(flipped))  # must not raise
    assert not report.ok, f"flip at {position} ^ {mask:#04x} passed: {report.checks}"
    assert report.failure


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, bytes]:
    """A package with bytes overwritten, deleted or inserted somewhere."""
    variant = draw(st.sampled_from(sorted(VARIANTS)))
    data = bytearray(VARIANTS[variant])
    at = draw(st.integers(0, len(data) - 1))
    kind = draw(st.sampled_from(["overwrite", "delete", "insert", "truncate"]))
    if kind == "overwrite":
        patch = draw(st.binary(min_size=1, max_size=8))
        data[at:at + len(patch)] = patch
    elif kind == "delete":
        del data[at:at + draw(st.integers(1, 64))]
    elif kind == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=32))
    else:
        del data[at:]
    return variant, bytes(data)


@settings(max_examples=300, deadline=None)
@given(mutation=mutations())
def test_any_damage_fails_without_raising(scratch: Path, mutation: tuple[str, bytes]) -> None:
    variant, damaged = mutation
    report = check(scratch, damaged)  # must not raise
    assert report.ok == (damaged == VARIANTS[variant]), report.failure
