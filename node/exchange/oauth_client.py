"""The node's OAuth2 client: access tokens from the registry, one call per use.

A node authenticates to the registry with ``client_credentials`` and
``private_key_jwt`` (RFC 7523 §2.2): each request carries a fresh client
assertion signed with the node's own key, so no secret is ever stored or
sent. Tokens are cached per (audience, scope) until 30 seconds before they
expire::

    tokens = TokenClient(registry_url, token_endpoint, "ru-lotl", key,
                         http=httpx.Client(timeout=10), clock=system_clock)
    bearer = tokens.token("cn-ntlnp", "node:read")

The HTTP client and the clock come in through the constructor (tests pass a
real client against a live registry, or one on ``httpx.MockTransport``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from corridor.outbound import read_capped
from corridor.web import MAX_JSON_DEPTH, json_depth
from crypto.keys import SigningKey
from crypto.tokens import ASSERTION_TYPE, make_client_assertion

__all__ = ["REFRESH_MARGIN", "TokenClient", "TokenError"]

#: ``client_assertion_type`` of a JWT client assertion (RFC 7523 §2.2).
#: A cached token is replaced this long before it expires.
REFRESH_MARGIN = timedelta(seconds=30)
#: Lifetime of each client assertion, in seconds (it is used once, at once).
ASSERTION_LIFETIME = 60
#: Largest answer read from the token, introspection or revocation endpoint.
MAX_ANSWER = 64 * 1024


class TokenError(Exception):
    """The registry refused, or could not be asked.

    :ivar error: the OAuth error code (RFC 6749 §5.2, e.g. ``invalid_client``,
        ``invalid_scope``, ``invalid_target``), or ``request_failed`` when the
        registry could not be reached, ``invalid_response`` when its answer
        made no sense.
    :ivar description: the registry's ``error_description``, or our own words.
    :ivar status: the HTTP status, when there was a response.
    """

    def __init__(self, error: str, description: str = "", *, status: int | None = None) -> None:
        """Create the error."""
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class _Cached:
    token: str
    refresh_at: datetime


class TokenClient:
    """Fetches, caches and revokes this member's access tokens."""

    def __init__(
        self,
        registry_url: str,
        token_endpoint: str,
        member_id: str,
        key: SigningKey,
        *,
        http: httpx.Client,
        clock: Callable[[], datetime],
    ) -> None:
        """Create a client.

        :param registry_url: the registry's base URL (revocation is
            ``registry_url + "/oauth/revoke"``).
        :param token_endpoint: the registry's token endpoint URL (from its
            RFC 8414 metadata); it is also the ``aud`` of every assertion.
        :param member_id: our member id: ``iss`` and ``sub`` of the assertions.
        :param key: one of our registered signing keys.
        :param http: the HTTP client to send requests with.
        :param clock: returns the current time as an aware datetime.
        """
        self._revocation_endpoint = registry_url.rstrip("/") + "/oauth/revoke"
        self._introspection_endpoint = registry_url.rstrip("/") + "/oauth/introspect"
        self._token_endpoint = token_endpoint
        self._member_id = member_id
        self._key = key
        self._http = http
        self._clock = clock
        self._cache: dict[tuple[str, str, str], _Cached] = {}
        self._lock = threading.Lock()

    def token(self, audience: str, scope: str, *, agreement: str | None = None) -> str:
        """An access token for ``audience`` (a member id or ``registry``) with ``scope``.

        ``agreement`` (with scope ``agreement:fetch`` or ``agreement:counts``)
        asks for a token that acts under that agreement at its provider ``audience``.

        Served from the cache while more than :data:`REFRESH_MARGIN` of its
        lifetime is left, otherwise fetched from the registry.

        :raises TokenError: the registry refused or could not be reached.
        """
        key = (audience, " ".join(sorted(set(scope.split()))), agreement or "")
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now < cached.refresh_at:
            return cached.token
        form = {"grant_type": "client_credentials", "audience": key[0], "scope": key[1]}
        if agreement:
            form["agreement"] = agreement
        body = self._post(self._token_endpoint, form)
        token, token_type, expires_in = (body.get("access_token"), body.get("token_type"),
                                         body.get("expires_in"))
        if (not isinstance(token, str) or not token or not isinstance(token_type, str)
                or token_type.lower() != "bearer" or not isinstance(expires_in, int)
                or isinstance(expires_in, bool) or expires_in <= 0):
            raise TokenError("invalid_response", "the token response lacks a usable Bearer token")
        with self._lock:
            self._cache[key] = _Cached(token, now + timedelta(seconds=expires_in) - REFRESH_MARGIN)
        return token

    def revoke(self, token: str) -> None:
        """Revoke one of our tokens at the registry (RFC 7009) and forget it.

        :raises TokenError: the registry refused or could not be reached.
        """
        with self._lock:
            for key in [k for k, v in self._cache.items() if v.token == token]:
                del self._cache[key]
        self._post(self._revocation_endpoint, {"token": token, "token_type_hint": "access_token"})

    def introspect(self, token: str) -> dict[str, Any]:
        """Ask the registry about a token this member is the audience of (RFC 7662).

        :returns: the registry's answer; ``active`` is False for a revoked,
            expired or unknown token.
        :raises TokenError: the registry refused or could not be reached.
        """
        return self._post(self._introspection_endpoint,
                          {"token": token, "token_type_hint": "access_token"})

    def _post(self, url: str, form: Mapping[str, str]) -> dict[str, Any]:
        """POST ``form`` with a fresh client assertion; return the JSON object answered."""
        assertion = make_client_assertion(
            self._key, client_id=self._member_id, token_endpoint=self._token_endpoint,
            now=int(self._clock().timestamp()), lifetime=ASSERTION_LIFETIME)
        data = {**form, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
        try:
            with self._http.stream("POST", url, data=data,
                                   headers={"Accept": "application/json"}) as response:
                content = read_capped(response, MAX_ANSWER)
        except httpx.HTTPError as e:
            raise TokenError("request_failed", f"{url}: {e}") from e
        if content is None:
            raise TokenError("invalid_response", f"{url} answered more than {MAX_ANSWER:,} "
                             "bytes", status=response.status_code)
        body: Any
        try:
            if json_depth(content) > MAX_JSON_DEPTH:
                raise ValueError("nested too deeply")
            body = json.loads(content) if content else {}
        except ValueError:
            body = None
        if response.status_code != 200:
            error = body.get("error") if isinstance(body, dict) else None
            description = body.get("error_description") if isinstance(body, dict) else None
            raise TokenError(error if isinstance(error, str) else f"http_{response.status_code}",
                             description if isinstance(description, str) else "",
                             status=response.status_code)
        if not isinstance(body, dict):
            raise TokenError("invalid_response", f"{url} did not answer a JSON object",
                             status=response.status_code)
        return body
