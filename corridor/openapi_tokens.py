"""What the OpenAPI documents say about access tokens and refusals.

Views that need a registry access token are marked with the scopes they need
(:func:`needs_token`; the registry's ``require_token`` marks its views
itself). Once every blueprint is registered, :func:`document_tokens` declares
the bearer scheme and gives each marked operation its ``security`` and its
401 and 403 answers, and every operation with a path parameter its 404, so
that no real answer hides behind ``default``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask

__all__ = ["SCHEME", "document_tokens", "needs_token", "token_scopes"]

#: Name of the security scheme in ``components.securitySchemes``.
SCHEME = "registryToken"
_SCOPES = "__corridor_token_scopes__"
_CONVERTER = re.compile(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>")

F = TypeVar("F", bound=Callable[..., Any])


def needs_token(*scopes: str) -> Callable[[F], F]:
    """Mark a view as one that needs a registry access token with ``scopes``
    (documentation only: the view still checks the token itself)."""
    def mark(view: F) -> F:
        setattr(view, _SCOPES, tuple(scopes))
        return view

    return mark


def token_scopes(view: Callable[..., Any] | None) -> tuple[str, ...] | None:
    """The scopes a marked view needs, or None if it needs no token."""
    return getattr(view, _SCOPES, None)


def openapi_path(rule: str) -> str:
    """``/agreements/<string:agreement_id>/package`` → ``/agreements/{agreement_id}/package``."""
    return _CONVERTER.sub(r"{\1}", rule)


def document_tokens(app: Flask, api: Any, *, description: str) -> None:
    """Declare the bearer scheme and each operation's security, 401, 403 and 404.

    Call after every blueprint is registered: flask-smorest has then put each
    operation in the spec (apispec keeps them in ``spec._paths`` until it
    renders the document).
    """
    spec = api.spec
    spec.components.security_scheme(SCHEME, {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": description})
    paths: dict[str, dict[str, Any]] = spec._paths
    for rule in app.url_map.iter_rules():
        operations = paths.get(openapi_path(rule.rule))
        if not operations:
            continue
        view = app.view_functions.get(rule.endpoint)
        view_class = getattr(view, "view_class", None)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = operations.get(method.lower())
            if operation is None:
                continue
            handler = getattr(view_class, method.lower(), None) if view_class else view
            responses = operation.setdefault("responses", {})
            if rule.arguments:
                responses.setdefault("404", spec.components.get_ref("response", "NOT_FOUND"))
            scopes = token_scopes(handler)
            if scopes is None:
                continue
            operation["security"] = [{SCHEME: list(scopes)}]
            responses.setdefault("401", spec.components.get_ref("response", "UNAUTHORIZED"))
            responses.setdefault("403", spec.components.get_ref("response", "FORBIDDEN"))
