"""Agreements: the state machine of DESIGN.md §6 over a chain of signed events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crypto.keys import KeySet, SigningKey
from policies.agreement_terms import TermsNotNarrower
from policies.agreements import (
    ACTIVE,
    APPROVED,
    EXPIRED,
    REFUSED,
    REQUESTED,
    REVOKED,
    WITHDRAWN,
    Agreement,
    AgreementError,
    Event,
    next_event,
    replay,
    sign_document,
    sign_event,
    verify_document,
)

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
KEYS = {m: SigningKey.generate() for m in ("cn-ntlnp", "ru-lotl", "registry", "kr-nie")}
TERMS = {"provider": "ru-lotl", "dataset": "ru-lotl/leopards-2024",
         "purpose": "joint-monitoring", "tier": "generalized", "until": "2027-06-30"}


def keys_for(member: str) -> KeySet:
    return KeySet([KEYS[member].public_key]) if member in KEYS else KeySet()


def start() -> tuple[Agreement, list[str]]:
    first = next_event(None, action="request", actor="cn-ntlnp", role="requester", at=T0,
                       key=KEYS["cn-ntlnp"], terms=TERMS, agreement_id="agr-1")
    history = [first.jws]
    return replay(history, keys_for=keys_for), history


def act(agreement: Agreement, history: list[str], action: str, actor: str, role: str,
        **kwargs: Any) -> Agreement:
    event = next_event(agreement, action=action, actor=actor, role=role,
                       at=T0 + timedelta(hours=len(history)), key=KEYS[actor],
                       operator="registry", **kwargs)
    history.append(event.jws)
    return replay(history, keys_for=keys_for, operator="registry")


def test_request_approve_accept_then_revoke() -> None:
    agreement, history = start()
    assert (agreement.state, agreement.requester, agreement.provider) == (
        REQUESTED, "cn-ntlnp", "ru-lotl")
    agreement = act(agreement, history, "approve", "ru-lotl", "provider")
    assert agreement.state == APPROVED
    agreement = act(agreement, history, "accept", "cn-ntlnp", "requester")
    assert agreement.state == ACTIVE and agreement.is_active(T0)
    assert not agreement.is_active(datetime(2027, 7, 1, tzinfo=UTC))  # past terms.until
    agreement = act(agreement, history, "revoke", "ru-lotl", "provider", reason="poaching")
    assert agreement.state == REVOKED and not agreement.is_active(T0)
    assert [e.action for e in agreement.events] == ["request", "approve", "accept", "revoke"]


def test_narrowed_terms_replace_the_request_and_need_acceptance() -> None:
    agreement, history = start()
    narrowed = {**TERMS, "tier": "aggregate", "until": "2026-12-31"}
    agreement = act(agreement, history, "narrow", "ru-lotl", "provider", terms=narrowed)
    assert agreement.state == APPROVED and agreement.terms["tier"] == "aggregate"
    agreement = act(agreement, history, "accept", "cn-ntlnp", "requester")
    assert agreement.state == ACTIVE and agreement.terms == narrowed


@pytest.mark.parametrize(("steps", "final"), [
    ([("refuse", "ru-lotl", "provider")], REFUSED),
    ([("withdraw", "cn-ntlnp", "requester")], WITHDRAWN),
    ([("approve", "ru-lotl", "provider"), ("withdraw", "cn-ntlnp", "requester")], WITHDRAWN),
    ([("approve", "ru-lotl", "provider"), ("accept", "cn-ntlnp", "requester"),
      ("revoke", "registry", "operator")], REVOKED),
    ([("approve", "ru-lotl", "provider"), ("accept", "cn-ntlnp", "requester"),
      ("expire", "ru-lotl", "provider")], EXPIRED),
])
def test_every_ending_of_the_state_machine(steps: list[tuple[str, str, str]],
                                           final: str) -> None:
    agreement, history = start()
    for action, actor, role in steps:
        agreement = act(agreement, history, action, actor, role)
    assert agreement.state == final


@pytest.mark.parametrize(("steps", "bad", "match"), [
    ([], ("accept", "cn-ntlnp", "requester"), "cannot accept an agreement that is requested"),
    ([], ("approve", "cn-ntlnp", "requester"), "the requester may not approve"),
    ([], ("approve", "cn-ntlnp", "provider"), "acts as requester, not provider"),
    ([], ("approve", "kr-nie", "provider"), "kr-nie is not a party"),
    ([], ("revoke", "ru-lotl", "provider"), "cannot revoke an agreement that is requested"),
    ([("refuse", "ru-lotl", "provider")], ("approve", "ru-lotl", "provider"),
     "cannot approve an agreement that is refused"),
    ([("approve", "ru-lotl", "provider"), ("accept", "cn-ntlnp", "requester")],
     ("withdraw", "cn-ntlnp", "requester"), "cannot withdraw an agreement that is active"),
    ([], ("revoke", "registry", "operator"), "cannot revoke an agreement that is requested"),
])
def test_forbidden_transitions_are_refused(steps: list[tuple[str, str, str]],
                                           bad: tuple[str, str, str], match: str) -> None:
    agreement, history = start()
    for action, actor, role in steps:
        agreement = act(agreement, history, action, actor, role)
    action, actor, role = bad
    with pytest.raises(AgreementError, match=match):
        act(agreement, history, action, actor, role)


def _forged(current: Agreement, **changes: Any) -> Event:
    base = Event(current.id, len(current.events), "approve", "ru-lotl", "provider",
                 T0 + timedelta(hours=1), current.head)
    return Event(**{**base.__dict__, **changes})


def test_an_event_signed_by_someone_else_is_refused() -> None:
    agreement, history = start()
    forged = sign_event(_forged(agreement), KEYS["cn-ntlnp"])  # requester approves "as" owner
    with pytest.raises(AgreementError, match="signature does not verify"):
        replay([*history, forged.jws], keys_for=keys_for)


def test_reordered_dropped_or_unlinked_events_are_refused() -> None:
    agreement, history = start()
    agreement = act(agreement, history, "approve", "ru-lotl", "provider")
    agreement = act(agreement, history, "accept", "cn-ntlnp", "requester")
    for bad in ([history[0], history[2], history[1]], [history[0], history[2]],
                [history[1], history[2]]):
        with pytest.raises(AgreementError):
            replay(bad, keys_for=keys_for)
    relinked = sign_event(_forged(agreement, seq=3, prev="sha256:" + "0" * 64,
                                  action="revoke"), KEYS["ru-lotl"])
    with pytest.raises(AgreementError, match="not linked"):
        replay([*history, relinked.jws], keys_for=keys_for)


def test_an_event_of_another_agreement_cannot_be_spliced_in() -> None:
    agreement, history = start()
    spliced = sign_event(_forged(agreement, agreement="agr-2"), KEYS["ru-lotl"])
    with pytest.raises(AgreementError, match="another agreement"):
        replay([*history, spliced.jws], keys_for=keys_for)


def test_rewritten_event_breaks_its_signature() -> None:
    _, history = start()
    header, payload, signature = history[0].split(".")
    tampered = ".".join([header, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"),
                         signature])
    with pytest.raises(AgreementError):
        replay([tampered], keys_for=keys_for)


@pytest.mark.parametrize("terms", [None, {"purpose": "research"},
                                   {**TERMS, "provider": "cn-ntlnp"}])
def test_a_history_must_start_with_a_proper_request(terms: Mapping[str, Any] | None) -> None:
    first = sign_event(Event("agr-9", 0, "request", "cn-ntlnp", "requester", T0, "", terms),
                       KEYS["cn-ntlnp"])
    with pytest.raises(AgreementError):
        replay([first.jws], keys_for=keys_for)
    with pytest.raises(AgreementError, match="at least its request"):
        replay([], keys_for=keys_for)


def test_narrowing_that_widens_is_refused_when_made_and_when_replayed() -> None:
    agreement, history = start()
    wider = {**TERMS, "until": "2030-01-01"}
    with pytest.raises(TermsNotNarrower, match="until"):
        next_event(agreement, action="narrow", actor="ru-lotl", role="provider",
                   at=T0, key=KEYS["ru-lotl"], terms=wider)
    # A provider that signs the widening event by hand is caught by every verifier.
    forged = sign_event(Event("agr-1", 1, "narrow", "ru-lotl", "provider", T0,
                              agreement.head, wider), KEYS["ru-lotl"])
    with pytest.raises(TermsNotNarrower):
        replay([*history, forged.jws], keys_for=keys_for)


def accepted() -> tuple[Agreement, list[str]]:
    agreement, history = start()
    narrowed = {**TERMS, "taxa": ["Panthera pardus"], "until": "2027-01-31"}
    agreement = act(agreement, history, "narrow", "ru-lotl", "provider", terms=narrowed)
    agreement = act(agreement, history, "accept", "cn-ntlnp", "requester")
    return agreement, history


def test_the_signed_document_verifies_offline_with_both_parties_keys() -> None:
    agreement, _ = accepted()
    signed = json.loads(json.dumps(agreement.signed_document()))  # as written to a file
    document = verify_document(signed, keys_for=keys_for)
    assert document["provider"] == "ru-lotl" and document["requester"] == "cn-ntlnp"
    assert document["terms"]["taxa"] == ["Panthera pardus"]
    assert document["until"] == "2027-01-31" and document["valid_from"] == "2026-11-22"


@pytest.mark.parametrize("tamper", ["terms", "until", "drop-provider", "drop-requester",
                                    "swap", "other-member"])
def test_a_tampered_or_half_signed_document_is_refused(tamper: str) -> None:
    agreement, _ = accepted()
    signed = json.loads(json.dumps(agreement.signed_document()))
    if tamper == "terms":
        signed["document"]["terms"]["tier"] = "full"
    elif tamper == "until":
        signed["document"]["until"] = "2099-12-31"
    elif tamper == "drop-provider":
        signed["signatures"] = signed["signatures"][1:]
    elif tamper == "drop-requester":
        signed["signatures"] = signed["signatures"][:1]
    elif tamper == "swap":
        first, second = signed["signatures"]
        first["jws"], second["jws"] = second["jws"], first["jws"]
    else:
        signed["signatures"][1]["jws"] = sign_document(signed["document"], KEYS["kr-nie"])
    with pytest.raises(AgreementError, match="signature"):
        verify_document(signed, keys_for=keys_for)


def test_an_offer_without_the_providers_document_signature_is_refused() -> None:
    agreement, history = start()
    unsigned = sign_event(Event("agr-1", 1, "approve", "ru-lotl", "provider", T0,
                                agreement.head), KEYS["ru-lotl"])
    with pytest.raises(AgreementError, match="signature over the agreement"):
        replay([*history, unsigned.jws], keys_for=keys_for)
    # Nor does a signature by the requester's key on the provider's behalf pass.
    wrong = sign_event(Event("agr-1", 1, "approve", "ru-lotl", "provider", T0, agreement.head,
                             signature=sign_document({"x": 1}, KEYS["ru-lotl"])),
                       KEYS["ru-lotl"])
    with pytest.raises(AgreementError, match="signature over the agreement"):
        replay([*history, wrong.jws], keys_for=keys_for)


def test_no_document_before_the_offer_and_no_signed_document_before_acceptance() -> None:
    agreement, history = start()
    with pytest.raises(AgreementError, match="no offer"):
        agreement.document()
    agreement = act(agreement, history, "approve", "ru-lotl", "provider")
    with pytest.raises(AgreementError, match="not been accepted"):
        agreement.signed_document()
