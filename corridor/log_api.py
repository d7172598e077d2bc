"""The auditor's read-only view of a service's exchange log (DESIGN.md §10), node and registry.

One implementation for both services, parameterized by an :class:`AuditLog`
(the service's :class:`~corridor.tlog.TransparencyLog`, database, accounts
and the keys its checkpoints are checked with), attached with :func:`init_audit`.

HTTP API (flask-smorest blueprint ``audit``, in the OpenAPI document)::

    GET /log/checkpoint                          public
        200 text/plain; charset=utf-8: the latest signed checkpoint note (with
            the registry's cosignature once witnessed); 404 problem+json if none.
    GET /log/entries?from=&to=&type=&member=&format=&limit=     auditor
        200 {"size", "entries": [{"index", "leaf", "hash"}], "next"}: entries
            with from <= index < to (to defaults to the size; limit defaults to
            and is at most 1000); "next" is the from of the next page, or null.
        With format=csv (or Accept: text/csv): text/csv, streamed, one row per
        entry (index, at, type, member, agreement, details, leaf_sha256): the
        leaf decoded, details = its other fields as compact JSON, leaf_sha256 =
        the stored RFC 9162 leaf hash SHA-256(0x00 || leaf) in hex, as "hash";
        a text cell starting with = + - @ (or tab, CR) gets a leading '.
    GET /log/proof/inclusion?index=&size=        auditor
        200 {"index", "size", "proof": [base64]} (size defaults to the log's)
    GET /log/proof/consistency?from=&to=         auditor
        200 {"from", "to", "proof": [base64]} (to defaults to the log's size)

Every refusal is RFC 9457 problem+json: 422 for a malformed, unknown or
out-of-range parameter (a size or index beyond the log included), 401 with
``WWW-Authenticate: Basic realm="corridor-audit"`` without valid
credentials, 403 for an account (Basic or signed in) whose role may not audit.

"auditor" means HTTP Basic with an account of role ``auditor`` or ``admin``
(:data:`corridor.users.AUDIT_ROLES`), or a signed-in session of the
service's pages with that role. Basic credentials are checked on every
request and never start a session; wrong ones are counted with the sign-in
page's (:mod:`corridor.login_guard`), and a locked account or address gets
429 with ``Retry-After`` before any password is checked.
"""

from __future__ import annotations

import base64
import csv
import functools
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, current_app, request, stream_with_context
from flask import session as web_session
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range
from sqlalchemy import select
from sqlalchemy.orm import Session

from corridor.clock import now
from corridor.errors import CorridorError, Forbidden, NotFound, TooManyRequests, Unauthorized
from corridor.flaskdb import Database
from corridor.login_guard import LockedOut
from corridor.tlog import MAX_PAGE, LogEntry, TransparencyLog
from corridor.users import AUDIT_ROLES, SESSION_ID, Accounts
from crypto.checkpoint import InvalidCheckpoint, open_note, verify_note
from crypto.keys import VerifyKey

__all__ = [
    "AUTH_CHALLENGE",
    "CSV_COLUMNS",
    "AuditLog",
    "CheckpointStatus",
    "CheckpointTrust",
    "EntriesQuery",
    "InvalidQuery",
    "blp",
    "checkpoint_status",
    "csv_cells",
    "current_audit",
    "entry_columns",
    "entry_types",
    "init_audit",
    "page_start_before",
    "require_auditor",
    "signed_by",
]

#: The challenge of every 401 (RFC 7617).
AUTH_CHALLENGE = 'Basic realm="corridor-audit"'
CSV_COLUMNS = ("index", "at", "type", "member", "agreement", "details", "leaf_sha256")
#: Leaf fields that have their own CSV column (the rest go to ``details``).
_OWN_COLUMNS = frozenset(CSV_COLUMNS[:5])
#: Entries read per query while streaming CSV.
CSV_BATCH = 1000
# A spreadsheet evaluates a cell starting with these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EXTENSION_KEY = "corridor_audit"


class InvalidQuery(CorridorError):
    """A query parameter is out of range for this log (a size beyond it, from after to)."""

    status = 422
    title = "Invalid query"


# --- what a service provides ------------------------------------------------------


