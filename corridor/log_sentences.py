"""Exchange-log entries as sentences a park manager or an auditor can read.

One function per entry type turns the entry's fields into a sentence;
an entry of a type this module does not know still reads as its type and
its parties. Every sentence is built from the entry alone, so the page and
a script over the CSV say the same thing. Identifiers are kept whole (an
auditor greps for them); hashes and token ids stay in the JSON behind each
sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from corridor.wording import plural, rows_summary

Event = Mapping[str, Any]

#: Fields a data owner's view of the log leaves out: token ids and resumption
#: cursors tie entries to credentials; auditors and admins see them.
OWNER_HIDDEN_FIELDS = frozenset({"token_jti", "jti", "cursor", "since"})

_DECISIONS = {"approve": "approved", "narrow": "approved with narrowed terms",
              "refuse": "refused"}
_REFUSED = {"fetch.refused": "A package request", "counts.refused": "A counts request",
            "census.refused": "A census request", "link.refused": "A match message",
            "catalog.refused": "A catalogue entry", "witness.refused": "A checkpoint"}
_LINKS = {"link.proposed": "proposed", "link.confirmed": "confirmed",
          "link.rejected": "rejected", "link.retracted": "retracted"}
_LINK_TYPES = frozenset(_LINKS)


def _v(event: Event, name: str, default: str = "?") -> str:
    value = event.get(name)
    return default if value is None or value == "" else str(value)


def _under(event: Event) -> str:
    return f" under agreement {event['agreement']}" if event.get("agreement") else ""


def _rows(event: Event) -> str:
    rows = event.get("rows")
    if isinstance(rows, Mapping) and rows:
        return rows_summary({str(k): int(v) for k, v in rows.items() if isinstance(v, int)})
    if isinstance(rows, int):
        return plural(rows, "row")
    return ""


def _with_rows(text: str, event: Event) -> str:
    rows = _rows(event)
    return f"{text}: {rows}." if rows else f"{text}."


def _reason(event: Event) -> str:
    return f" Reason: {event['reason']}" if event.get("reason") else ""


def _request(event: Event, verb: str) -> str:
    return (f"Request {_v(event, 'agreement')} {verb} {_v(event, 'member')}: "
            f"{_v(event, 'dataset')}, {_v(event, 'tier')} tier, for {_v(event, 'purpose')}, "
            f"until {_v(event, 'until')}.")


def _decided(event: Event) -> str:
    decision = _DECISIONS.get(str(event.get("decision")), str(event.get("decision")))
    return f"Request {_v(event, 'agreement')} from {_v(event, 'member')} {decision}." \
        + _reason(event)


def _package_served(event: Event) -> str:
    again = " (new rows since an earlier package)" if event.get("since") else ""
    return _with_rows(f"Package served to {_v(event, 'member')}{_under(event)}{again}", event)


def _unfinished(event: Event) -> str:
    sent = event.get("bytes_sent")
    size = f" after {sent:,} bytes" if isinstance(sent, int) else ""
    rows = _rows({"rows": event.get("rows_sent")})
    return (f"Package to {_v(event, 'member')}{_under(event)} was cut off{size}"
            + (f" ({rows})" if rows else "") + f": {_v(event, 'reason')}. "
            "Rows may have left the node without a signed descriptor.")


def _refused(event: Event) -> str:
    what = _REFUSED.get(str(event.get("type")), "A request")
    status = f" (status {event['status']})" if event.get("status") else ""
    return f"{what} from {_v(event, 'member')}{_under(event)} was refused{status}." \
        + _reason(event)


def _link(event: Event) -> str:
    verb = _LINKS.get(str(event.get("type")), "changed")
    way = "sent to" if event.get("direction") == "sent" else "received from"
    return (f"Match {_v(event, 'link')} of a {_v(event, 'taxon')} {verb} by "
            f"{_v(event, 'by')} ({way} {_v(event, 'member')}).")


def _overlap(event: Event, verb: str) -> str:
    count = event.get("count")
    shared = plural(count, "shared identifier") if isinstance(count, int) else "?"
    return f"Private overlap count {verb} {_v(event, 'member')}{_under(event)}: {shared}."


def _computed(event: Event, what: str) -> str:
    tier = f", {event['tier']} tier" if event.get("tier") else ""
    return _with_rows(f"{what} computed on {_v(event, 'dataset')} v{_v(event, 'version')}"
                      f"{tier}", event)


def _token(event: Event) -> str:
    agreement = f", agreement {event['agreement']}" if event.get("agreement") else ""
    return (f"Token issued to {_v(event, 'member')} for {_v(event, 'audience')} "
            f"({_v(event, 'scope')}{agreement}), valid until {_v(event, 'expires_at')}.")


_SENTENCES: dict[str, Callable[[Event], str]] = {
    "request.filed": lambda e: _request(e, "filed with"),
    "request.received": lambda e: _request(e, "received from"),
    "request.decided": _decided,
    "request.withdrawn": lambda e: f"Request {_v(e, 'agreement')} withdrawn by {_v(e, 'by')}."
    + _reason(e),
    "agreement.signed": lambda e: f"Agreement {_v(e, 'agreement')} with {_v(e, 'member')} "
    f"signed by both parties (this node as {_v(e, 'role')}).",
    "agreement.revoked": lambda e: f"Agreement {_v(e, 'agreement')} with {_v(e, 'member')} "
    f"revoked by {_v(e, 'by')}." + _reason(e),
    "agreement.expired": lambda e: f"Agreement {_v(e, 'agreement')} with {_v(e, 'member')} "
    "expired.",
    "agreement.event": lambda e: f"Agreement {_v(e, 'agreement')} between {_v(e, 'member')} "
    f"and {_v(e, 'provider')}: {_v(e, 'action')} by {_v(e, 'actor')}.",
    "package.started": lambda e: f"Package to {_v(e, 'member')}{_under(e)} started.",
    "package.served": _package_served,
    "package.unfinished": _unfinished,
    "package.received": lambda e: _with_rows(
        f"Package received from {_v(e, 'member')}{_under(e)} and verified", e),
    "package.previewed": lambda e: _with_rows(
        f"Preview package of {_v(e, 'dataset')} v{_v(e, 'version')} ({_v(e, 'tier')} tier) "
        f"written for {_v(e, 'member')}", e),
    "counts.served": lambda e: _with_rows(f"Counts served to {_v(e, 'member')}{_under(e)}", e),
    "counts.received": lambda e: f"Counts received from {_v(e, 'member')}{_under(e)} and "
    "verified.",
    "counts.computed": lambda e: _computed(e, "Counts"),
    "census.served": lambda e: f"Census counts served to {_v(e, 'member')}{_under(e)}.",
    "census.received": lambda e: f"Census counts received from {_v(e, 'member')}{_under(e)} "
    "and verified.",
    "census.computed": lambda e: _computed(e, "The census"),
    "overlap.served": lambda e: _overlap(e, "answered for"),
    "overlap.computed": lambda e: _overlap(e, "with"),
    "policy.changed": lambda e: f"Policy of {_v(e, 'dataset')} changed.",
    "key.rotated": lambda e: f"Signing key rotated: {_v(e, 'kid')} is now active.",
    "key.added": lambda e: f"Signing key {_v(e, 'kid')} added.",
    "key.retired": lambda e: f"Signing key {_v(e, 'kid')} retired.",
    "member.joined": lambda e: f"{_v(e, 'name')} ({_v(e, 'member')}, {_v(e, 'country')}) "
    "asked to join.",
    "member.status": lambda e: f"{_v(e, 'member')} went from {_v(e, 'previous')} to "
    f"{_v(e, 'status')}.",
    "member.key_added": lambda e: f"{_v(e, 'member')} added signing key {_v(e, 'kid')}.",
    "member.key_rotated": lambda e: f"{_v(e, 'member')} retired signing key {_v(e, 'kid')}.",
    "trustlist.published": lambda e: f"Trust list version {_v(e, 'version')} published "
    f"({plural(int(e.get('members') or 0), 'member')}).",
    "token.issued": _token,
    "token.revoked": lambda e: f"A token of {_v(e, 'member')} for {_v(e, 'audience')} was "
    "revoked.",
    "token.revoke_refused": lambda e: f"{_v(e, 'member')} tried to revoke a token that is not "
    "its own; refused.",
    "catalog.published": lambda e: f"{_v(e, 'member')} published {_v(e, 'dataset')} "
    f"v{_v(e, 'version')} in the catalogue (tiers {', '.join(e.get('tiers') or []) or '?'}).",
    "user.login": lambda e: f"{_v(e, 'username')} ({_v(e, 'role')}) signed in to the pages.",
    "user.login_locked": lambda e: f"Sign-ins as {_v(e, 'username')} ({_v(e, 'channel')}) "
    f"locked until {_v(e, 'until')} after repeated failures.",
    "witness.cosigned": lambda e: f"The registry cosigned {_v(e, 'member')}'s checkpoint at "
    f"{plural(int(e.get('size') or 0), 'entry', 'entries')}.",
}


def sentence(event: Event) -> str:
    """The entry as one sentence; an unknown type reads as its type and parties."""
    type_ = str(event.get("type", ""))
    if type_ in _SENTENCES:
        return _SENTENCES[type_](event)
    if type_.endswith(".refused"):
        return _refused(event)
    if type_ in _LINK_TYPES:
        return _link(event)
    parties = ", ".join(f"{name} {event[name]}" for name in ("member", "agreement")
                        if event.get(name))
    return f"{type_}" + (f" ({parties})" if parties else "") + "."


def kind_of(type_: str) -> str:
    """``exchange``, ``refusal`` or ``other``: how the page's chart counts an entry."""
    if type_.endswith(".refused") or type_ == "package.unfinished":
        return "refusal"
    if type_.rsplit(".", 1)[-1] in ("served", "received"):
        return "exchange"
    return "other"
