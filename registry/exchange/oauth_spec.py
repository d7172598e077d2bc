"""The registry's OAuth2 endpoints in its OpenAPI document.

They are plain Flask routes run by authlib (:mod:`registry.exchange.oauth`),
not flask-smorest views, so they are described here by hand: the form each
takes (RFC 6749 §4.4, RFC 7523 client assertions, RFC 7662, RFC 7009) and what
each answers. The token endpoint answers errors in RFC 6749 §5.2's own JSON;
introspection and revocation in problem+json with the same ``error`` members.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from corridor.web import PROBLEM_JSON, ProblemSchema
from crypto.tokens import ASSERTION_TYPE

__all__ = ["document_oauth"]

_FORM = "application/x-www-form-urlencoded"
_CLIENT_AUTH = {
    "client_assertion_type": {"type": "string", "enum": [ASSERTION_TYPE]},
    "client_assertion": {"type": "string", "description": "A JWT signed with one of the "
                         "member's keys (RFC 7523 §3), aud = this token endpoint, single use."},
}
_OAUTH_ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string"}, "error_description": {"type": "string"}}}
_PROBLEM = ProblemSchema  # the marshmallow plugin turns it into its component reference


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"required": True, "content": {_FORM: {"schema": {
        "type": "object", "properties": {**properties, **_CLIENT_AUTH},
        "required": [*required, *_CLIENT_AUTH]}}}}


def _refused(content_type: str, schema: Any) -> dict[str, Any]:
    # Before any OAuth2 handling, every request's path, query and form are checked (NUL
    # characters, corridor.web.check_body): those refusals are problem documents.
    malformed = {content_type: {"schema": schema}, PROBLEM_JSON: {"schema": _PROBLEM}}
    return {
        "400": {"description": "A malformed request (invalid_request, unsupported_grant_type, "
                               "invalid_scope).", "content": malformed},
        "401": {"description": "The client assertion does not authenticate an active member "
                               "(invalid_client).", "content": {content_type: {"schema": schema}}},
        "413": {"description": "The body is larger than the registry accepts.",
                "content": {PROBLEM_JSON: {"schema": _PROBLEM}}},
    }


def document_oauth(app: Flask, spec: Any) -> None:
    """Add ``/oauth/token``, ``/oauth/introspect``, ``/oauth/revoke`` and the RFC 8414
    metadata of ``app`` to ``spec`` (flask-smorest's ``APISpec``, which takes each
    path as the app's URL rule)."""
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    tag = "oauth"
    spec.tag({"name": tag, "description": "OAuth2 client credentials with private_key_jwt "
                                          "(RFC 6749, RFC 7523, RFC 7662, RFC 7009)."})
    spec.path(rule=rules["/oauth/token"], operations={"post": {
        "tags": [tag], "summary": "Issue an access token (client_credentials, private_key_jwt).",
        "requestBody": _form({
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
            "audience": {"type": "string", "description": "A member id, or 'registry'."},
            "scope": {"type": "string", "description": "Space-separated scopes."},
            "agreement": {"type": "string", "description": "For agreement:* scopes: the "
                                                           "agreement the token acts under."},
        }, ["grant_type", "audience", "scope"]),
        "responses": {
            "200": {"description": "The token (RFC 6749 §5.1).", "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["access_token", "token_type", "expires_in"],
                    "properties": {"access_token": {"type": "string"},
                                   "token_type": {"type": "string"},
                                   "expires_in": {"type": "integer"},
                                   "scope": {"type": "string"}}}}}},
            **_refused("application/json", _OAUTH_ERROR),
        }}})
    spec.path(rule=rules["/oauth/introspect"], operations={"post": {
        "tags": [tag], "summary": "Is this token active? (RFC 7662; only its audience or "
                                  "its holder may ask).",
        "requestBody": _form({"token": {"type": "string"},
                              "token_type_hint": {"type": "string"}}, ["token"]),
        "responses": {
            "200": {"description": "The token's state (RFC 7662 §2.2).", "content": {
                "application/json": {"schema": {"type": "object", "required": ["active"],
                                                "properties": {"active": {"type": "boolean"}}}}}},
            **_refused(PROBLEM_JSON, _PROBLEM),
        }}})
    spec.path(rule=rules["/oauth/revoke"], operations={"post": {
        "tags": [tag], "summary": "Revoke one of the caller's tokens (RFC 7009).",
        "requestBody": _form({"token": {"type": "string"},
                              "token_type_hint": {"type": "string"}}, ["token"]),
        "responses": {
            "200": {"description": "Revoked, or never a token of the caller (RFC 7009 §2.2)."},
            **_refused(PROBLEM_JSON, _PROBLEM),
        }}})
    spec.path(rule=rules["/.well-known/oauth-authorization-server"], operations={"get": {
        "tags": [tag], "summary": "Authorization server metadata (RFC 8414).",
        "responses": {"200": {"description": "The metadata.", "content": {
            "application/json": {"schema": {"type": "object", "required": [
                "issuer", "token_endpoint"]}}}}}}})