@dataclass(frozen=True)
class CheckpointTrust:
    """The keys a service's checkpoints are checked with.

    :ivar origin: the checkpoints' origin line.
    :ivar signer: the key name of the service's own signature line.
    :ivar signer_keys: the service's public keys (any of them may have signed).
    :ivar cosigner: the key name of the witness that cosigns (None: not witnessed).
    :ivar cosigner_keys: the witness's pinned keys (empty: none pinned).
    """

    origin: str
    signer: str
    signer_keys: Sequence[VerifyKey]
    cosigner: str | None = None
    cosigner_keys: Sequence[VerifyKey] = ()


@dataclass(frozen=True)
class AuditLog:
    """What the audit API and pages of one service read.

    :ivar label: names the service in file names (``ru-lotl``, ``registry``).
    :ivar log: the service's exchange log.
    :ivar database: the service's per-request sessions.
    :ivar accounts: the service's local accounts (auditors sign in with them).
    :ivar trust: returns the keys to check checkpoints with (read on each call:
        keys rotate, the anchor is a file).
    :ivar zone: the time zone of the service's pages (``time_zone`` setting).
    """

    label: str
    log: TransparencyLog
    database: Database
    accounts: Accounts
    trust: Callable[[], CheckpointTrust]
    #: The IANA time zone the service's pages give times in.
    zone: str = "UTC"


def init_audit(app: Flask, api: Any, audit: AuditLog) -> None:
    """Serve ``audit`` under ``/log`` on ``app`` (``api``: the app's flask-smorest ``Api``)."""
    app.extensions[_EXTENSION_KEY] = audit
    api.register_blueprint(blp)


def current_audit() -> AuditLog:
    """The :class:`AuditLog` of the running app."""
    audit: AuditLog = current_app.extensions[_EXTENSION_KEY]
    return audit


# --- who is asking ----------------------------------------------------------------


def require_auditor() -> Any:
    """The account reading the log: HTTP Basic, else the pages' session.

    :raises Unauthorized: no credentials, wrong ones, or a session whose
        account no longer exists (with the Basic challenge).
    :raises Forbidden: the account's role may not read the log.
    """
    audit = current_audit()
    session = audit.database.session()
    challenge = {"WWW-Authenticate": AUTH_CHALLENGE}
    if "Authorization" in request.headers:
        credentials = request.authorization
        if credentials is None or credentials.type != "basic" or not credentials.username:
            raise Unauthorized("use HTTP Basic with an auditor account", headers=challenge)
        user = _basic_user(audit, session, credentials.username, credentials.password or "")
    else:
        session_id = web_session.get(SESSION_ID)
        username = audit.accounts.sessions.username(session, session_id, now())
        user = None if username is None else audit.accounts.get(session, username)
        if user is None:
            raise Unauthorized("sign in with an auditor account (HTTP Basic, or the web "
                               "pages)", headers=challenge)
    if user.role not in AUDIT_ROLES:
        raise Forbidden(f"the role {user.role} may not read the exchange log; ask for an "
                        "auditor account")
    return user


def _basic_user(audit: AuditLog, session: Session, username: str, password: str) -> Any:
    """The account of these HTTP Basic credentials, counted like the sign-in page's.

    :raises TooManyRequests: the account or the client address is locked out
        (no password is checked then).
    :raises Unauthorized: wrong credentials (counted; may start a lockout).
    """
    try:
        user = audit.accounts.sign_in(session, audit.log, username, password,
                                      address=request.remote_addr, channel="basic",
                                      now=now(), record_login=False)
    except LockedOut as locked:
        session.commit()
        raise TooManyRequests(locked.lockout.message(now()), headers={
            "Retry-After": str(locked.lockout.retry_after(now()))}) from None
    session.commit()
    if user is None:
        raise Unauthorized("wrong username or password",
                           headers={"WWW-Authenticate": AUTH_CHALLENGE})
    return user


