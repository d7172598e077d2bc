"""The node's client for the registry: join, trust list, catalog. Nodes connect outward only.

The HTTP client is injected (``httpx.Client``), so tests run the real logic
against a real registry on loopback, or against ``httpx.MockTransport`` for
failure cases, without patching anything here.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from corridor.errors import Unavailable
from corridor.keystore import load_signing_key
from crypto.canonical import canonical_json
from crypto.jws import sign_compact
from crypto.keys import KeySet, SigningKey
from crypto.tokens import (
    COUNTS_SCOPE,
    FETCH_SCOPE,
    LINKS_SCOPE,
    OVERLAP_SCOPE,
    REGISTRY_AUDIENCE,
    WITNESS_SCOPE,
)
from crypto.trustlist import TrustList
from node.exchange.oauth_client import TokenClient
from node.settings import NodeSettings

JOIN_TYP = "corridor-join+jwt"
KEY_PROOF_TYP = "corridor-key-proof+jwt"
#: Scope of the token that reads and submits this node's checkpoints at the registry.


class RegistryError(Exception):
    """The registry refused a request; the message is its explanation.

    :ivar status: the HTTP status of the refusal (``None`` if there was no answer).
    :ivar detail: the problem document's ``detail`` as the registry wrote it, if any.
    """

    def __init__(self, message: str, status: int | None = None, *,
                 detail: str | None = None) -> None:
        """Create the error."""
        super().__init__(message)
        self.status = status
        self.detail = detail


class RegistryUnreachable(RegistryError):
    """The registry could not be reached at all."""


class RegistryDown(Unavailable):
    """A call needs the registry (a token, the catalog), and it cannot be reached."""

    title = "Registry unreachable"


def unreachable(url: str, cause: object, trust_list: TrustList | None, now: datetime) -> str:
    """What a registry outage means for this node, in words (``cause``: the network error).

    Agreements in force keep working while the stored trust list is valid: a
    provider checks partners' tokens against it. What needs the registry —
    a new token, a request, the catalog — waits until it is back.
    """
    why = str(cause).rsplit("] ", 1)[-1].strip().rstrip(")") or "no answer"
    text = f"the registry at {url} cannot be reached ({why})"
    if trust_list is None:
        return f"{text}, and this node has no trust list yet: try again when it is back"
    until = f"{trust_list.expires_at:%Y-%m-%d %H:%M} UTC"
    if trust_list.is_expired(now):
        return (f"{text}, and this node's trust list (version {trust_list.version}) expired "
                f"on {until}: it refuses partners' tokens until it can fetch a new one")
    return (f"{text}. Agreements in force keep working at this node until its trust list "
            f"(version {trust_list.version}) expires on {until}; a new token, request or "
            "catalog search needs the registry: try again when it is back")


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
            raise RegistryError(_explain(response), response.status_code,
                                detail=_detail(response))
        try:
            return response.json()
        except ValueError as e:
            raise RegistryError(f"the registry answered HTTP {response.status_code} without "
                                "JSON", response.status_code) from e

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


    # --- agreements (DESIGN.md §6) ------------------------------------------------------

    def file_request(self, event_jws: str) -> Mapping[str, Any]:
        """File a signed request event; the registry answers the agreement as stored."""
        result: Mapping[str, Any] = self._call(
            "POST", "/agreements", json={"event": event_jws},
            headers=self._bearer("agreements:write"))
        return result

    def agreements(self, *, role: str | None = None) -> list[Mapping[str, Any]]:
        """Every agreement this member is a party to (as ``role``, if given)."""
        params = {"role": role} if role else {}
        result = self._call("GET", "/agreements", params=params,
                            headers=self._bearer("agreements:read"))
        return list(result["agreements"])

    def agreement(self, agreement_id: str) -> Mapping[str, Any]:
        """One agreement with its signed history."""
        result: Mapping[str, Any] = self._call(
            "GET", f"/agreements/{agreement_id}", headers=self._bearer("agreements:read"))
        return result

    def push_events(self, agreement_id: str, events: list[str]) -> Mapping[str, Any]:
        """Send this member's signed events of one agreement."""
        result: Mapping[str, Any] = self._call(
            "POST", f"/agreements/{agreement_id}/events", json={"events": events},
            headers=self._bearer("agreements:write"))
        return result

    def fetch_token(self, provider: str, agreement_id: str) -> str:
        """A token to fetch ``agreement_id``'s package from ``provider``."""
        return self.tokens.token(provider, FETCH_SCOPE, agreement=agreement_id)

    def counts_token(self, provider: str, agreement_id: str) -> str:
        """A token to ask ``provider`` for signed counts under ``agreement_id``."""
        return self.tokens.token(provider, COUNTS_SCOPE, agreement=agreement_id)

    def overlap_token(self, provider: str, agreement_id: str) -> str:
        """A token to run the private overlap count with ``provider`` under ``agreement_id``."""
        return self.tokens.token(provider, OVERLAP_SCOPE, agreement=agreement_id)

    def links_token(self, member: str) -> str:
        """A token to deliver match-ledger messages to ``member``'s node."""
        return self.tokens.token(member, LINKS_SCOPE)

    # --- witnessing the exchange log (DESIGN.md §10) -------------------------------------

    def witnessed_checkpoint(self) -> Mapping[str, Any] | None:
        """The newest checkpoint of this node the registry cosigned (``note``, ``size``).

        ``None`` when it has cosigned none yet (HTTP 404).
        """
        try:
            result: Mapping[str, Any] = self._call(
                "GET", f"/witness/{self.member_id}", headers=self._bearer(WITNESS_SCOPE))
        except RegistryError as e:
            if e.status == 404:
                return None
            raise
        return result

    def submit_checkpoint(self, note: str, old_size: int, proof: list[bytes]) -> str:
        """Ask the registry to cosign ``note``, consistent with its last cosigned ``old_size``.

        ``proof`` is the RFC 9162 consistency proof from ``old_size`` to the
        note's size (empty when ``old_size`` is 0). Returns the cosigned note.

        :raises RegistryError: the registry refused (409: not consistent; the
            problem's ``detail`` says why) or could not be asked.
        """
        result = self._call(
            "POST", f"/witness/{self.member_id}",
            json={"note": note, "old_size": old_size,
                  "proof": [base64.b64encode(h).decode("ascii") for h in proof]},
            headers=self._bearer(WITNESS_SCOPE))
        cosigned = result.get("note") if isinstance(result, dict) else None
        if not isinstance(cosigned, str):
            raise RegistryError("the registry's witness answered without a note")
        return cosigned


def _detail(response: httpx.Response) -> str | None:
    """The ``detail`` of a problem+json body, if there is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else None


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


def client_for(settings: NodeSettings) -> RegistryClient:
    """The registry client of a node, with its active key and the system clock.

    :raises RegistryError: the node has no registry configured.
    :raises corridor.keystore.KeystoreError: the node's key cannot be read.
    """
    if not settings.registry_url:
        raise RegistryError("this node has no registry; give --registry and --anchor at "
                            "'corridor node init'")
    return RegistryClient(settings.registry_url, member_id=settings.member_id,
                          key=load_signing_key(settings.keys_dir),
                          http=httpx.Client(timeout=30), clock=lambda: datetime.now(UTC))
