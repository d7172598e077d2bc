"""Exceptions raised by :mod:`crypto`.

Verification failures are deliberately opaque: whatever check failed, the
caller sees one :class:`InvalidSignature` whose ``str()`` is a fixed generic
message. The precise cause is kept in :attr:`InvalidSignature.reason` so it can
be written to a server log, never into a response (a distinguishable error is
an oracle for an attacker probing the verifier).
"""

from __future__ import annotations

__all__ = [
    "SIGNATURE_REJECTED",
    "TOKEN_REJECTED",
    "CryptoError",
    "InvalidKey",
    "InvalidSignature",
]

#: Public message of every JWS / signature verification failure.
SIGNATURE_REJECTED = "signature verification failed"
#: Public message of every JWT failure, signature or claims alike.
TOKEN_REJECTED = "token rejected"  # noqa: S105 - a message, not a secret


class CryptoError(Exception):
    """Root of every exception raised by :mod:`crypto`."""


class InvalidSignature(CryptoError):
    """A signature, JWS or JWT was rejected, for whatever reason.

    ``str(error)`` is always the generic ``message`` given at construction
    (one of :data:`SIGNATURE_REJECTED` or :data:`TOKEN_REJECTED`); the actual
    cause is in :attr:`reason`, which is meant for server logs only.
    """

    def __init__(self, reason: str, *, message: str = SIGNATURE_REJECTED) -> None:
        """Create the error.

        :param reason: why verification failed; for logs, never for clients.
        :param message: the generic public message.
        """
        super().__init__(message)
        #: The real cause of the failure (log it, do not show it).
        self.reason = reason


class InvalidKey(CryptoError):
    """Key material could not be loaded (wrong type, malformed, or unsafe)."""
