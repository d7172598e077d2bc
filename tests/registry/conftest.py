"""Registry fixtures: an initialised registry on the test database, served on loopback.

``registry`` is a :class:`RegistryHarness`: a registry directory made by
``init_registry`` (its database is the test database, SQLite or PostgreSQL),
its app with a settable clock, served over real HTTP, plus helpers that
create and admit members through :mod:`registry.membership.members` and publish the
trust list as the operator's CLI does, and that forge client assertions
byte by byte the way an attacker would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy.orm import Session

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key
from crypto.jws import sign_compact
from crypto.keys import KeySet, SigningKey
from crypto.tokens import ASSERTION_TYPE, CLIENT_ASSERTION_TYP, new_jti
from registry.app import create_app
from registry.cli import init_registry
from registry.exchange.oauth import init_oauth
from registry.membership.members import (
    JOIN_TYP,
    record_join_request,
    set_status,
    verify_join_request,
)
from registry.membership.trust import publish_trust_list
from registry.models import MEMBER_ACTIVE, MEMBER_PENDING
from registry.settings import RegistrySettings


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge_jws(header: dict[str, Any], payload: dict[str, Any] | bytes, *,
              key: SigningKey | None = None, hmac_secret: bytes | None = None) -> str:
    """A compact JWS built by hand: Ed25519-signed by ``key``, HS256 under ``hmac_secret``,
    or with an empty signature (``alg`` none) when neither is given."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}"
    if key is not None:
        signature = key.sign(signing_input.encode())
    elif hmac_secret is not None:
        signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    else:
        signature = b""
    return f"{signing_input}.{b64(signature)}"


class MutableClock:
    """The registry's clock: a fixed instant that tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.current += timedelta(seconds=seconds)

    def epoch(self) -> int:
        """Now, in seconds since the epoch."""
        return int(self.current.timestamp())


@dataclass(frozen=True)
class Institution:
    """A member institution as the tests know it: its id and its private key."""

    member_id: str
    key: SigningKey


class _DeferredApp:
    """A WSGI app whose target is set once the server's URL is known."""

    app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


@dataclass
class RegistryHarness:
    """A running registry and the tools to exercise it."""

    settings: RegistrySettings
    app: Flask
    url: str
    clock: MutableClock
    key: SigningKey
    http: httpx.Client
    sessions: Callable[[], Session]
    members: dict[str, Institution] = field(default_factory=dict)

    forge = staticmethod(forge_jws)

    @property
    def token_endpoint(self) -> str:
        """The token endpoint URL (and ``aud`` of client assertions)."""
        return self.settings.token_endpoint

    @property
    def keys(self) -> KeySet:
        """The registry's public keys, as a node pins them."""
        return KeySet([self.key.public_key])

    # -- members, through registry.membership.members and registry.membership.trust ------------

    def add_member(self, member_id: str, *, status: str = MEMBER_ACTIVE) -> Institution:
        """File a signed join request for ``member_id``, then set its status."""
        key = SigningKey.generate()
        now = self.clock()
        payload = {
            "member_id": member_id, "name": f"Institution {member_id}",
            "country": member_id[:2].upper(), "node_url": "http://127.0.0.1:9",
            "keys": KeySet([key.public_key]).to_jwks(), "iat": self.clock.epoch(),
        }
        jws = sign_compact(json.dumps(payload).encode(), key, typ=JOIN_TYP)
        with self.sessions() as session:
            record_join_request(session, verify_join_request(jws, now=now, development=True), now)
            session.commit()
        member = Institution(member_id, key)
        self.members[member_id] = member
        if status != MEMBER_PENDING:
            self.set_status(member_id, status)
        return member

    def set_status(self, member_id: str, status: str) -> None:
        """Admit or suspend a member and publish the trust list, like the operator's CLI."""
        now = self.clock()
        with self.sessions() as session:
            set_status(session, member_id, status, now)
            publish_trust_list(session, key=self.key, registry_url=self.settings.issuer,
                               ttl=self.settings.trust_list_ttl, now=now,
                               reason=f"{member_id} {status}")
            session.commit()

    # -- client assertions -------------------------------------------------

    def assertion_claims(self, member: Institution, **changes: Any) -> dict[str, Any]:
        """Valid assertion claims for ``member``; a change to None deletes the claim."""
        now = self.clock.epoch()
        claims: dict[str, Any] = {
            "iss": member.member_id, "sub": member.member_id, "aud": self.token_endpoint,
            "iat": now, "exp": now + 60, "jti": new_jti(),
        }
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def assertion(self, member: Institution, *, key: SigningKey | None = None,
                  header: dict[str, Any] | None = None, **changes: Any) -> str:
        """A hand-built assertion for ``member`` signed by ``key`` (default: the member's).

        ``header`` changes the protected header (a value of None deletes a member).
        """
        signer = key or member.key
        protected: dict[str, Any] = {"alg": "EdDSA", "kid": signer.kid,
                                     "typ": CLIENT_ASSERTION_TYP}
        for name, value in (header or {}).items():
            if value is None:
                protected.pop(name, None)
            else:
                protected[name] = value
        return forge_jws(protected, self.assertion_claims(member, **changes), key=signer)

    # -- HTTP ---------------------------------------------------------------

    def post(self, path: str, form: dict[str, str], **kwargs: Any) -> httpx.Response:
        """POST a form to the registry."""
        return self.http.post(path, data=form, **kwargs)

    def request_token(self, member: Institution, *, audience: str = "registry",
                      scope: str = "catalog:read", assertion: str | None = None,
                      **extra: str) -> httpx.Response:
        """A client_credentials token request authenticated by ``assertion``."""
        form = {"grant_type": "client_credentials", "audience": audience, "scope": scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion or self.assertion(member)}
        form.update(extra)
        return self.post("/oauth/token", form)

    def token(self, member: Institution, audience: str = "registry",
              scope: str = "catalog:read") -> str:
        """An access token (the request must succeed)."""
        response = self.request_token(member, audience=audience, scope=scope)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def introspect(self, caller: Institution, token: str) -> httpx.Response:
        """RFC 7662 introspection by ``caller``."""
        return self.post("/oauth/introspect", {
            "token": token, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(caller)})

    def revoke(self, caller: Institution, token: str) -> httpx.Response:
        """RFC 7009 revocation by ``caller``."""
        return self.post("/oauth/revoke", {
            "token": token, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(caller)})


@pytest.fixture
def registry(tmp_path: Path, database_url: str,
             live_server: Callable[[object], Any]) -> Iterator[RegistryHarness]:
    """An initialised registry (development mode) on the test database, served on loopback."""
    deferred = _DeferredApp()
    server = live_server(deferred)
    settings = init_registry(tmp_path / "registry", "Test Registry", server.url,
                             development=True, database_url=database_url)
    clock = MutableClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app({"CORRIDOR_SETTINGS": settings, "CORRIDOR_CLOCK": clock, "TESTING": True})
    init_oauth(app)  # idempotent: a no-op once create_app wires it
    deferred.app = app
    engine = make_engine(settings.database_url)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield RegistryHarness(settings=settings, app=app, url=server.url, clock=clock,
                              key=load_signing_key(settings.keys_dir), http=http,
                              sessions=make_session_factory(engine))
    engine.dispose()
    app.extensions["corridor_db"][0].dispose()