def _audited(view: Callable[..., Any]) -> Callable[..., Any]:
    """Check the caller before anything else (parameters included) is looked at."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_auditor()
        return view(*args, **kwargs)
    return wrapper


# --- wire format (marshmallow at the edge) ----------------------------------------


class _Query(Schema):
    class Meta:
        unknown = RAISE


def _index(description: str, *, required: bool = False, data_key: str | None = None
           ) -> fields.Integer:
    return fields.Integer(required=required, data_key=data_key, validate=Range(min=0),
                          metadata={"description": description})


class EntriesQuery(_Query):
    """Which entries to list (filters combine)."""

    start = _index("first index (default 0)", data_key="from")
    end = _index("index after the last (default: the log's size)", data_key="to")
    type = fields.String(validate=Length(min=1, max=40),
                         metadata={"description": "only entries of this type"})
    member = fields.String(validate=Length(min=1, max=40),
                           metadata={"description": "only entries naming this member"})
    format = fields.String(validate=OneOf(["json", "csv"]),
                           metadata={"description": "csv: stream a CSV file (as does "
                                                    "Accept: text/csv)"})
    limit = fields.Integer(validate=Range(min=1, max=MAX_PAGE),
                           metadata={"description": f"page size (default {MAX_PAGE}; JSON "
                                                    "only)"})

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if "start" in data and "end" in data and data["start"] > data["end"]:
            raise ValidationError("from must not be greater than to", "from")


class InclusionQuery(_Query):
    """Which entry, in which tree."""

    index = _index("the entry's index", required=True)
    size = _index("tree size (default: the log's size)")


class ConsistencyQuery(_Query):
    """Which two trees."""

    old = _index("the older tree size", required=True, data_key="from")
    new = _index("the newer tree size (default: the log's size)", data_key="to")

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if "new" in data and data["old"] > data["new"]:
            raise ValidationError("from must not be greater than to", "from")


class LogEntrySchema(Schema):
    """One entry as stored."""

    index = fields.Integer(required=True)
    leaf = fields.String(required=True, metadata={
        "description": "the exact leaf text (canonical JSON, RFC 8785) that is hashed"})
    hash = fields.String(required=True, metadata={
        "description": "hex of the stored RFC 9162 leaf hash, SHA-256(0x00 || leaf)"})


class LogEntriesSchema(Schema):
    """A page of entries."""

    size = fields.Integer(required=True, metadata={"description": "the log's size now"})
    entries = fields.List(fields.Nested(LogEntrySchema), required=True)
    next = fields.Integer(allow_none=True, required=True, metadata={
        "description": "from of the next page (same filters), or null on the last page"})


class InclusionProofSchema(Schema):
    """RFC 9162 §2.1.3 audit path, leaf to root."""

    index = fields.Integer(required=True)
    size = fields.Integer(required=True)
    proof = fields.List(fields.String(), required=True,
                        metadata={"description": "hashes, standard base64"})


class ConsistencyProofSchema(Schema):
    """RFC 9162 §2.1.4 consistency proof."""

    old = fields.Integer(required=True, data_key="from")
    new = fields.Integer(required=True, data_key="to")
    proof = fields.List(fields.String(), required=True,
                        metadata={"description": "hashes, standard base64"})


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]


def _within(name: str, value: int, size: int) -> int:
    """``value`` (a tree size or bound) if the log of ``size`` entries reaches it.

    :raises InvalidQuery: it does not.
    """
    if value > size:
        raise InvalidQuery(f"{name}={value} is beyond the log, which has {size} entries",
                           errors={name: [f"at most {size}"]})
    return value


# --- routes -----------------------------------------------------------------------

blp = Blueprint("audit", __name__, url_prefix="/log",
                description="The exchange log, read-only, for auditors (HTTP Basic with an "
                            "auditor or admin account); the latest checkpoint is public.")
# Integer keys, as flask-smorest's own: they merge with its responses instead of
# shadowing them in the JSON document.
_AUTH_REFUSALS: dict[int, Any] = {
    401: {"description": "no or wrong credentials (Basic realm \"corridor-audit\")"},
    403: {"description": "the account's role may not audit"}}


@blp.route("/checkpoint")
class Checkpoint(MethodView):
    """The latest signed tree head."""

    @blp.response(200, content_type="text/plain", description=(
        "C2SP tlog-checkpoint signed note; the registry's cosignature line follows "
        "the service's own once witnessed"))
    @blp.alt_response(404, "NOT_FOUND")  # no checkpoint signed yet
    @blp.doc(responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    def get(self) -> Response:
        """The latest checkpoint note, as signed (public: it holds no data)."""
        audit = current_audit()
        row = audit.log.latest_checkpoint(audit.database.session())
        if row is None:
            raise NotFound("no checkpoint has been signed yet")
        return Response(row.note, mimetype="text/plain", headers={"Cache-Control": "no-cache"})


@blp.route("/entries")
class Entries(MethodView):
    """Entries, their leaves and leaf hashes."""

    @_audited
    @blp.arguments(EntriesQuery, location="query", unknown=RAISE)
    @blp.response(200, LogEntriesSchema)
    @blp.doc(responses={200: {"content": {"text/csv": {"schema": {
        "type": "string", "description": "header " + ",".join(CSV_COLUMNS)
        + "; details is the rest of the leaf as compact JSON; leaf_sha256 the same "
          "leaf hash as the JSON's hash"}}}}, **_AUTH_REFUSALS})
    def get(self, query: dict[str, Any]) -> Any:
        """A page of entries as JSON, or all of them (within the filters) as streamed CSV."""
        audit = current_audit()
        session = audit.database.session()
        size = audit.log.size(session)
        end = _within("to", query.get("end", size), size)
        start = _within("from", query.get("start", 0), end)
        filters = {"type_": query.get("type"), "member": query.get("member")}
        if _wants_csv(query):
            return _csv_response(audit, session, start, end, **filters)
        limit = query.get("limit", MAX_PAGE)
        rows = audit.log.entries(session, start, end, limit=limit + 1, **filters)
        following = rows[limit - 1].index + 1 if len(rows) > limit else None
        return {"size": size, "next": following,
                "entries": [{"index": e.index, "leaf": e.leaf, "hash": e.hash.hex()}
                            for e in rows[:limit]]}


@blp.route("/proof/inclusion")
class InclusionProof(MethodView):
    """Proof that an entry is in a tree."""

    @_audited
    @blp.arguments(InclusionQuery, location="query", unknown=RAISE)
    @blp.response(200, InclusionProofSchema)
    @blp.doc(responses=_AUTH_REFUSALS)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The audit path of entry ``index`` in the tree of ``size`` entries."""
        audit = current_audit()
        session = audit.database.session()
        index, current = query["index"], audit.log.size(session)
        size = _within("size", query.get("size", current), current)
        if index >= size:
            raise InvalidQuery(f"index={index} is not below size={size}",
                               errors={"index": [f"below {size}"]})
        return {"index": index, "size": size,
                "proof": _b64(audit.log.inclusion_proof(session, index, size))}


