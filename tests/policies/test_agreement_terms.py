"""Agreement terms: validation, and the rule that a counter-offer only narrows."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from policies.agreement_terms import (
    TermsNotNarrower,
    check_narrowing,
    load_agreement_terms,
    narrower_tiers,
)
from policies.errors import PolicyError

ASKED: dict[str, Any] = {
    "provider": "ru-lotl", "dataset": "ru-lotl/leopards-2024", "purpose": "joint-monitoring",
    "tier": "generalized", "until": "2027-06-30", "taxa": ["Panthera pardus", "Panthera tigris"],
    "time_from": "2024-01-01", "time_to": "2024-12-31", "bbox": [130.0, 42.0, 132.0, 44.0],
    "fields": {"observations": ["scientificName", "count", "eventStart"]},
}


def test_terms_round_trip_and_give_policy_terms_with_a_duration() -> None:
    terms = load_agreement_terms(ASKED)
    assert terms.to_json() == {**ASKED, "taxa": sorted(ASKED["taxa"]),
                               "fields": {"observations": ["count", "eventStart",
                                                           "scientificName"]}}
    assert terms.dataset_name == "leopards-2024"
    assert terms.policy_terms(date(2027, 6, 20)).duration_days == 10


@pytest.mark.parametrize(("change", "field"), [
    ({"provider": "RU-LOTL"}, "provider"),
    ({"dataset": "cn-ntlnp/leopards-2024"}, "dataset"),
    ({"dataset": "ru-lotl/../etc"}, "dataset"),
    ({"until": "2027-6-30"}, "until"),
    ({"until": 20270630}, "until"),
    ({"purpose": "hunting"}, "purpose"),
    ({"taxa": []}, "taxa"),
    ({"bbox": [132, 42, 130, 44]}, "bbox"),
    ({"colour": "red"}, "colour"),
])
def test_malformed_terms_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_agreement_terms({**ASKED, **change})
    assert caught.value.field == field


@pytest.mark.parametrize("missing", ["provider", "dataset", "purpose", "tier", "until"])
def test_required_keys(missing: str) -> None:
    with pytest.raises(PolicyError, match="required"):
        load_agreement_terms({k: v for k, v in ASKED.items() if k != missing})


@pytest.mark.parametrize("narrower", [
    {},
    {"tier": "aggregate"},
    {"until": "2027-01-01"},
    {"taxa": ["Panthera pardus"]},
    {"time_from": "2024-06-01", "time_to": "2024-06-30"},
    {"bbox": [130.5, 42.5, 131.5, 43.5]},
    {"fields": {"observations": ["scientificName"]}},
])
def test_counter_offers_that_give_less_are_accepted(narrower: dict[str, Any]) -> None:
    check_narrowing({**ASKED, **narrower}, ASKED)


@pytest.mark.parametrize(("wider", "field"), [
    ({"provider": "cn-ntlnp", "dataset": "cn-ntlnp/leopards-2024"}, "provider"),
    ({"dataset": "ru-lotl/tigers-2024"}, "dataset"),
    ({"purpose": "research"}, "purpose"),
    ({"tier": "full"}, "tier"),
    ({"tier": "custom"}, "tier"),
    ({"until": "2027-07-01"}, "until"),
    ({"taxa": ["Panthera pardus", "Lynx lynx"]}, "taxa"),
    ({"taxa": None}, "taxa"),
    ({"time_from": "2023-12-31"}, "time_from"),
    ({"time_to": "2025-01-01"}, "time_to"),
    ({"time_from": None}, "time_from"),
    ({"bbox": [129.9, 42.0, 132.0, 44.0]}, "bbox"),
    ({"bbox": None}, "bbox"),
    ({"fields": {"observations": ["scientificName", "individualID"]}}, "fields.observations"),
    ({"fields": None}, "fields.observations"),
])
def test_counter_offers_that_give_more_are_refused(wider: dict[str, Any], field: str) -> None:
    offer = {k: v for k, v in {**ASKED, **wider}.items() if v is not None}
    with pytest.raises(TermsNotNarrower) as caught:
        check_narrowing(offer, ASKED)
    assert caught.value.field == field


def test_filters_absent_from_the_request_may_be_added() -> None:
    asked = {k: ASKED[k] for k in ("provider", "dataset", "purpose", "tier", "until")}
    check_narrowing({**asked, "taxa": ["Panthera pardus"], "bbox": [130, 42, 131, 43]}, asked)


def test_a_counter_offer_names_the_requested_tier_or_one_below() -> None:
    policy = ["aggregate", "generalized", "full", "catalogue"]
    assert narrower_tiers("generalized", policy) == ["generalized", "aggregate"]
    assert narrower_tiers("full", policy) == ["full", "generalized", "aggregate"]
    assert narrower_tiers("full", ["generalized", "full"]) == ["full", "generalized"]
    assert narrower_tiers("aggregate", policy) == ["aggregate"]
    assert narrower_tiers("catalogue", policy) == ["catalogue"]  # not on the ladder
    for requested in ("aggregate", "generalized", "full"):
        for tier in narrower_tiers(requested, policy)[1:]:
            check_narrowing({**ASKED, "tier": tier}, {**ASKED, "tier": requested})

