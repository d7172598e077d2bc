"""Checking a signed counts result offline: signature, signer, and what it claims to be.

A counts result file is JSON: ``{"result": {...}, "jws": "<header>..<signature>"}``.
The JWS is detached (RFC 7515 Appendix F) over the RFC 8785 canonical JSON
of ``result``, signed by the provider's node key, with ``typ``
:data:`COUNTS_TYP`. :func:`check_counts` verifies it with the keys the trust
list holds for the provider the result names, then what the caller expects
(agreement, recipient, protocol), and names the first failure. It never
raises for a bad document: the report says what failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crypto.canonical import canonical_json
from crypto.errors import InvalidSignature
from crypto.jws import verify_detached
from crypto.keys import KeySet
from crypto.trustlist import TrustList
from policies.suppression import Released

__all__ = ["COUNTS_TYP", "MAX_RESULT_BYTES", "RESULT_TYPE", "CountsReport", "check_counts",
           "read_counts"]

#: ``typ`` of a counts result's JWS.
COUNTS_TYP = "corridor-counts+jws"
#: ``type`` member of a counts result document.
RESULT_TYPE = "corridor.counts"
#: Largest counts result accepted, in bytes (a year of months on a 0.1° grid is far less).
MAX_RESULT_BYTES = 16 * 1024 * 1024
#: Largest detached JWS (header and signature only).
_MAX_JWS = 4096


@dataclass
class CountsReport:
    """What :func:`check_counts` found: the passed checks, or the first failure."""

    checks: list[str] = field(default_factory=list)
    failure: str | None = None
    result: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return self.failure is None and self.result is not None

    def released(self) -> Released:
        """The verified rows (only after a passing check)."""
        assert self.ok and self.result is not None
        return Released.from_json(self.result)


class _Failed(Exception):
    pass


def read_counts(path: Path) -> Any:
    """The parsed JSON of a counts result file.

    :raises ValueError: unreadable, too large, or not JSON.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_RESULT_BYTES + 1)
    except OSError as e:
        raise ValueError(f"{path.name}: cannot read ({e.strerror or e})") from e
    if len(data) > MAX_RESULT_BYTES:
        raise ValueError(f"{path.name}: larger than {MAX_RESULT_BYTES:,} bytes")
    try:
        return json.loads(data)
    except ValueError as e:
        raise ValueError(f"{path.name}: not JSON ({e})") from e


def check_counts(document: Any, trust_list: TrustList | KeySet, *, agreement: str | None = None,
                 recipient: str | None = None, protocol: Mapping[str, Any] | None = None,
                 on_check: Callable[[str], None] | None = None) -> CountsReport:
    """Verify a counts result document (as :func:`read_counts` returns it).

    :param trust_list: the trust list (the provider the result names must be
        an active member; its keys verify), or the provider's own keys.
    :param agreement, recipient: when given, the result must name exactly these.
    :param protocol: when given, the result's protocol must equal it.
    """
    report = CountsReport()

    def passed(line: str) -> None:
        report.checks.append(line)
        if on_check is not None:
            on_check(line)

    try:
        result = _verified(document, trust_list, passed)
        for name, expected in (("agreement", agreement), ("recipient", recipient)):
            if expected is not None and result.get(name) != expected:
                raise _Failed(f"the result is for {name} {result.get(name)!r}, not {expected!r}")
        if agreement or recipient:
            passed("it is the expected agreement's result, for the expected recipient")
        if protocol is not None and result.get("protocol") != dict(protocol):
            raise _Failed(f"the result was computed with protocol {result.get('protocol')}, "
                          f"not {dict(protocol)}")
        try:
            Released.from_json(result)
        except ValueError as e:
            raise _Failed(f"the signed rows are malformed: {e}") from e
        passed(f"rows: {len(result['counts'])} count rows, {len(result['effort'])} effort rows")
    except _Failed as e:
        report.failure = str(e)
        return report
    report.result = result
    return report


def _verified(document: Any, trust_list: TrustList | KeySet,
              passed: Callable[[str], None]) -> dict[str, Any]:
    if not isinstance(document, dict) or set(document) != {"result", "jws"}:
        raise _Failed("not a counts result: expected exactly the members 'result' and 'jws'")
    result, jws = document["result"], document["jws"]
    if not isinstance(result, dict) or result.get("type") != RESULT_TYPE:
        raise _Failed(f"not a counts result: 'result.type' is not {RESULT_TYPE!r}")
    if not isinstance(jws, str) or len(jws) > _MAX_JWS:
        raise _Failed("the signature is missing or oversize")
    provider = result.get("provider")
    if isinstance(trust_list, KeySet):
        keys = trust_list
    else:
        member = trust_list.member(provider) if isinstance(provider, str) else None
        if member is None:
            raise _Failed(f"the provider {str(provider)[:40]!r} is not an active member in "
                          f"trust list v{trust_list.version}")
        keys = member.keys
    try:
        payload = canonical_json(result)
    except (TypeError, ValueError) as e:
        raise _Failed(f"the result cannot be canonicalized ({e})") from e
    try:
        verified = verify_detached(jws, payload, keys, expected_typ=COUNTS_TYP,
                                   max_size=_MAX_JWS)
    except InvalidSignature as e:
        raise _Failed(f"the signature does not verify with {provider}'s keys") from e
    passed(f"signature by {provider} (key {verified.kid}) over the canonical result")
    return result
