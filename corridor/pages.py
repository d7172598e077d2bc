"""Server-rendered pages shared by the node and the registry: layout, sign-in, headers, errors.

Each service has one ``web`` blueprint of pages for people, with sessions and
CSRF tokens; its JSON APIs are for machines and use neither. :func:`install`
gives that blueprint what both services' pages share: the signed-in account
(re-read on every request), ``/login`` and ``/logout``, security headers,
errors rendered as pages, and the layout (``base.html``) with the
service's :class:`Site`. The templates and the stylesheet live here, in the
``ui`` blueprint, which each app registers beside its own.

:func:`log_page` is the exchange log page of both services (DESIGN.md §10):
the entries with filters and pagination, a CSV link, and every stored
checkpoint with what checking it found.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Request,
    abort,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as web_session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.validate import Length
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from corridor.clock import now
from corridor.errors import CorridorError
from corridor.flaskdb import Database
from corridor.log_api import (
    AuditLog,
    EntriesQuery,
    checkpoint_status,
    entry_types,
    page_start_before,
)
from corridor.log_sentences import OWNER_HIDDEN_FIELDS, kind_of, sentence

# One lifetime for the cookie, the server-side session and the CSRF token.
from corridor.login_guard import SESSION_LIFETIME, LockedOut
from corridor.tlog import LogEntry, TransparencyLog
from corridor.users import (
    AUDIT_ROLES,
    MAX_PASSWORD_LENGTH,
    MAX_USERNAME_LENGTH,
    SESSION_ID,
    Accounts,
)

__all__ = [
    "LOG_PAGE_SIZE",
    "PAGE_HEADERS",
    "FormInvalid",
    "LoginForm",
    "PageForm",
    "Site",
    "flask_settings",
    "install",
    "is_development_url",
    "load_form",
    "log_page",
    "page_message",
    "require_auditor_page",
    "safe_next",
    "ui",
]

logger = logging.getLogger(__name__)

ui = Blueprint("ui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/assets")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Entries on one page of the log page.
LOG_PAGE_SIZE = 100
#: Newest checkpoints checked and shown on the log page.
CHECKPOINTS_SHOWN = 20
# Pages never go into caches and never into frames; the CSS is a same-origin file.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # CSRFProtect checks the Referer on HTTPS, so same-origin requests must keep it.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Site:
    """What the layout says about the service.

    :ivar title: ends every ``<title>`` ("Corridor node ru-lotl").
    :ivar brand: the header's name ("Corridor · Land of the Leopard").
    :ivar tag: beside the brand, muted ("ru-lotl").
    :ivar home: endpoint of the front page (and of a refused ``next``).
    :ivar nav: ``(endpoint, label)`` links shown to the signed-in account.
    :ivar users_hint: the command that makes accounts, shown on the login page.
    """

    title: str
    brand: str
    tag: str
    home: str
    nav: tuple[tuple[str, str], ...]
    users_hint: str


def flask_settings(url: str | None, cookie_name: str) -> dict[str, Any]:
    """Flask settings of the pages' session cookie and CSRF tokens, for a service at ``url``.

    The cookie is ``Secure`` unless the service runs over plain HTTP on
    loopback (or has no URL yet): development, where there is no TLS to ask for.
    """
    return {
        "SESSION_COOKIE_NAME": cookie_name,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": not is_development_url(url),
        "PERMANENT_SESSION_LIFETIME": SESSION_LIFETIME,
        # Only the pages check tokens (see install); the JSON APIs have none.
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": int(SESSION_LIFETIME.total_seconds()),
    }


def is_development_url(url: str | None) -> bool:
    """No URL yet, or plain HTTP on a loopback address."""
    if not url:
        return True
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    # Browsers read "/\\evil.example" as "//evil.example"; control characters are never paths.
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


# --- forms (marshmallow at the edge, CONVENTIONS.md §8) -------------------------


class PageForm(Schema):
    """A posted form: unknown fields are refused; the CSRF token is checked before."""

    class Meta:
        unknown = RAISE

    # Checked by CSRFProtect before any view runs; declared so RAISE accepts it.
    csrf_token = fields.String(load_default="")


class LoginForm(PageForm):
    """The sign-in form."""

    username = fields.String(load_default="", validate=Length(max=MAX_USERNAME_LENGTH))
    password = fields.String(load_default="", validate=Length(max=MAX_PASSWORD_LENGTH))
    next = fields.String(load_default="")


class FormInvalid(Exception):
    """A submitted form (or a page's query) does not load (the message lists the fields)."""


def load_form(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` loaded through ``schema``.

    :raises FormInvalid: it does not load.
    """
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as e:
        messages = e.messages if isinstance(e.messages, dict) else {"form": e.messages}
        raise FormInvalid("; ".join(f"{name}: {' '.join(map(str, problems))}"
                                    for name, problems in messages.items())) from e
    return loaded


# --- the shared parts of a service's pages --------------------------------------


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, ``Secure`` also whenever the request came over TLS.

    ``SESSION_COOKIE_SECURE`` follows the service's URL (:func:`flask_settings`);
    a service with no URL configured, served behind TLS all the same, must
    not hand out a cookie a browser would also send over plain HTTP.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure if configured so, or if this request is HTTPS (after ProxyFix)."""
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (
            has_request_context() and request.is_secure)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """An empty session, at once, for a request that sends no session cookie.

        API calls (a bearer token, no cookie) are most requests; building the
        cookie signer for each of them cost more than checking their token.
        """
        if request.cookies.get(self.get_cookie_name(app)) is None and app.secret_key:
            return self.session_class()
        return super().open_session(app, request)


def install(bp: Blueprint, *, csrf: CSRFProtect, accounts: Accounts, database: Database,
            log: TransparencyLog, site: Callable[[Any], Site]) -> None:
    """Give a service's ``web`` blueprint sessions, sign-in, headers and error pages.

    Call before the blueprint is registered. Every page but ``/login`` needs
    a signed-in account; ``g.user`` is that account, re-read on every request
    (a removed account's sessions end). A successful sign-in is appended to
    ``log`` as ``user.login`` in the transaction that records its time.

    :param site: the layout's :class:`Site` for the signed-in account (or None).
    """
    login_endpoint = f"{bp.name}.login"

    @bp.record_once
    def _cookies(state: Any) -> None:
        state.app.session_interface = SessionCookies()

    @bp.before_request
    def _before_page() -> ResponseReturnValue | None:
        if request.method not in SAFE_METHODS:
            csrf.protect()
        g.user = None
        if SESSION_ID in web_session:
            session = database.session()
            username = accounts.sessions.username(session, web_session[SESSION_ID], now())
            g.user = None if username is None else accounts.get(session, username)
            if g.user is None:  # signed out elsewhere, expired, or the account removed
                web_session.clear()
        if g.user is None and request.endpoint != login_endpoint:
            here = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for(login_endpoint, next=here))
        return None

    @bp.after_request
    def _page_headers(response: Response) -> Response:
        for name, value in PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @bp.context_processor
    def _layout() -> dict[str, Any]:
        user = g.get("user")
        return {"site": site(user), "user": user}

    @bp.errorhandler(CSRFError)
    def _csrf_failed(error: CSRFError) -> ResponseReturnValue:
        return render_template("error.html", status=400, title="Form expired or forged",
                               message=f"The form's CSRF security token was refused "
                                       f"({error.description}) and nothing was changed. "
                                       "Reload the page and try again."), 400

    @bp.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> ResponseReturnValue:
        code = error.code or 500
        return render_template("error.html", status=code, title=error.name,
                               message=error.description), code

    @bp.errorhandler(CorridorError)
    def _service_error(error: CorridorError) -> ResponseReturnValue:
        return render_template("error.html", status=error.status, title=error.title,
                               message=page_message(error)), error.status

    @bp.errorhandler(Exception)
    def _unexpected(error: Exception) -> ResponseReturnValue:
        # The detail goes to the log, never to the page (CONVENTIONS.md §5).
        _log_exception(error)
        return render_template("error.html", status=500, title="Something went wrong",
                               message="The service could not do this; the details are in "
                                       "its log."), 500

    def login() -> ResponseReturnValue:
        """The sign-in form; on success, a fresh session and back to where the user was going."""
        target = safe_next(request.values.get("next"), url_for(site(None).home))
        if request.method == "GET":
            if g.user is not None:
                return redirect(target)
            return render_template("login.html", next=target)
        session = database.session()
        typed = request.form.get("username", "")[:MAX_USERNAME_LENGTH].strip()
        try:
            form = load_form(LoginForm(), request.form)
            password = form["password"]
        except FormInvalid:
            password = ""  # counted as a wrong password, like any other
        try:
            user = accounts.sign_in(session, log, typed, password, address=request.remote_addr,
                                    channel="page", now=now(), record_login=True)
        except LockedOut as locked:
            session.commit()
            page = render_template("login.html", next=target, username=typed,
                                   error=locked.lockout.message(now()))
            return page, 429, {"Retry-After": str(locked.lockout.retry_after(now()))}
        if user is None:
            session.commit()
            # One message whether the name or the password is wrong.
            return render_template("login.html", next=target,
                                   error="Wrong username or password.", username=typed), 401
        session_id = accounts.sessions.start(session, user.username, now())
        # On the record in the transaction that records the time (DESIGN.md §2.5).
        log.append(session, "user.login", user.last_login_at, username=user.username,
                   role=user.role)
        session.commit()
        web_session.clear()  # a new session on every sign-in: nothing carried over (fixation)
        web_session[SESSION_ID] = session_id
        web_session.permanent = True
        flash(f"Signed in as {user.username} ({user.role}).", "ok")
        return redirect(target)

    def logout() -> ResponseReturnValue:
        """End the session on the server: a copy of its cookie stops working at once."""
        session = database.session()
        accounts.sessions.end(session, web_session.get(SESSION_ID))
        session.commit()
        web_session.clear()
        flash("Signed out.", "ok")
        return redirect(url_for(login_endpoint))

    bp.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", logout, methods=["POST"])


def page_message(error: CorridorError) -> str:
    """What a page says about a service error: its detail, or (an operator's error,
    which may name files) that the details are in the log, where they go."""
    if error.public:
        return error.detail or error.title
    logger.error("%s: %s", type(error).__name__, error.detail)
    return f"{error.title}: the service cannot do this now; the details are in its log."


def _log_exception(error: Exception) -> None:
    """Log a page's unexpected failure with its path."""
    logger.exception("page %s failed", request.path, exc_info=error)


@ui.app_template_filter("utc")
def utc(value: datetime | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM UTC``."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@ui.app_template_filter("checked")
def checked(value: datetime | None) -> str:
    """When a copy was last checked against the registry, and how long ago, in words."""
    if value is None:
        return "not yet checked with the registry"
    minutes = int((now() - value).total_seconds() // 60)
    ago = ("just now" if minutes < 1 else f"{minutes} min ago" if minutes < 120
           else f"{minutes // 60} h ago" if minutes < 48 * 60 else f"{minutes // 1440} days ago")
    return f"as checked with the registry {utc(value)} ({ago})"


# --- the exchange log page ------------------------------------------------------


def require_auditor_page(*, readers: frozenset[str] = AUDIT_ROLES) -> bool:
    """Refuse (403) a signed-in account whose role may not read the log.

    ``readers``: the roles that may read it (auditors and admins, and on a node
    its data owners). Returns whether the account reads every field.
    """
    if g.user.role not in readers | AUDIT_ROLES:
        names = " and ".join(sorted(readers | AUDIT_ROLES))
        abort(403, description=f"Your role ({g.user.role}) may not read the exchange log; "
                               f"it is for {names}.")
    return bool(g.user.role in AUDIT_ROLES)


#: The log page's filters: those of ``GET /log/entries`` but the format and page size.
_LOG_FILTERS = EntriesQuery(exclude=("format", "limit"))
#: Query names of the filters, as in the API.
_FILTER_NAMES = {"start": "from", "end": "to", "type": "type", "member": "member"}


def log_page(audit: AuditLog, *, full: bool = True) -> ResponseReturnValue:
    """The exchange log page: entries as sentences with filters and pagination, a per-day
    chart, and the checkpoints.

    ``full``: the reader may see every field (auditors, admins) and download
    the CSV; otherwise :data:`OWNER_HIDDEN_FIELDS` are left out of the JSON.
    """
    session = audit.database.session()
    size = audit.log.size(session)
    zone = ZoneInfo(audit.zone)
    # An empty field of the GET form is no filter.
    given = {name: value for name, value in request.args.items() if value.strip()}
    context: dict[str, Any] = {"size": size, "types": entry_types(audit, session),
                               "filters": given, "entries": [], "error": None,
                               "pages": {}, "csv": None, "label": audit.label, "full": full,
                               "zone": audit.zone,
                               "chart": daily_chart(audit.log, session, now(), zone)}
    status = 200
    try:
        query = load_form(_LOG_FILTERS, given)
        end = query.get("end", size)
        if end > size:
            raise FormInvalid(f"to: the log has {size} entries")
        if query.get("start", 0) > end:
            raise FormInvalid(f"from: at most {end}")
    except FormInvalid as e:
        context["error"], status = f"Nothing is listed: {e}", 422
    else:
        context.update(_entries_page(audit, session, query, end, zone=zone, full=full))
    context["root"] = audit.log.root(session, size).hex()
    trust = audit.trust()
    rows = session.scalars(select(audit.log.checkpoint)
                           .order_by(audit.log.checkpoint.size.desc()).limit(CHECKPOINTS_SHOWN))
    context["checkpoints"] = [checkpoint_status(audit, session, row, trust) for row in rows]
    context["trust"] = trust
    return render_template("log.html", **context), status


def _entries_page(audit: AuditLog, session: Any, query: dict[str, Any], end: int, *,
                  zone: ZoneInfo, full: bool) -> dict[str, Any]:
    start = query.get("start", 0)
    type_, member = query.get("type"), query.get("member")
    rows = audit.log.entries(session, start, end, type_=type_, member=member,
                             limit=LOG_PAGE_SIZE + 1)
    following = rows[LOG_PAGE_SIZE - 1].index + 1 if len(rows) > LOG_PAGE_SIZE else None
    previous = page_start_before(audit, session, start, LOG_PAGE_SIZE, type_=type_,
                                 member=member)
    last = page_start_before(audit, session, end, LOG_PAGE_SIZE, type_=type_, member=member)
    given = {_FILTER_NAMES[name]: value for name, value in query.items()}

    def at(position: int) -> str:
        # The page's filters, the cursor in place of the first index.
        return url_for(request.endpoint or "", **{**given, "from": position})

    links = {}
    if start > 0 and previous is not None:
        links["First"], links["Previous"] = at(0), at(previous)
    if following is not None:
        links["Next"] = at(following)
        if last is not None and last > following:
            links["Last"] = at(last)
    return {"entries": [entry_row(e, zone, full=full) for e in rows[:LOG_PAGE_SIZE]],
            "pages": links, "start": start, "end": end,
            "csv": url_for("audit.Entries", **{**given, "format": "csv"}) if full else None}


def entry_row(entry: LogEntry, zone: ZoneInfo, *, full: bool) -> dict[str, Any]:
    """One entry as the page shows it: its time in ``zone``, its sentence, its JSON."""
    event = entry.event()
    shown = event if full else {k: v for k, v in event.items() if k not in OWNER_HIDDEN_FIELDS}
    at = datetime.fromisoformat(str(event["at"]).replace("Z", "+00:00")).astimezone(zone)
    return {"index": entry.index, "type": str(event.get("type", "")),
            "at": at.strftime("%Y-%m-%d %H:%M:%S"), "sentence": sentence(event),
            "kind": kind_of(str(event.get("type", ""))),
            "json": json.dumps(shown, ensure_ascii=False, indent=2, sort_keys=True),
            "leaf_sha256": entry.hash.hex()}


#: Days the log page's chart covers, today included.
CHART_DAYS = 30


def daily_chart(log: TransparencyLog, session: Any, moment: datetime, zone: ZoneInfo
                ) -> dict[str, Any]:
    """Exchanges and refusals per day (in ``zone``) over the last :data:`CHART_DAYS` days.

    ``days``: one dict per day, oldest first, with ``day``, ``exchanges`` and
    ``refusals``; ``peak``: the largest daily total (at least 1), for scaling.
    """
    today = moment.astimezone(zone).date()
    first = today - timedelta(days=CHART_DAYS - 1)
    counts = {first + timedelta(days=i): {"exchange": 0, "refusal": 0}
              for i in range(CHART_DAYS)}
    since = datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC)
    for type_, at in log.types_since(session, since):
        kind = kind_of(type_)
        day = at.astimezone(zone).date()
        if kind != "other" and day in counts:
            counts[day][kind] += 1
    days: list[dict[str, Any]] = [
        {"day": day.isoformat(), "exchanges": c["exchange"], "refusals": c["refusal"]}
        for day, c in counts.items()]
    return {"days": days, "peak": max([d["exchanges"] + d["refusals"] for d in days] + [1]),
            "exchanges": sum(d["exchanges"] for d in days),
            "refusals": sum(d["refusals"] for d in days)}
