"""``reconcile``: packages served vs received vs tokens issued, on hand-built logs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from audit.checks import reconcile
from corridor.tlog import LogEntry, leaf_bytes
from crypto.merkle import leaf_hash

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def _log(*events: tuple[str, dict[str, Any]]) -> list[LogEntry]:
    entries = []
    for index, (type_, fields) in enumerate(events):
        leaf = leaf_bytes(index, type_, T0, fields)
        entries.append(LogEntry(index, leaf.decode(), leaf_hash(leaf)))
    return entries


def _token(jti: str, agreement: str = "cn-fesp.1") -> tuple[str, dict[str, Any]]:
    return ("token.issued", {"jti": jti, "member": "cn-fesp", "audience": "ru-lotl",
                             "scope": "agreement:fetch", "agreement": agreement})


def _served(jti: str, digest: str = "d1", kind: str = "package") -> tuple[str, dict[str, Any]]:
    return (f"{kind}.served", {"member": "cn-fesp", "agreement": "cn-fesp.1",
                               "token_jti": jti, "content_sha256": digest})


def _received(served_index: int, digest: str = "d1", kind: str = "package"
              ) -> tuple[str, dict[str, Any]]:
    return (f"{kind}.received", {"member": "ru-lotl", "agreement": "cn-fesp.1",
                                 "served_index": served_index, "content_sha256": digest})


def test_a_complete_exchange_reconciles() -> None:
    result = reconcile(_log(_token("t1")),
                       {"ru-lotl": _log(("request.received", {}), _served("t1")),
                        "cn-fesp": _log(_received(1))})
    assert (result.served, result.received, result.tokens, result.matched) == (1, 1, 1, 1)
    assert result.ok and not result.mismatches


def test_a_deleted_receipt_is_found() -> None:
    result = reconcile(_log(_token("t1")),
                       {"ru-lotl": _log(_served("t1")), "cn-fesp": _log()})
    assert not result.ok
    assert [m.kind for m in result.mismatches] == ["missing receipt"]
    assert "ru-lotl entry 0" in result.mismatches[0].where


def test_a_digest_mismatch_is_found() -> None:
    result = reconcile(_log(_token("t1")),
                       {"ru-lotl": _log(_served("t1", "d1")), "cn-fesp": _log(_received(0, "d2"))})
    assert [m.kind for m in result.mismatches] == ["digest mismatch"]


def test_a_package_served_without_a_token_is_found() -> None:
    result = reconcile(_log(), {"ru-lotl": _log(_served("t-forged")),
                                "cn-fesp": _log(_received(0))})
    assert [m.kind for m in result.mismatches] == ["served without token"]


def test_a_token_for_another_agreement_is_a_mismatch() -> None:
    result = reconcile(_log(_token("t1", agreement="cn-fesp.2")),
                       {"ru-lotl": _log(_served("t1")), "cn-fesp": _log(_received(0))})
    assert [m.kind for m in result.mismatches] == ["token mismatch"]


def test_an_unused_token_is_listed_but_not_a_failure() -> None:
    result = reconcile(_log(_token("t1"), _token("t2")),
                       {"ru-lotl": _log(_served("t1")), "cn-fesp": _log(_received(0))})
    assert result.ok
    assert [(m.kind, m.serious) for m in result.mismatches] == [("token never used", False)]


def test_a_token_the_node_refused_is_not_called_unused() -> None:
    refusal = ("fetch.refused", {"member": "cn-fesp", "agreement": "cn-fesp.1", "status": 409,
                                 "reason": "agreement cn-fesp.1 is approved, not active",
                                 "token_jti": "t2"})
    result = reconcile(_log(_token("t1"), _token("t2")),
                       {"ru-lotl": _log(_served("t1"), refusal), "cn-fesp": _log(_received(0))})
    assert result.ok
    [note] = result.mismatches
    assert (note.kind, note.where, note.serious) == ("token refused", "ru-lotl entry 1", False)
    assert "presented and refused (fetch.refused, status 409: agreement cn-fesp.1 is " \
           "approved, not active)" in note.detail


def test_a_receipt_the_provider_never_logged_is_found() -> None:
    result = reconcile(_log(_token("t1")),
                       {"ru-lotl": _log(_served("t1")),
                        "cn-fesp": _log(_received(0), _received(5))})
    assert [m.kind for m in result.mismatches] == ["received but not served"]


def test_an_unaudited_recipient_is_noted_not_failed() -> None:
    result = reconcile(_log(_token("t1")), {"ru-lotl": _log(_served("t1"))})
    assert result.ok
    assert [m.kind for m in result.mismatches] == ["recipient not audited"]


def _started(jti: str) -> tuple[str, dict[str, Any]]:
    return ("package.started", {"member": "cn-fesp", "agreement": "cn-fesp.1",
                                "token_jti": jti, "plan_digest": "p1"})


def test_a_package_cut_off_mid_stream_is_reported() -> None:
    unfinished = ("package.unfinished", {"member": "cn-fesp", "agreement": "cn-fesp.1",
                                         "started_index": 0, "served_index": None,
                                         "bytes_sent": 75_000_000,
                                         "rows_sent": {"media": 448_924, "observations": 0},
                                         "reason": "GeneratorExit"})
    result = reconcile(_log(_token("t1")),
                       {"ru-lotl": _log(_started("t1"), unfinished), "cn-fesp": _log()})
    assert not result.ok
    [m] = [m for m in result.mismatches if m.serious]
    assert (m.kind, m.where) == ("started, unfinished", "ru-lotl entry 0")
    assert "75,000,000 bytes (448,924 media)" in m.detail and "GeneratorExit" in m.detail


def test_a_package_started_and_never_closed_is_reported() -> None:
    result = reconcile(_log(_token("t1")), {"ru-lotl": _log(_started("t1")), "cn-fesp": _log()})
    assert [m.kind for m in result.mismatches if m.serious] == ["started, never finished"]


def test_a_started_package_served_whole_reconciles() -> None:
    served = ("package.served", {**_served("t1")[1], "started_index": 0})
    result = reconcile(_log(_token("t1")),
                       {"ru-lotl": _log(_started("t1"), served), "cn-fesp": _log(_received(1))})
    assert result.ok and not result.mismatches


def _counts_served(jti: str, digest: str = "c1") -> tuple[str, dict[str, Any]]:
    return _served(jti, digest, kind="counts")


def _counts_received(served_index: int, digest: str = "c1") -> tuple[str, dict[str, Any]]:
    return _received(served_index, digest, kind="counts")


def test_counts_results_reconcile_like_packages() -> None:
    result = reconcile(_log(_token("t1"), _token("t2")),
                       {"ru-lotl": _log(_served("t1"), _counts_served("t2")),
                        "cn-fesp": _log(_received(0), _counts_received(1))})
    assert (result.counts.served, result.counts.received, result.counts.matched) == (1, 1, 1)
    assert (result.served, result.matched) == (1, 1)
    assert result.ok and not result.mismatches


def test_a_deleted_counts_receipt_is_found() -> None:
    result = reconcile(_log(_token("t1")),
                       {"ru-lotl": _log(_counts_served("t1")), "cn-fesp": _log()})
    assert [m.kind for m in result.mismatches] == ["missing receipt"]
    assert "counts result" in result.mismatches[0].detail and not result.ok


def test_a_counts_result_changed_after_serving_is_found() -> None:
    result = reconcile(_log(_token("t1")),
                       {"ru-lotl": _log(_counts_served("t1", "c1")),
                        "cn-fesp": _log(_counts_received(0, "c2"))})
    assert [m.kind for m in result.mismatches] == ["digest mismatch"]


def test_counts_received_but_never_served_or_without_a_token_are_found() -> None:
    forged = reconcile(_log(), {"ru-lotl": _log(("request.received", {})),
                                "cn-fesp": _log(_counts_received(0))})
    assert [m.kind for m in forged.mismatches] == ["received but not served"]
    untokened = reconcile(_log(), {"ru-lotl": _log(_counts_served("t9")),
                                   "cn-fesp": _log(_counts_received(0))})
    assert [m.kind for m in untokened.mismatches] == ["served without token"]
    # a package's receipt does not stand in for a counts result's, nor the reverse
    crossed = reconcile(_log(_token("t1")), {"ru-lotl": _log(_counts_served("t1")),
                                              "cn-fesp": _log(_received(0))})
    assert sorted(m.kind for m in crossed.mismatches) == ["missing receipt",
                                                          "received but not served"]
