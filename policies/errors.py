"""Exceptions raised by :mod:`policies`.

Both carry the dotted path of the offending field (``tiers.generalized.coarsen_time``)
and a plain reason, so a policy file or a request can be corrected without
reading code: ``str(error)`` is ``"<field>: <reason>"``, one line for the CLI
and the ``detail`` of an RFC 9457 problem. They subclass :class:`ValueError`
because every one of them is bad input, never a failure of the engine.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["PolicyError", "TermsRefused", "did_you_mean"]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or ``""`` if none is close."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class PolicyError(ValueError):
    """A policy (or terms) document is malformed, contradictory or unusable.

    :attr:`status` is the HTTP status a service should answer with.
    """

    status = 422

    def __init__(self, field: str, reason: str) -> None:
        """Create the error for ``field`` (a dotted path) failing for ``reason``."""
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TermsRefused(PolicyError):
    """Agreement terms that would widen the owner's policy, or that it does not allow."""

    status = 403
