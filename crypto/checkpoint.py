"""Transparency log checkpoints (C2SP tlog-checkpoint) as Ed25519 signed notes (C2SP signed-note).

A checkpoint body is three or more lines, each ending in a newline
(c2sp.org/tlog-checkpoint, "Note text")::

    <origin>
    <tree size, decimal>
    <root hash, base64>
    [<extension line>...]

It is signed as a note (c2sp.org/signed-note, "Format"): the body, a blank
line, then one line per signature, ``— <key name> <base64(key id || sig)>``
with an em dash (U+2014). Witnesses cosign by adding their own line
(:func:`add_signature`).

:func:`open_note` parses strictly, before and after the signatures are
checked, and raises the opaque :class:`InvalidCheckpoint` whatever failed;
the detail is in ``.reason``. Only Ed25519 (signature type ``0x01``) is
implemented; signature lines of other keys or types are ignored, as the
signed-note spec requires of unknown keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from crypto.errors import InvalidSignature
from crypto.keys import SigningKey, VerifyKey
from crypto.merkle import HASH_SIZE, MAX_TREE_SIZE

__all__ = [
    "CHECKPOINT_REJECTED",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "InvalidCheckpoint",
    "add_signature",
    "key_id",
    "open_note",
    "sign_note",
    "verify_note",
]

#: Public message of every checkpoint / note rejection.
CHECKPOINT_REJECTED = "checkpoint rejected"
#: Largest signed note accepted or produced, in bytes of UTF-8.
MAX_NOTE_SIZE = 16 * 1024
#: Most signature lines accepted in one note (signed-note: at least 16 must be).
MAX_SIGNATURES = 100

_ED25519_TYPE = b"\x01"  # signed-note "Signature types"
_ED25519_SIGNATURE_SIZE = 64  # RFC 8032 §5.1.6
_KEY_ID_SIZE = 4  # signed-note "Format": uint32 key ID, big-endian
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_SIZE_PATTERN = re.compile(r"0|[1-9][0-9]{0,19}", re.ASCII)  # no sign, no leading zero
_BASE64_PATTERN = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?",
                             re.ASCII)
# signed-note "Format": no ASCII control characters other than newline.
_FORBIDDEN_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class InvalidCheckpoint(InvalidSignature):
    """A checkpoint or signed note was rejected, for whatever reason.

    ``str(error)`` is always :data:`CHECKPOINT_REJECTED`; the actual cause
    is in :attr:`reason`, for server logs only.
    """

    def __init__(self, reason: str) -> None:
        """Create the error.

        :param reason: why the note was refused; for logs, never for clients.
        """
        super().__init__(reason, message=CHECKPOINT_REJECTED)


def _b64encode(data: bytes) -> str:
    # Standard, padded base64 (RFC 4648 §4), as both specs use.
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    """Decode standard padded base64, accepting only its canonical spelling.

    :raises ValueError: otherwise.
    """
    if not _BASE64_PATTERN.fullmatch(text):
        raise ValueError("not standard padded base64")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError("not standard padded base64") from e
    # Non-zero unused trailing bits would be a second spelling of the same bytes.
    if _b64encode(data) != text:
        raise ValueError("non-canonical base64")
    return data


def _check_text(text: str, what: str) -> None:
    if _FORBIDDEN_CONTROL.search(text):
        raise ValueError(f"{what} contains a control character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates
        raise ValueError(f"{what} is not encodable as UTF-8") from e


def _check_key_name(name: str) -> None:
    # signed-note "Format": non-empty, no Unicode spaces, no '+'.
    if not isinstance(name, str) or not name:
        raise ValueError("key name must be a non-empty string")
    if "+" in name or any(c.isspace() for c in name):
        raise ValueError("key name must not contain spaces or '+'")
    _check_text(name, "key name")


def key_id(name: str, key: VerifyKey) -> bytes:
    """Return the 4-byte signed-note key ID of an Ed25519 key under ``name``.

    signed-note "Ed25519 signatures":
    ``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]``.
    """
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + _ED25519_TYPE + key.raw).digest()
    return digest[:_KEY_ID_SIZE]


# --- the checkpoint body --------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The body of a checkpoint: a log's tree head at one size (c2sp.org/tlog-checkpoint).

    :ivar origin: the log's identity (first line); non-empty.
    :ivar size: number of leaves, ``0 <= size < 2**64``.
    :ivar root_hash: the 32-byte RFC 9162 root of the tree at ``size``.
    :ivar extensions: optional extra lines, each non-empty (NOT RECOMMENDED
        by the spec, since monitors cannot audit them).
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Validate the fields.

        :raises ValueError: if any field could not be written as a checkpoint
            that :meth:`from_body` reads back identically.
        """
        if not isinstance(self.extensions, tuple):
            raise ValueError("extensions must be a tuple")
        lines = [("origin", self.origin)] + [("extension line", e) for e in self.extensions]
        for what, line in lines:
            if not isinstance(line, str) or not line:
                raise ValueError(f"{what} must be a non-empty string")
            if "\n" in line:
                raise ValueError(f"{what} must be a single line")
            _check_text(line, what)
        if (not isinstance(self.size, int) or isinstance(self.size, bool)
                or not 0 <= self.size <= MAX_TREE_SIZE):
            raise ValueError("tree size must be an integer in [0, 2**64)")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"root hash must be {HASH_SIZE} bytes")

    def body(self) -> bytes:
        """Return the note text: origin, size, root and extensions, one per line."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def from_body(cls, body: bytes) -> Checkpoint:
        """Parse a checkpoint body strictly (c2sp.org/tlog-checkpoint, "Note text").

        Unsigned: use :func:`open_note` for anything received.

        :raises InvalidCheckpoint: unless ``body`` is UTF-8 without control
            characters, at least three non-empty newline-terminated lines,
            a canonical decimal size and a canonical base64 32-byte root.
        """
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidCheckpoint("checkpoint is not UTF-8") from e
        if not text.endswith("\n"):
            raise InvalidCheckpoint("checkpoint does not end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise InvalidCheckpoint("checkpoint has fewer than three lines")
        origin, size, root, *extensions = lines
        if not _SIZE_PATTERN.fullmatch(size):
            raise InvalidCheckpoint("tree size is not a canonical decimal")
        try:
            root_hash = _b64decode(root)
        except ValueError as e:
            raise InvalidCheckpoint(f"root hash: {e}") from e
        try:
            return cls(origin, int(size), root_hash, tuple(extensions))
        except ValueError as e:
            raise InvalidCheckpoint(str(e)) from e


# --- signed notes ----------------------------------------------------------------------


@dataclass(frozen=True)
class _SignatureLine:
    name: str
    key_id: bytes
    signature: bytes
    line: str


def _split_note(note: bytes | str) -> tuple[bytes, list[_SignatureLine]]:
    """Split a signed note into its text and parsed signature lines (no verification).

    :raises InvalidCheckpoint: unless the note is well formed per
        signed-note "Format", at most :data:`MAX_NOTE_SIZE` bytes with at most
        :data:`MAX_SIGNATURES` signature lines.
    """
    if isinstance(note, str):
        if len(note) > MAX_NOTE_SIZE:
            raise InvalidCheckpoint("note is too large")
        try:
            raw = note.encode("utf-8")
        except UnicodeEncodeError as e:  # lone surrogates
            raise InvalidCheckpoint("note is not UTF-8") from e
    elif isinstance(note, bytes | bytearray | memoryview):
        raw = bytes(note)
    else:
        raise InvalidCheckpoint("note must be bytes or str")
    if len(raw) > MAX_NOTE_SIZE:
        raise InvalidCheckpoint("note is too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidCheckpoint("note is not UTF-8") from e
    if _FORBIDDEN_CONTROL.search(text):
        raise InvalidCheckpoint("note contains a control character")
    if not text.endswith("\n"):
        raise InvalidCheckpoint("note does not end in a newline")
    # The text is separated from the signatures by the last empty line.
    split = text.rfind("\n\n")
    if split < 0:
        raise InvalidCheckpoint("note has no signature block")
    body, block = text[: split + 1], text[split + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise InvalidCheckpoint("note has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidCheckpoint("note has too many signatures")
    return body.encode("utf-8"), [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> _SignatureLine:
    # signed-note "Signatures": "— <key name> base64(32-bit key ID || signature)"
    if not line.startswith(_SIGNATURE_PREFIX):
        raise InvalidCheckpoint("malformed signature line")
    parts = line[len(_SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2:
        raise InvalidCheckpoint("malformed signature line")
    name, encoded = parts
    try:
        _check_key_name(name)
        blob = _b64decode(encoded)
    except ValueError as e:
        raise InvalidCheckpoint(f"malformed signature line: {e}") from e
    if len(blob) <= _KEY_ID_SIZE:
        raise InvalidCheckpoint("signature is too short")
    return _SignatureLine(name, blob[:_KEY_ID_SIZE], blob[_KEY_ID_SIZE:], line)


def _signature_line(body: bytes, name: str, key: SigningKey) -> str:
    blob = key_id(name, key.public_key) + key.sign(body)
    return f"{_SIGNATURE_PREFIX}{name} {_b64encode(blob)}\n"


def _assemble(body: bytes, lines: list[str]) -> bytes:
    note = body + b"\n" + "".join(lines).encode("utf-8")
    if len(note) > MAX_NOTE_SIZE:
        raise ValueError(f"signed note would exceed {MAX_NOTE_SIZE} bytes")
    return note


def sign_note(body: bytes, name: str, key: SigningKey) -> bytes:
    """Sign ``body`` as a note by the Ed25519 ``key`` known as ``name``.

    Returns ``body || "\\n" || "— <name> <base64(key id || signature)>\\n"``.

    :raises ValueError: if ``body`` is not note text (UTF-8 without control
        characters other than newline, ending in a newline), ``name`` is not
        a valid key name, or the note would exceed :data:`MAX_NOTE_SIZE`.
    """
    body = bytes(body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError("note text must be UTF-8") from e
    if not text.endswith("\n"):
        raise ValueError("note text must end in a newline")
    _check_text(text, "note text")
    _check_key_name(name)
    return _assemble(body, [_signature_line(body, name, key)])


def add_signature(note: bytes | str, name: str, key: SigningKey) -> bytes:
    """Add a signature by ``key`` as ``name`` to a signed note (a witness cosigning).

    Existing signatures are kept as they are and not verified: a cosigner
    checks the note with :func:`open_note` first. A previous line of the
    same key (same name and key ID) is replaced.

    :raises InvalidCheckpoint: if ``note`` is not a well-formed signed note.
    :raises ValueError: if ``name`` is not a valid key name, or the note
        would exceed :data:`MAX_NOTE_SIZE`.
    """
    _check_key_name(name)
    body, signatures = _split_note(note)
    own = key_id(name, key.public_key)
    lines = [s.line + "\n" for s in signatures if (s.name, s.key_id) != (name, own)]
    return _assemble(body, [*lines, _signature_line(body, name, key)])


def verify_note(
    note: bytes | str, verifiers: Mapping[str, VerifyKey]
) -> tuple[bytes, frozenset[str]]:
    """Check a signed note against trusted Ed25519 keys; return its text and who signed it.

    Per signed-note "Signatures": a line whose name and key ID match none of
    ``verifiers`` is ignored (a name with another key ID is another key); a
    line of a known key must verify, else the whole note is refused; a
    repeated line of a key already seen is ignored; at least one known key
    must have signed.

    :param verifiers: key name to the Ed25519 key trusted under that name.
    :returns: the note text (signed bytes) and the names whose signature verified.
    :raises InvalidCheckpoint: on any failure.
    """
    body, signatures = _split_note(note)
    ids = {name: key_id(name, key) for name, key in verifiers.items()}
    verified: set[str] = set()
    for signature in signatures:
        if ids.get(signature.name) != signature.key_id or signature.name in verified:
            continue
        if len(signature.signature) != _ED25519_SIGNATURE_SIZE:
            raise InvalidCheckpoint(f"signature by {signature.name!r:.80} has the wrong size")
        try:
            verifiers[signature.name].verify(signature.signature, body)
        except InvalidSignature as e:
            raise InvalidCheckpoint(f"signature by {signature.name!r:.80} does not verify") from e
        verified.add(signature.name)
    if not verified:
        raise InvalidCheckpoint("no signature by a known key")
    return body, frozenset(verified)


def open_note(
    note: bytes | str, verifiers: Mapping[str, VerifyKey], *, origin: str | None = None
) -> tuple[Checkpoint, frozenset[str]]:
    """Verify a signed checkpoint and parse it strictly.

    The signatures are checked first (:func:`verify_note`), then the text is
    parsed with :meth:`Checkpoint.from_body`.

    :param verifiers: key name to the Ed25519 key trusted under that name.
    :param origin: if given, the checkpoint's origin line must equal it.
    :returns: the checkpoint and the names whose signature verified.
    :raises InvalidCheckpoint: on any failure.
    """
    body, names = verify_note(note, verifiers)
    checkpoint = Checkpoint.from_body(body)
    if origin is not None and checkpoint.origin != origin:
        raise InvalidCheckpoint("checkpoint is from another origin")
    return checkpoint, names
