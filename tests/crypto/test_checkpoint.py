"""C2SP tlog-checkpoint bodies in C2SP signed notes: signing, cosigning, strict opening.

Known answers come from golang.org/x/mod ``sumdb/note/note_test.go`` (the
PeterNeumann and EnochRoot keys, signatures and note) and from the example
checkpoint of c2sp.org/tlog-checkpoint.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.checkpoint import (
    CHECKPOINT_REJECTED,
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Checkpoint,
    InvalidCheckpoint,
    add_signature,
    key_id,
    open_note,
    sign_note,
    verify_note,
)
from crypto.errors import InvalidSignature
from crypto.keys import SigningKey, VerifyKey
from crypto.merkle import EMPTY_ROOT, MerkleLog

EM_DASH = "\u2014"

# --- golang.org/x/mod sumdb/note/note_test.go ------------------------------------------

GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_PETER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_KEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    f"{EM_DASH} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()
GO_ENOCH_SIG = (
    f"{EM_DASH} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01"
    "oOTGwnWLox33WWd1RvMc+QQ=\n"
).encode()

# --- c2sp.org/tlog-checkpoint example ---------------------------------------------------

C2SP_BODY = (
    b"example.com/behind-the-sofa\n"
    b"20852163\n"
    b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
C2SP_NOTE = C2SP_BODY + (
    f"\n{EM_DASH} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOo"
    "RDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
).encode()

LOG = "log.corridor.example/test"
WITNESS = "witness.example/w1"
ROOT = MerkleLog([b"a", b"b", b"c"]).root()


def go_verifier(vkey: str) -> tuple[str, bytes, VerifyKey]:
    """Parse a Go note verifier key ``<name>+<hex key id>+<base64(0x01 || key)>``."""
    name, key_hash, material = vkey.split("+", 2)
    raw = base64.b64decode(material)
    assert raw[0] == 1  # Ed25519
    return name, bytes.fromhex(key_hash), VerifyKey.from_bytes(raw[1:])


def go_signer() -> SigningKey:
    """The PeterNeumann private key (the base64 part may itself contain '+')."""
    _, _, name, key_hash, material = GO_SIGNER_KEY.split("+", 4)
    assert (name, key_hash) == ("PeterNeumann", "c74f20a3")
    raw = base64.b64decode(material)
    assert raw[0] == 1
    return SigningKey.from_seed(raw[1:])


def signature_line(body: bytes, name: str, key: SigningKey, *, kid: bytes | None = None) -> bytes:
    """A genuine signature line, built by hand (optionally with a forged key id)."""
    blob = (kid if kid is not None else key_id(name, key.public_key)) + key.sign(body)
    return f"{EM_DASH} {name} {base64.b64encode(blob).decode()}\n".encode()


def forge(body: bytes, *lines: bytes) -> bytes:
    """Assemble a note without any of the checks sign_note makes."""
    return body + b"\n" + b"".join(lines)


def reason(note: bytes | str, verifiers: dict[str, VerifyKey]) -> str:
    """Why open_note refuses ``note`` (fails the test if it does not)."""
    with pytest.raises(InvalidCheckpoint) as info:
        open_note(note, verifiers)
    assert str(info.value) == CHECKPOINT_REJECTED
    return info.value.reason


@pytest.fixture
def checkpoint() -> Checkpoint:
    """A checkpoint of a three-entry log."""
    return Checkpoint(LOG, 3, ROOT)


@pytest.fixture
def trusted(key: SigningKey) -> dict[str, VerifyKey]:
    """The verifiers: only the log key."""
    return {LOG: key.public_key}


# --- known answers ----------------------------------------------------------------------


def test_key_id_matches_go_sumdb_note() -> None:
    for vkey in (GO_PETER_KEY, GO_ENOCH_KEY):
        name, expected, public = go_verifier(vkey)
        assert key_id(name, public) == expected
    name, _, peter = go_verifier(GO_PETER_KEY)
    assert go_signer().public_key == peter
    # The definition, spelled out (signed-note "Ed25519 signatures").
    assert key_id(name, peter) == hashlib.sha256(b"PeterNeumann\n\x01" + peter.raw).digest()[:4]


def test_sign_note_reproduces_go_note_byte_for_byte() -> None:
    # Ed25519 is deterministic, so the note must be exactly Go's.
    assert sign_note(GO_TEXT, "PeterNeumann", go_signer()) == GO_TEXT + b"\n" + GO_PETER_SIG


def test_verify_note_go_vectors() -> None:
    peter_name, _, peter = go_verifier(GO_PETER_KEY)
    enoch_name, _, enoch = go_verifier(GO_ENOCH_KEY)
    note = GO_TEXT + b"\n" + GO_PETER_SIG + GO_ENOCH_SIG
    assert verify_note(note, {peter_name: peter}) == (GO_TEXT, frozenset({"PeterNeumann"}))
    assert verify_note(note, {enoch_name: enoch}) == (GO_TEXT, frozenset({"EnochRoot"}))
    assert verify_note(note, {peter_name: peter, enoch_name: enoch})[1] == {
        "PeterNeumann", "EnochRoot"}
    assert verify_note(note.decode(), {peter_name: peter})[0] == GO_TEXT
    with pytest.raises(InvalidCheckpoint):
        verify_note(note, {})
    with pytest.raises(InvalidCheckpoint):
        verify_note(note.replace(b"cryptography", b"cryptographY"), {peter_name: peter})
    # Go: duplicated verified and unverified signatures are ignored.
    mangled_enoch = GO_ENOCH_SIG[:60] + b"ABCD" + GO_ENOCH_SIG[60:]
    crowded = (GO_TEXT + b"\n" + GO_PETER_SIG + GO_PETER_SIG + GO_ENOCH_SIG + GO_ENOCH_SIG
               + mangled_enoch)
    assert verify_note(crowded, {peter_name: peter})[1] == {"PeterNeumann"}
    # Go: an invalid signature of a known key rejects the note.
    mangled_peter = GO_PETER_SIG[:60] + b"ABCD" + GO_PETER_SIG[60:]
    with pytest.raises(InvalidCheckpoint):
        verify_note(GO_TEXT + b"\n" + mangled_peter, {peter_name: peter})


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT,
        GO_TEXT + b"\n",
        GO_TEXT + b"\n" + GO_PETER_SIG[:-1],
        b"\x01" + GO_TEXT + b"\n" + GO_PETER_SIG,
        b"\xff" + GO_TEXT + b"\n" + GO_PETER_SIG,
        GO_TEXT + b"\n" + GO_PETER_SIG.replace(b"PeterNeumann", b"Bad Name"),
        GO_TEXT + b"\n" + GO_PETER_SIG + b"Unexpected line.\n",
        GO_TEXT + b"\n" + GO_PETER_SIG * (MAX_SIGNATURES + 1),
    ],
)
def test_go_malformed_notes_are_refused(note: bytes) -> None:
    name, _, peter = go_verifier(GO_PETER_KEY)
    with pytest.raises(InvalidCheckpoint):
        verify_note(note, {name: peter})


def test_c2sp_example_checkpoint_body() -> None:
    parsed = Checkpoint.from_body(C2SP_BODY)
    assert parsed.origin == "example.com/behind-the-sofa"
    assert parsed.size == 20852163
    assert parsed.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert parsed.extensions == ()
    assert parsed.body() == C2SP_BODY
    # The example note is well formed: it fails only for want of a known key.
    assert reason(C2SP_NOTE, {}) == "no signature by a known key"
    assert reason(C2SP_NOTE, {"example.com/behind-the-sofa": SigningKey.generate().public_key}) \
        == "no signature by a known key"


# --- round trips ------------------------------------------------------------------------


def test_body_format(checkpoint: Checkpoint) -> None:
    root = base64.b64encode(ROOT).decode()
    assert checkpoint.body() == f"{LOG}\n3\n{root}\n".encode()
    with_ext = Checkpoint(LOG, 3, ROOT, ("ext one", "ext two"))
    assert with_ext.body() == f"{LOG}\n3\n{root}\next one\next two\n".encode()
    empty = base64.b64encode(EMPTY_ROOT).decode()
    assert Checkpoint(LOG, 0, EMPTY_ROOT).body() == f"{LOG}\n0\n{empty}\n".encode()


def test_sign_and_open_round_trip(checkpoint: Checkpoint, key: SigningKey,
                                  trusted: dict[str, VerifyKey]) -> None:
    note = sign_note(checkpoint.body(), LOG, key)
    assert note.startswith(checkpoint.body() + b"\n" + f"{EM_DASH} {LOG} ".encode())
    assert note.endswith(b"\n")
    assert open_note(note, trusted) == (checkpoint, frozenset({LOG}))
    assert open_note(note.decode(), trusted) == (checkpoint, frozenset({LOG}))
    assert open_note(note, trusted, origin=LOG)[0] == checkpoint


def test_extensions_round_trip(key: SigningKey, trusted: dict[str, VerifyKey]) -> None:
    checkpoint = Checkpoint(LOG, 2**64 - 1, ROOT, ("\u00e9t\u00e9 2025", "k=v"))
    assert open_note(sign_note(checkpoint.body(), LOG, key), trusted)[0] == checkpoint


def test_empty_tree_checkpoint(key: SigningKey, trusted: dict[str, VerifyKey]) -> None:
    checkpoint = Checkpoint(LOG, 0, EMPTY_ROOT)
    assert open_note(sign_note(checkpoint.body(), LOG, key), trusted)[0] == checkpoint


def test_witness_cosignature(checkpoint: Checkpoint, key: SigningKey,
                             other_key: SigningKey) -> None:
    signed = sign_note(checkpoint.body(), LOG, key)
    cosigned = add_signature(signed, WITNESS, other_key)
    assert cosigned.startswith(signed)  # the log's line stays first, untouched
    both = {LOG: key.public_key, WITNESS: other_key.public_key}
    assert open_note(cosigned, both) == (checkpoint, frozenset({LOG, WITNESS}))
    assert open_note(cosigned, {WITNESS: other_key.public_key})[1] == {WITNESS}
    assert open_note(cosigned, {LOG: key.public_key})[1] == {LOG}
    # Cosigning again replaces the witness's own line instead of repeating it.
    assert add_signature(cosigned, WITNESS, other_key) == cosigned
    assert add_signature(cosigned.decode(), WITNESS, other_key) == cosigned
    third = SigningKey.generate()
    tri = add_signature(cosigned, "witness.example/w2", third)
    assert open_note(tri, {**both, "witness.example/w2": third.public_key})[1] == {
        LOG, WITNESS, "witness.example/w2"}


def test_add_signature_refuses_malformed_notes(checkpoint: Checkpoint,
                                               other_key: SigningKey) -> None:
    with pytest.raises(InvalidCheckpoint):
        add_signature(checkpoint.body(), WITNESS, other_key)  # no signature block
    with pytest.raises(InvalidCheckpoint):
        add_signature(b"x" * (MAX_NOTE_SIZE + 1), WITNESS, other_key)
    with pytest.raises(ValueError):
        add_signature(sign_note(checkpoint.body(), LOG, other_key), "bad name", other_key)


def test_add_signature_refuses_to_exceed_the_size_limit(key: SigningKey,
                                                        other_key: SigningKey) -> None:
    body = Checkpoint(LOG, 3, ROOT, ("x" * 16000,)).body()
    signed = sign_note(body, LOG, key)
    with pytest.raises(ValueError, match="exceed"):
        for i in range(10):
            signed = add_signature(signed, f"w{i}", other_key)


# --- who may sign -----------------------------------------------------------------------


def test_tampered_checkpoints_fail(checkpoint: Checkpoint, key: SigningKey,
                                   trusted: dict[str, VerifyKey]) -> None:
    note = sign_note(checkpoint.body(), LOG, key)
    root = base64.b64encode(ROOT).decode().encode()
    other_root = base64.b64encode(EMPTY_ROOT).decode().encode()
    for tampered in (
        note.replace(b"\n3\n", b"\n4\n", 1),
        note.replace(root, other_root, 1),
        note.replace(LOG.encode(), b"log.corridor.example/prod", 1),
        note.replace(b"\n\n", b"\next\n\n", 1),
    ):
        assert tampered != note
        assert "does not verify" in reason(tampered, trusted)


def test_signature_by_unknown_key_fails(checkpoint: Checkpoint, attacker_key: SigningKey,
                                       trusted: dict[str, VerifyKey]) -> None:
    # Same name, another key: a different key ID, so an unknown key, ignored.
    note = sign_note(checkpoint.body(), LOG, attacker_key)
    assert reason(note, trusted) == "no signature by a known key"
    # Another name entirely.
    note = sign_note(checkpoint.body(), "attacker.example", attacker_key)
    assert reason(note, trusted) == "no signature by a known key"


def test_forged_key_id_fails(checkpoint: Checkpoint, key: SigningKey, attacker_key: SigningKey,
                             trusted: dict[str, VerifyKey]) -> None:
    # The attacker copies the log's name and key ID: a known key, so it must verify.
    body = checkpoint.body()
    line = signature_line(body, LOG, attacker_key, kid=key_id(LOG, key.public_key))
    assert "does not verify" in reason(forge(body, line), trusted)
    # ...even next to a genuine signature (signed-note: reject the whole note).
    genuine = signature_line(body, LOG, key)
    assert "does not verify" in reason(forge(body, line, genuine), trusted)


def test_a_bad_signature_of_any_known_key_rejects_the_note(
        checkpoint: Checkpoint, key: SigningKey, other_key: SigningKey) -> None:
    body = checkpoint.body()
    bad_witness = signature_line(body + b"x", WITNESS, other_key)  # signs other bytes
    note = forge(body, signature_line(body, LOG, key), bad_witness)
    both = {LOG: key.public_key, WITNESS: other_key.public_key}
    assert "does not verify" in reason(note, both)
    # The same line is merely ignored by whoever does not know the witness.
    assert open_note(note, {LOG: key.public_key})[1] == {LOG}


def test_unknown_and_duplicate_signatures_are_ignored(
        checkpoint: Checkpoint, key: SigningKey, attacker_key: SigningKey,
        trusted: dict[str, VerifyKey]) -> None:
    body = checkpoint.body()
    genuine = signature_line(body, LOG, key)
    unknown = signature_line(body, "someone.example", attacker_key)
    other_type = f"{EM_DASH} pq.example {base64.b64encode(bytes(1000)).decode()}\n".encode()
    note = forge(body, unknown, genuine, other_type, genuine, unknown)
    assert open_note(note, trusted) == (checkpoint, frozenset({LOG}))


def test_wrong_size_signature_of_known_key_fails(checkpoint: Checkpoint, key: SigningKey,
                                                 trusted: dict[str, VerifyKey]) -> None:
    body = checkpoint.body()
    blob = key_id(LOG, key.public_key) + key.sign(body) + b"\x00"
    line = f"{EM_DASH} {LOG} {base64.b64encode(blob).decode()}\n".encode()
    assert "wrong size" in reason(forge(body, line), trusted)


def test_expected_origin(checkpoint: Checkpoint, key: SigningKey,
                         trusted: dict[str, VerifyKey]) -> None:
    note = sign_note(checkpoint.body(), LOG, key)
    with pytest.raises(InvalidCheckpoint) as info:
        open_note(note, trusted, origin="log.corridor.example/prod")
    assert info.value.reason == "checkpoint is from another origin"


def test_rejection_is_opaque(checkpoint: Checkpoint, attacker_key: SigningKey,
                             trusted: dict[str, VerifyKey]) -> None:
    with pytest.raises(InvalidSignature) as info:
        open_note(sign_note(checkpoint.body(), LOG, attacker_key), trusted)
    assert isinstance(info.value, InvalidCheckpoint)
    assert str(info.value) == CHECKPOINT_REJECTED


# --- strict parsing: each refusal, with a genuine signature over the bad body ----------


def _body(origin: str = LOG, size: str = "3", root: str | None = None,
          *extensions: str) -> bytes:
    root = base64.b64encode(ROOT).decode() if root is None else root
    return "".join(f"{line}\n" for line in (origin, size, root, *extensions)).encode()


ROOT_B64 = base64.b64encode(ROOT).decode()
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# The same 32 bytes with a non-zero unused bit in the last base64 digit.
ROOT_B64_NONCANONICAL = ROOT_B64[:-2] + _B64[_B64.index(ROOT_B64[-2]) | 1] + "="


@pytest.mark.parametrize(
    ("body", "why"),
    [
        # Tree size: canonical decimal only.
        (_body(size="03"), "canonical decimal"),
        (_body(size="00"), "canonical decimal"),
        (_body(size="+3"), "canonical decimal"),
        (_body(size="-3"), "canonical decimal"),
        (_body(size=" 3"), "canonical decimal"),
        (_body(size="3 "), "canonical decimal"),
        (_body(size="0x3"), "canonical decimal"),
        (_body(size="3.0"), "canonical decimal"),
        (_body(size="1_000"), "canonical decimal"),
        (_body(size="\uff13"), "canonical decimal"),  # fullwidth digit three
        (_body(size="\u0663"), "canonical decimal"),  # Arabic-Indic digit three
        (_body(size=""), "canonical decimal"),
        (_body(size="1" * 21), "canonical decimal"),
        (_body(size=str(2**64)), "tree size"),
        # Root hash: canonical standard base64 of exactly 32 bytes.
        (_body(root=ROOT_B64.rstrip("=")), "root hash"),
        (_body(root=ROOT_B64 + "="), "root hash"),
        (_body(root=ROOT_B64_NONCANONICAL), "non-canonical"),
        (_body(root=base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode()), "root hash"),
        (_body(root=" " + ROOT_B64), "root hash"),
        (_body(root=ROOT_B64[:20] + "*" + ROOT_B64[21:]), "root hash"),
        (_body(root=base64.b64encode(ROOT[:31]).decode()), "32 bytes"),
        (_body(root=base64.b64encode(ROOT + b"\x00").decode()), "32 bytes"),
        (_body(root=base64.b64encode(hashlib.sha512().digest()).decode()), "32 bytes"),
        (_body(root=""), "32 bytes"),
        (_body(root=ROOT.hex()), "root hash"),
        # Lines.
        (_body(origin=""), "origin"),
        (_body(LOG, "3", ROOT_B64, ""), "extension"),
        (_body(LOG, "3", ROOT_B64, "ok", ""), "extension"),
        (f"{LOG}\n3\n".encode(), "three lines"),
        (b"\n", "three lines"),
    ],
)
def test_strict_body_refusals(body: bytes, why: str, key: SigningKey,
                              trusted: dict[str, VerifyKey]) -> None:
    # The note is genuinely signed: only the body's shape is wrong.
    note = forge(body, signature_line(body, LOG, key))
    assert why in reason(note, trusted)
    with pytest.raises(InvalidCheckpoint):
        Checkpoint.from_body(body)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (_body().replace(b"\n", b"\r\n"), "control character"),
        (_body().replace(b"\n", b"\r\n", 1), "control character"),
        (_body(LOG, "3", ROOT_B64, "a\tb"), "control character"),
        (_body(LOG + "\x00"), "control character"),
        (_body(LOG + "\x1b[31m"), "control character"),
        (_body().replace(LOG.encode(), b"log\xff"), "UTF-8"),
        (_body().replace(LOG.encode(), b"log\xed\xa0\x80"), "UTF-8"),  # surrogate
        (_body().replace(LOG.encode(), b"log\xc0\xaf"), "UTF-8"),  # overlong '/'
    ],
)
def test_note_character_refusals(body: bytes, why: str, key: SigningKey,
                                 trusted: dict[str, VerifyKey]) -> None:
    assert why in reason(forge(body, signature_line(body, LOG, key)), trusted)


def test_note_framing_refusals(checkpoint: Checkpoint, key: SigningKey,
                               trusted: dict[str, VerifyKey]) -> None:
    body = checkpoint.body()
    line = signature_line(body, LOG, key)
    good = forge(body, line)
    _, name, sig = line.decode()[:-1].split(" ")
    url_safe = base64.urlsafe_b64encode(b"\xfb\xff" * 34).decode()  # has '-' and '_'
    short = base64.b64encode(b"abcd").decode()
    malformed = "malformed signature line"
    cases = {
        "missing trailing newline": (good[:-1], "does not end in a newline"),
        "no blank line": (body + line, "no signature block"),
        "no signature lines": (body + b"\n", "no signature lines"),
        "blank line after signatures": (good + b"\n", "no signature lines"),
        "text after signatures": (good + b"trailing\n", malformed),
        "hyphen instead of em dash": (good.replace(EM_DASH.encode(), b"-"), malformed),
        "en dash instead of em dash": (good.replace(EM_DASH.encode(), "\u2013".encode()),
                                       malformed),
        "double hyphen": (good.replace(EM_DASH.encode(), b"--"), malformed),
        "no space after dash": (forge(body, f"{EM_DASH}{name} {sig}\n".encode()), malformed),
        "two spaces": (forge(body, f"{EM_DASH} {name}  {sig}\n".encode()), malformed),
        "trailing space": (forge(body, f"{EM_DASH} {name} {sig} \n".encode()), malformed),
        "no signature": (forge(body, f"{EM_DASH} {name}\n".encode()), malformed),
        "empty name": (forge(body, f"{EM_DASH}  {sig}\n".encode()), "non-empty"),
        "plus in name": (forge(body, f"{EM_DASH} a+b {sig}\n".encode()), "'+'"),
        "unicode space in name": (forge(body, f"{EM_DASH} a\u00a0b {sig}\n".encode()), "spaces"),
        "unpadded signature": (forge(body, f"{EM_DASH} {name} {sig.rstrip('=')}\n".encode()),
                               "base64"),
        "url-safe signature": (forge(body, f"{EM_DASH} {name} {url_safe}\n".encode()), "base64"),
        "short signature": (forge(body, f"{EM_DASH} {name} {short}\n".encode()), "too short"),
        "too many signatures": (forge(body, *[line] * (MAX_SIGNATURES + 1)), "too many"),
        "empty note": (b"", "does not end in a newline"),
        "only newlines": (b"\n\n", "no signature lines"),
    }
    for label, (note, why) in cases.items():
        assert why in reason(note, trusted), label
    open_note(good, trusted)


def test_note_size_limit(key: SigningKey, trusted: dict[str, VerifyKey]) -> None:
    def note_of_size(target: int) -> bytes:
        base = len(sign_note(Checkpoint(LOG, 3, ROOT, ("x",)).body(), LOG, key))
        body = Checkpoint(LOG, 3, ROOT, ("x" * (1 + target - base),)).body()
        return forge(body, signature_line(body, LOG, key))

    assert len(note_of_size(MAX_NOTE_SIZE)) == MAX_NOTE_SIZE
    open_note(note_of_size(MAX_NOTE_SIZE), trusted)
    assert reason(note_of_size(MAX_NOTE_SIZE + 1), trusted) == "note is too large"
    assert reason(note_of_size(MAX_NOTE_SIZE + 1).decode(), trusted) == "note is too large"
    assert reason("x" * 10**6, trusted) == "note is too large"
    # Multi-byte characters count in bytes, not characters.
    body = Checkpoint(LOG, 3, ROOT, ("\u00e9" * 8200,)).body()
    assert reason(forge(body, signature_line(body, LOG, key)).decode(), trusted) \
        == "note is too large"
    with pytest.raises(ValueError, match="exceed"):
        sign_note(body, LOG, key)


def test_other_input_types_are_refused(trusted: dict[str, VerifyKey]) -> None:
    for note in (None, 42, ["x"]):
        with pytest.raises(InvalidCheckpoint):
            open_note(note, trusted)  # type: ignore[arg-type]
    with pytest.raises(InvalidCheckpoint):
        open_note("\ud800\n\n", trusted)  # lone surrogate: not encodable as UTF-8


# --- what we refuse to produce ------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"origin": ""},
        {"origin": "two\nlines"},
        {"origin": "cr\r"},
        {"origin": "surrogate\ud800"},
        {"origin": b"bytes"},
        {"size": -1},
        {"size": 2**64},
        {"size": 1.0},
        {"size": True},
        {"size": "3"},
        {"root_hash": ROOT[:31]},
        {"root_hash": ROOT.hex()},
        {"root_hash": bytearray(ROOT)},
        {"extensions": ("",)},
        {"extensions": ("a\nb",)},
        {"extensions": ("tab\t",)},
        {"extensions": ["list"]},
        {"extensions": (1,)},
    ],
)
def test_checkpoint_refuses_unwritable_fields(fields: dict[str, object]) -> None:
    args: dict[str, object] = {"origin": LOG, "size": 3, "root_hash": ROOT, "extensions": ()}
    args.update(fields)
    with pytest.raises(ValueError):
        Checkpoint(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (b"no newline", LOG),
        (b"", LOG),
        (b"cr\r\n", LOG),
        (b"nul\x00\n", LOG),
        (b"\xff\n", LOG),
        (b"fine\n", ""),
        (b"fine\n", "has space"),
        (b"fine\n", "has+plus"),
        (b"fine\n", "tab\tname"),
        (b"fine\n", "nbsp\u00a0name"),
        (b"fine\n", "surrogate\ud800"),
    ],
)
def test_sign_note_refuses_what_open_note_would(body: bytes, name: str,
                                                key: SigningKey) -> None:
    with pytest.raises(ValueError):
        sign_note(body, name, key)


# --- properties ---------------------------------------------------------------------------

_KEY = SigningKey.generate()
_WITNESS_KEY = SigningKey.generate()
_line = st.text(
    st.characters(exclude_categories=["Cs"], min_codepoint=0x20), min_size=1, max_size=30
)


@settings(max_examples=150, deadline=None)
@given(
    origin=_line,
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_line, max_size=3).map(tuple),
)
def test_any_checkpoint_round_trips(origin: str, size: int, root: bytes,
                                    extensions: tuple[str, ...]) -> None:
    checkpoint = Checkpoint(origin, size, root, extensions)
    assert Checkpoint.from_body(checkpoint.body()) == checkpoint
    note = add_signature(sign_note(checkpoint.body(), "log", _KEY), "w", _WITNESS_KEY)
    verifiers = {"log": _KEY.public_key, "w": _WITNESS_KEY.public_key}
    assert open_note(note, verifiers) == (checkpoint, frozenset({"log", "w"}))


@settings(max_examples=150, deadline=None)
@given(position=st.integers(0), value=st.integers(0, 255))
def test_any_single_byte_change_is_refused(position: int, value: int) -> None:
    body = Checkpoint(LOG, 3, ROOT).body()
    note = bytearray(sign_note(body, LOG, _KEY))
    position %= len(note)
    if note[position] == value:
        return
    note[position] = value
    with pytest.raises(InvalidCheckpoint):
        open_note(bytes(note), {LOG: _KEY.public_key})
