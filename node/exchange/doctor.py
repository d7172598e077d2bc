"""The node's own ``doctor`` checks: its trust list and its clock against the registry's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from corridor.anchor import AnchorError
from corridor.cli_context import ServiceContext
from corridor.doctor import Finding, clock_finding, from_check
from corridor.health import trust_list_check
from crypto.trustlist import TrustListRejected
from node.exchange.trust_store import TrustStore
from node.settings import NodeSettings

__all__ = ["node_findings"]


def node_findings(context: ServiceContext[Any], now: datetime | None = None) -> list[Finding]:
    """The trust list is held, verifies, and is not about to expire; the clock agrees."""
    settings: NodeSettings = context.read_settings()
    moment = now or datetime.now(UTC)
    if settings.registry_url is None:
        return [Finding("registry", "warn", "the node has joined no registry",
                        "run 'corridor node join' with the registry's URL and anchor")]
    findings = [_trust_list(settings, moment)]
    with httpx.Client(timeout=5) as http:
        findings.append(clock_finding(settings.registry_url, http))
    return findings


def _trust_list(settings: NodeSettings, now: datetime) -> Finding:
    fix = "run 'corridor node sync'; if it fails, check that the registry is reachable"
    try:
        trust_list = TrustStore(settings.directory).current()
    except AnchorError as e:
        return Finding("trust list", "fail", str(e), "install the registry's anchor.json again")
    except TrustListRejected as e:
        return Finding("trust list", "fail", f"the stored trust list does not verify "
                                             f"against the pinned anchor: {e}", fix)
    check = trust_list_check(trust_list.version if trust_list else None,
                             trust_list.expires_at if trust_list else None,
                             trust_list.issued_at if trust_list else None, now)
    if not check.ok or trust_list is None:
        return from_check("trust list", check, fix)
    left = trust_list.expires_at - now
    if left < (trust_list.expires_at - trust_list.issued_at) / 4:
        return Finding("trust list", "warn", f"version {trust_list.version} expires in "
                                             f"{_hours(left.total_seconds())}: the node has "
                                             "not refreshed it", fix)
    return Finding("trust list", "ok", f"version {trust_list.version}, expires "
                                       f"{trust_list.expires_at:%Y-%m-%d %H:%M} UTC")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
