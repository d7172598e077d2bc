"""The node's client for the registry: join, trust list, catalog. Nodes connect outward only.

The HTTP client is injected (``httpx.Client``), so tests run the real logic
against a real registry on loopback, or against ``httpx.MockTransport`` for
failure cases, without patching anything here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from crypto.canonical import canonical_json
from crypto.jws import sign_compact
from crypto.keys import KeySet, SigningKey
from node.oauth_client import TokenClient

JOIN_TYP = "corridor-join+jwt"
KEY_PROOF_TYP = "corridor-key-proof+jwt"
REGISTRY_AUDIENCE = "registry"


class RegistryError(Exception):
    """The registry refused a request; the message is its explanation."""


class RegistryUnreachable(RegistryError):
    """The registry could not be reached at all."""


class RegistryClient:
    """Calls a registry on behalf of one member node."""

    def __init__(self, registry_url: str, *, member_id: str, key: SigningKey,
                 http: httpx.Client, clock: Callable[[], datetime]) -> None:
        self.url = registry_url.rstrip("/")
        self.member_id = member_id
        self.key = key
        self.http = http
        self.clock = clock
        self.tokens = TokenClient(self.url, f"{self.url}/oauth/token", member_id, key,
                                  http=http, clock=clock)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, self.url + path, **kwargs)
        except httpx.TransportError as e:
            raise RegistryUnreachable(f"registry {self.url} is unreachable ({e})") from e
        if response.status_code >= 400:
            raise RegistryError(_explain(response))
        return response.json()

    def join(self, *, name: str, country: str, node_url: str, keys: KeySet) -> Mapping[str, Any]:
        """File a membership request signed by the node's key."""
        claims = {"member_id": self.member_id, "name": name, "country": country,
                  "node_url": node_url, "keys": keys.to_jwks(),
                  "iat": int(self.clock().timestamp()), "nonce": secrets.token_urlsafe(12)}
        request = sign_compact(canonical_json(claims), self.key, typ=JOIN_TYP)
        result: Mapping[str, Any] = self._call("POST", "/members", json={"request": request})
        return result

    def trust_list(self) -> str:
        """The registry's current trust list (a JWS; the caller verifies it)."""
        return str(self._call("GET", "/trust-list")["jws"])

    def _bearer(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.token(REGISTRY_AUDIENCE, scope)}"}

    def publish(self, entry_jws: str) -> Mapping[str, Any]:
        """Publish a signed catalog entry."""
        result: Mapping[str, Any] = self._call(
            "POST", "/catalog", json={"entry": entry_jws}, headers=self._bearer("catalog:write"))
        return result

    def add_key(self, new_key: SigningKey) -> Mapping[str, Any]:
        """Register a successor key (token from the current key; proof from the new one)."""
        proof = sign_compact(canonical_json({
            "member_id": self.member_id, "kid": new_key.kid,
            "iat": int(self.clock().timestamp())}), new_key, typ=KEY_PROOF_TYP)
        result: Mapping[str, Any] = self._call(
            "POST", "/members/me/keys", json={"jwk": new_key.public_key.to_jwk(), "proof": proof},
            headers=self._bearer("keys:write"))
        return result

    def retire_key(self, kid: str) -> Mapping[str, Any]:
        """Retire one of this member's keys at the registry."""
        result: Mapping[str, Any] = self._call(
            "DELETE", f"/members/me/keys/{kid}", headers=self._bearer("keys:write"))
        return result

    def search(self, **params: Any) -> Mapping[str, Any]:
        """Search the catalog (parameters as the registry's GET /catalog takes them)."""
        query = {k: v for k, v in params.items() if v not in (None, "")}
        result: Mapping[str, Any] = self._call("GET", "/catalog", params=query,
                                               headers=self._bearer("catalog:read"))
        return result


def _explain(response: httpx.Response) -> str:
    """One line from a problem+json or OAuth error body."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error_description") or body.get("title") \
            or body.get("error")
        if detail:
            return f"{detail} (HTTP {response.status_code})"
    return f"HTTP {response.status_code}"
