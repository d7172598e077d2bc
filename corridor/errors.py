"""The one root of Corridor's errors, and the HTTP-status classes the services build on.

Foundations (:mod:`crypto`, :mod:`policies`) keep their own roots, since they
import nothing of ours; the services wrap those at their boundary. Errors that
describe another service's answer (the node's ``RegistryError`` and
``TokenError``, which carry the registry's status) are not ours to report with
our status, and are wrapped likewise where they are caught.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "Conflict",
    "CorridorError",
    "Forbidden",
    "NotFound",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
]


class CorridorError(Exception):
    """Root of every error a Corridor service or tool reports, over HTTP or on the CLI.

    ``str(error)`` (and :attr:`detail`) says what went wrong and what to do;
    the class says the HTTP status and title. A :attr:`public` ``False`` class
    is an operator's error (its detail may name files or keys): over HTTP the
    client gets the status and title only, the log gets the detail.
    """

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    type_slug: ClassVar[str] = "about:blank"
    public: ClassVar[bool] = True

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class BadRequest(CorridorError):
    """The request is malformed."""

    status = 400
    title = "Bad request"


class Unauthorized(CorridorError):
    """Credentials are missing or invalid."""

    status = 401
    title = "Unauthorized"


class Forbidden(CorridorError):
    """The caller is known but may not do this."""

    status = 403
    title = "Forbidden"


class NotFound(CorridorError):
    """No such resource (or the caller may not know it exists)."""

    status = 404
    title = "Not found"


class TooManyRequests(CorridorError):
    """Refused for now: too many attempts (RFC 6585 §4); ``Retry-After`` says how long."""

    status = 429
    title = "Too many requests"


class Conflict(CorridorError):
    """The request conflicts with the current state."""

    status = 409
    title = "Conflict"


class Unavailable(CorridorError):
    """The service cannot do this now (its keys, anchor or trust list are not usable)."""

    status = 503
    title = "Service unavailable"