@blp.route("/proof/consistency")
class ConsistencyProof(MethodView):
    """Proof that one tree extends another."""

    @_audited
    @blp.arguments(ConsistencyQuery, location="query", unknown=RAISE)
    @blp.response(200, ConsistencyProofSchema)
    @blp.doc(responses=_AUTH_REFUSALS)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The proof that the tree of ``from`` entries is a prefix of the tree of ``to``."""
        audit = current_audit()
        session = audit.database.session()
        size = audit.log.size(session)
        new = _within("to", query.get("new", size), size)
        old = _within("from", query["old"], new)
        return {"old": old, "new": new,
                "proof": _b64(audit.log.consistency_proof(session, old, new))}


# --- CSV --------------------------------------------------------------------------


def _wants_csv(query: dict[str, Any]) -> bool:
    if "format" in query:
        return bool(query["format"] == "csv")
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def _guard(cell: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def entry_columns(entry: LogEntry) -> dict[str, Any]:
    """An entry decoded into :data:`CSV_COLUMNS`: ``index`` an int, the rest text.

    ``details`` is the leaf without the fields that have a column of their
    own, as compact JSON with sorted keys ("" when nothing is left);
    ``leaf_sha256`` is the hex of the stored leaf hash, as ``hash`` in JSON.
    """
    event = entry.event()
    details = {key: value for key, value in event.items() if key not in _OWN_COLUMNS}

    def text(name: str) -> str:
        value = event.get(name)
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return {"index": entry.index, **{name: text(name) for name in CSV_COLUMNS[1:5]},
            "details": json.dumps(details, ensure_ascii=False, sort_keys=True,
                                  separators=(",", ":")) if details else "",
            "leaf_sha256": entry.hash.hex()}


def csv_cells(entry: LogEntry) -> list[Any]:
    """One CSV row in :data:`CSV_COLUMNS` order, text cells formula-guarded."""
    columns = entry_columns(entry)
    return [value if isinstance(value, int) else _guard(value) for value in columns.values()]


def _csv_lines(log: TransparencyLog, session: Session, start: int, end: int, *,
               type_: str | None, member: str | None) -> Iterator[str]:
    """The CSV text, a batch of rows at a time (memory stays flat in the log's size).

    The session is closed after each batch, so no transaction (and no
    connection) is held while the client reads; entries below ``end`` never
    change, so the batches still make one consistent export.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    position = start
    while position < end:
        batch = log.entries(session, position, end, type_=type_, member=member,
                            limit=CSV_BATCH)
        session.close()
        if not batch:
            return
        writer.writerows(csv_cells(entry) for entry in batch)
        yield flush()
        position = batch[-1].index + 1


def _csv_response(audit: AuditLog, session: Session, start: int, end: int, *,
                  type_: str | None, member: str | None) -> Response:
    lines = _csv_lines(audit.log, session, start, end, type_=type_, member=member)
    filename = f"{audit.label}-log-{start}-{end}.csv"
    return Response(stream_with_context(lines), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


# --- reading for the pages ----------------------------------------------------------


def entry_types(audit: AuditLog, session: Session) -> list[str]:
    """Every entry type in the log, sorted (for a filter's choices)."""
    column = audit.log.entry.type
    return list(session.scalars(select(column).distinct().order_by(column)))


def page_start_before(audit: AuditLog, session: Session, before: int, page: int, *,
                      type_: str | None, member: str | None) -> int | None:
    """The ``from`` of the page of ``page`` matching entries that ends just before ``before``.

    None when no matching entry lies below ``before``; 0 when fewer than
    ``page`` do.
    """
    e = audit.log.entry
    query = select(e.idx).where(e.idx < before)
    if type_ is not None:
        query = query.where(e.type == type_)
    if member is not None:
        query = query.where(e.member == member)
    found = list(session.scalars(query.order_by(e.idx.desc()).limit(page)))
    if not found:
        return None
    return found[-1] if len(found) == page else 0


# --- checkpoints: what an auditor checks ------------------------------------------


@dataclass
class CheckpointStatus:
    """One stored checkpoint and what checking it found.

    :ivar signature: ``valid`` or ``invalid`` (by the service's own key).
    :ivar cosignature: ``valid``, ``missing``, ``invalid``, ``unknown`` (no
        witness key pinned), or None when the log is not witnessed.
    :ivar root_matches: the root recomputed from the stored Merkle nodes
        equals the checkpoint's (None: the tree is damaged or shorter).
    """

    row: Any
    signature: str
    cosignature: str | None
    root_matches: bool | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything checked out (a missing cosignature is not yet a failure)."""
        return not self.problems


def _has_line_of(note: str, name: str) -> bool:
    """Whether the note has a signature line under ``name`` (verified or not)."""
    block = note.rpartition("\n\n")[2]
    return any(line.startswith(f"\u2014 {name} ") for line in block.splitlines())


def signed_by(note: str, name: str, keys: Sequence[VerifyKey], *, origin: str | None,
              row: Any) -> bool:
    """Whether one of ``keys`` signed ``note`` as ``name``.

    Given an ``origin``, the note must also be a checkpoint of that origin
    naming exactly ``row``'s size and root. Without one, only the signature
    is checked (a cosignature: it signs the same text as the signer's).
    """
    for key in keys:
        try:
            if origin is None:
                _, names = verify_note(note, {name: key})
            else:
                checkpoint, names = open_note(note, {name: key}, origin=origin)
                if (checkpoint.size, checkpoint.root_hash) != (row.size, bytes(row.root)):
                    return False
        except InvalidCheckpoint:
            continue
        if name in names:
            return True
    return False


def checkpoint_status(audit: AuditLog, session: Session, row: Any,
                      trust: CheckpointTrust) -> CheckpointStatus:
    """Check a stored checkpoint: its signature, its cosignature, its root against the tree."""
    problems: list[str] = []
    signed = signed_by(row.note, trust.signer, trust.signer_keys, origin=trust.origin, row=row)
    if not signed:
        problems.append(f"no valid signature by {trust.signer} over this tree")
    cosignature: str | None = None
    if trust.cosigner is not None:
        if not _has_line_of(row.note, trust.cosigner):
            cosignature = "missing"
        elif not trust.cosigner_keys:
            cosignature = "unknown"
        elif signed_by(row.note, trust.cosigner, trust.cosigner_keys, origin=None, row=row):
            cosignature = "valid"
        else:
            cosignature = "invalid"
            problems.append(f"the cosignature by {trust.cosigner} does not verify")
    root_matches: bool | None = None
    if row.size <= audit.log.size(session):
        try:
            root_matches = audit.log.root(session, row.size) == bytes(row.root)
        except LookupError:
            problems.append("the stored Merkle tree is damaged")
        else:
            if not root_matches:
                problems.append("the root recomputed from the stored tree differs")
    else:
        problems.append("the checkpoint is larger than the log")
    return CheckpointStatus(row, "valid" if signed else "invalid", cosignature, root_matches,
                            problems)
