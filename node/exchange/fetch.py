"""The requester's side of a fetch: token, download, verify, receipt (DESIGN.md §7).

The package is streamed to ``FILE.part`` next to the destination, verified
with the provider's keys from the stored trust list (signature, every file's
hash and size, and that it is this agreement's package), and only then moved
into place and recorded as a receipt. Anything else is deleted: a truncated
or tampered download never looks like a package. Without ``since``, a fetch
continues from the cursor of the last good package of the agreement.

The receipt and its ``package.received`` log entry (DESIGN.md §10) are
committed together. The entry names the provider's ``package.served`` entry
(``corridor.log_index`` in the signed descriptor) and the content digest
recomputed from the verified descriptor, so an auditor can pair what one
side served with what the other received.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from corridor.errors import CorridorError
from corridor.files import written_whole
from corridor.outbound import read_capped
from corridor.package_reader import verify_package
from corridor.web import MAX_JSON_DEPTH, json_depth
from crypto.canonical import canonical_json
from crypto.package import content_digest, resource_entries
from crypto.trustlist import MemberEntry, TrustList
from node.exchange.agreements import bounded, local
from node.exchange.oauth_client import TokenError
from node.exchange.registry_client import RegistryClient, RegistryDown, unreachable
from node.log.exchange_log import LOG
from node.models import Agreement as AgreementRow
from node.models import Receipt

__all__ = ["FetchRefused", "FetchResult", "fetch_package", "last_cursor", "post_for_json",
           "problem_line", "requested_from"]

CHUNK = 64 * 1024
#: Largest refusal (problem+json) read from a provider; a longer one is not read.
MAX_PROBLEM = 64 * 1024
#: Most resources whose row counts a ``package.received`` leaf lists.
MAX_LOGGED_RESOURCES = 16


class FetchRefused(CorridorError):
    """The fetch failed; the message says why (the provider's problem detail, or ours)."""

    status = 502
    title = "Fetch failed"


@dataclass(frozen=True)
class FetchResult:
    """A package fetched, verified and recorded."""

    path: Path
    sha256: str
    size: int
    rows: Mapping[str, int]
    cursor: str | None
    since: str | None
    receipt_id: int


def last_cursor(session: Session, agreement_id: str) -> str | None:
    """The cursor of the newest verified package of an agreement."""
    return session.scalars(select(Receipt.cursor).where(Receipt.agreement_id == agreement_id)
                           .order_by(Receipt.id.desc()).limit(1)).first()


def fetch_package(session: Session, client: RegistryClient, trust_list: TrustList, *,
                  agreement_id: str, out: Path, since: str | None, now: datetime,
                  http: httpx.Client, on_bytes: Callable[[int], None] | None = None,
                  resume: bool = True) -> FetchResult:
    """Fetch, verify and record one package of an agreement this node requested.

    :param since: a cursor; ``None`` continues from the last receipt when
        ``resume`` is true, else starts from the beginning.
    :raises FetchRefused: token refused, provider refused (its problem detail),
        transfer failed, or the package does not verify; nothing is kept.
    """
    row, provider, token = requested_from(session, client, trust_list, agreement_id,
                                          token=client.fetch_token)
    if since is None and resume:
        since = last_cursor(session, agreement_id)
    with written_whole(out) as part:
        digest, size = _download(http, provider.node_url.rstrip("/")
                                 + f"/agreements/{agreement_id}/package", token, since, part,
                                 on_bytes)
        report = verify_package(part, provider.keys)
        if not report.ok or report.descriptor is None:
            raise FetchRefused(f"the package does not verify: {report.failure}")
        meta: dict[str, Any] = report.descriptor.get("corridor") or {}
        if meta.get("agreement") != agreement_id or meta.get("dataset") != row.dataset \
                or meta.get("recipient") != client.member_id:
            raise FetchRefused("the package is signed but not this agreement's "
                               f"(agreement {meta.get('agreement')!r}, dataset "
                               f"{meta.get('dataset')!r})")
    descriptor_sha = hashlib.sha256(canonical_json(report.descriptor)).hexdigest()
    served_index = _served_index(meta)
    receipt = Receipt(agreement_id=agreement_id, provider=row.provider, package_sha256=digest,
                      descriptor_sha256=descriptor_sha,
                      plan_digest=(meta.get("plan") or {}).get("digest"), since=since,
                      cursor=meta.get("cursor"), rows=dict(meta.get("rows") or {}),
                      path=str(out), received_at=now, served_index=served_index)
    session.add(receipt)
    LOG.append(session, "package.received", now, member=row.provider, agreement=agreement_id,
               served_index=served_index, package_sha256=digest,
               descriptor_sha256=descriptor_sha,
               content_sha256=content_digest(resource_entries(report.descriptor)),
               rows=_counts(receipt.rows), since=bounded(since),
               cursor=bounded(receipt.cursor if isinstance(receipt.cursor, str) else None))
    session.commit()
    return FetchResult(out, digest, size, receipt.rows, receipt.cursor, since, receipt.id)


def requested_from(session: Session, client: RegistryClient, trust_list: TrustList,
                   agreement_id: str, *, token: Callable[[str, str], str]
                   ) -> tuple[AgreementRow, MemberEntry, str]:
    """An agreement this node requested, its provider's trust-list entry, and a token.

    ``token(provider, agreement_id)`` asks the registry for the token the
    call needs (:meth:`RegistryClient.fetch_token`, :meth:`RegistryClient.counts_token`).

    :raises NotFound: no such agreement here.
    :raises FetchRefused: this node is its provider, the provider is not an
        active member, or the registry gave no token.
    :raises RegistryDown: the registry cannot be reached for the token.
    """
    row = local(session, agreement_id, client.member_id)
    if row.requester != client.member_id:
        raise FetchRefused(f"{agreement_id} is an agreement this node provides, not requested")
    provider = trust_list.member(row.provider)
    if provider is None:
        raise FetchRefused(f"{row.provider} is not an active member in trust list "
                           f"v{trust_list.version}")
    try:
        return row, provider, token(row.provider, agreement_id)
    except TokenError as e:
        if e.error == "request_failed":
            raise RegistryDown(unreachable(client.url, e.description, trust_list,
                                           client.clock())) from e
        raise FetchRefused(f"the registry gave no token: {e.description or e.error}") from e


def _served_index(meta: Mapping[str, Any]) -> int | None:
    """The provider's log index of this package, if its signed descriptor states one."""
    index = meta.get("log_index")
    return index if type(index) is int and index >= 0 else None


def _counts(rows: Mapping[str, Any]) -> dict[str, int]:
    """The row counts of a descriptor as a log leaf keeps them (a few, short names)."""
    return {str(name)[:64]: n for name, n in list(rows.items())[:MAX_LOGGED_RESOURCES]
            if type(n) is int and 0 <= n < 2**53}  # what canonical JSON holds exactly


def _download(http: httpx.Client, url: str, token: str, since: str | None, part: Path,
              on_bytes: Callable[[int], None] | None) -> tuple[str, int]:
    """Stream ``url`` into ``part``; return its SHA-256 and size."""
    params = {"since": since} if since else None
    sha = hashlib.sha256()
    size = 0
    try:
        with http.stream("GET", url, params=params,
                         headers={"Authorization": f"Bearer {token}"}) as response:
            if response.status_code != 200:
                raise FetchRefused(problem_line(response, read_capped(response, MAX_PROBLEM)))
            with part.open("wb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    fh.write(chunk)
                    sha.update(chunk)
                    size += len(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
    except httpx.HTTPError as e:
        raise FetchRefused(f"the transfer from {url} failed ({type(e).__name__}: {e}); "
                           "nothing was kept, run the fetch again") from e
    return sha.hexdigest(), size


def post_for_json(http: httpx.Client, url: str, *, token: str, body: Any, max_bytes: int,
                  who: str) -> Any:
    """POST ``body`` as JSON with a bearer token; the provider's JSON answer.

    :raises FetchRefused: the request failed, the provider refused (its
        problem detail), or the answer is larger than ``max_bytes`` or not JSON.
    """
    try:
        with http.stream("POST", url, json=body,
                         headers={"Authorization": f"Bearer {token}"}) as response:
            content = read_capped(response, max_bytes)
            if response.status_code != 200:
                raise FetchRefused(problem_line(response, content))
    except httpx.HTTPError as e:
        raise FetchRefused(f"the request to {url} failed ({type(e).__name__}: {e})") from e
    if content is None:
        raise FetchRefused(f"{who}'s answer is larger than {max_bytes:,} bytes")
    try:
        return json.loads(content)
    except ValueError as e:
        raise FetchRefused(f"{who}'s answer is not JSON") from e


def problem_line(response: httpx.Response, content: bytes | None) -> str:
    """The provider's refusal in one line (RFC 9457 detail when there is one).

    :param content: the body, or ``None`` if it was longer than :data:`MAX_PROBLEM`.
    """
    body: Any = None
    if content is not None and json_depth(content) <= MAX_JSON_DEPTH:
        try:
            body = json.loads(content)
        except ValueError:
            body = None
    if isinstance(body, dict) and (body.get("detail") or body.get("title")):
        text = str(body.get("detail") or body.get("title"))[:500]
        return f"{text} (HTTP {response.status_code})"
    return f"the provider answered HTTP {response.status_code}"

