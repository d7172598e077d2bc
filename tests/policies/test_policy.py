"""Policy and terms documents: strict loading, every refusal named, and the narrowing check."""

from __future__ import annotations

import copy
import csv
import json
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.errors import PolicyError, TermsRefused
from policies.policy import (
    DEFAULT_POLICY_DOCUMENT,
    KEY_FIELDS,
    PURPOSES,
    REQUIRED_FIELDS,
    RESOURCE_FIELDS,
    Policy,
    default_policy,
    load_policy,
)
from policies.sensitivity import PRECISION, default_profile, profile_sources
from policies.terms import AllOf, Terms, check_terms, load_terms

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"

EXAMPLE: dict[str, Any] = {
    "tiers": {
        "aggregate": {"aggregate_only": True},
        "generalized": {
            "default_precision": None,
            "coarsen_time": "day",
            "withhold_fields": {
                "observations": ["classifiedBy", "observationComments"],
                "media": ["filePath", "fileName", "exifData"],
                "deployments": ["setupBy", "locationName"],
            },
            "pseudonymize_individuals": True,
            "apply_sensitivity": True,
        },
        "full": {"apply_sensitivity": False},
    },
    "sensitivity": {"Panthera pardus orientalis": 2},
    "embargo_days": {"Panthera tigris altaica": 90, "Panthera pardus orientalis": 90},
    "purposes": list(PURPOSES),
    "partners": ["*"],
    "max_duration_days": 730,
}


def _example() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def _doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text("utf-8"), re.S)


# --- loading what is valid -------------------------------------------------------------


def test_the_documented_example_is_the_tested_example() -> None:
    policy_block, terms_block = _doc_blocks("yaml")
    assert yaml.safe_load(policy_block) == EXAMPLE
    policy = load_policy(yaml.safe_load(policy_block))
    terms = load_terms(yaml.safe_load(terms_block))
    assert terms.tier == "generalized" and terms.time_to == date(2024, 12, 31)
    check_terms(policy, terms, "cn-ntlnp")


def test_example_policy_loads_with_every_rule() -> None:
    policy = load_policy(_example())
    assert set(policy.tiers) == {"aggregate", "generalized", "full"}
    generalized = policy.tiers["generalized"]
    assert generalized.coarsen_time == "day"
    assert generalized.default_precision is None
    assert generalized.pseudonymize_individuals and generalized.apply_sensitivity
    assert generalized.withheld("media") == {"filePath", "fileName", "exifData"}
    assert generalized.withheld("event") == frozenset()
    assert policy.tiers["aggregate"].aggregate_only
    assert not policy.tiers["full"].apply_sensitivity
    assert policy.tiers["full"].coarsen_time is None
    assert policy.embargo_days == {"Panthera tigris altaica": 90, "Panthera pardus orientalis": 90}
    assert policy.purposes == frozenset(PURPOSES)
    assert policy.allows_partner("ru-lotl") and policy.allows_partner("cn-ntlnp")
    assert policy.max_duration_days == 730


def test_json_and_yaml_give_the_same_policy() -> None:
    as_json = json.loads(json.dumps(EXAMPLE))
    as_yaml = yaml.safe_load(yaml.safe_dump(EXAMPLE))
    assert load_policy(as_json) == load_policy(as_yaml)


def test_policy_round_trips_through_its_json() -> None:
    for policy in (load_policy(_example()), default_policy()):
        again = load_policy(json.loads(json.dumps(policy.to_json())))
        assert again == policy
        assert again.digest() == policy.digest()
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", policy.digest())


def test_digest_changes_with_the_policy() -> None:
    changed = _example()
    changed["embargo_days"]["Panthera tigris altaica"] = 91
    assert load_policy(changed).digest() != load_policy(_example()).digest()


def test_default_policy_is_the_documented_default() -> None:
    policy = default_policy()
    assert load_policy(yaml.safe_load(yaml.safe_dump(DEFAULT_POLICY_DOCUMENT))) == policy
    assert set(policy.tiers) == {"aggregate", "generalized"}
    tier = policy.tiers["generalized"]
    assert tier.coarsen_time == "day" and tier.pseudonymize_individuals
    assert tier.apply_sensitivity and not tier.aggregate_only
    assert {"classifiedBy", "observationComments"} <= tier.withheld("observations")
    assert {"filePath", "fileName", "exifData"} <= tier.withheld("media")
    assert "setupBy" in tier.withheld("deployments")
    assert policy.sensitivity == default_profile()
    assert policy.embargo_days == {"Panthera tigris altaica": 90,
                                   "Panthera pardus orientalis": 90}
    assert policy.purposes == frozenset(PURPOSES)
    assert policy.partners == {"*"}
    assert policy.max_duration_days == 730


def test_optional_keys_have_documented_defaults() -> None:
    policy = load_policy({"tiers": {"open": {}}, "purposes": ["research"],
                          "partners": ["ru-lotl", "cn-ntlnp"]})
    tier = policy.tiers["open"]
    assert (tier.aggregate_only, tier.default_precision, tier.coarsen_time,
            tier.pseudonymize_individuals, tier.apply_sensitivity) == (
        False, None, None, False, True)
    assert dict(tier.withhold_fields) == {}
    assert policy.sensitivity == default_profile()
    assert policy.embargo_days == {}
    assert policy.max_duration_days == 730
    assert policy.allows_partner("ru-lotl") and not policy.allows_partner("jp-izumi")


@pytest.mark.parametrize("value", [None, "none"])
def test_coarsen_time_none_means_as_recorded(value: str | None) -> None:
    doc = _example()
    doc["tiers"]["generalized"]["coarsen_time"] = value
    assert load_policy(doc).tiers["generalized"].coarsen_time is None


@pytest.mark.parametrize("precision", [0.1, 0.01, 0.001])
def test_default_precision_accepts_the_gbif_roundings(precision: float) -> None:
    doc = _example()
    doc["tiers"]["generalized"]["default_precision"] = precision
    assert load_policy(doc).tiers["generalized"].default_precision == precision


# --- sensitivity profile -------------------------------------------------------------------


def test_default_profile_is_the_six_neaspec_flagships() -> None:
    assert default_profile() == {
        "Panthera tigris altaica": 2,
        "Panthera pardus orientalis": 2,
        "Panthera uncia": 2,
        "Platalea minor": 3,
        "Grus monacha": 3,
        "Antigone vipio": 3,
    }
    assert PRECISION == {2: 0.1, 3: 0.01, 4: 0.001}


def test_default_profile_cites_its_sources_and_is_a_fresh_copy() -> None:
    sources = profile_sources()
    assert set(sources) == set(default_profile())
    assert all("IUCN" in text for text in sources.values())
    mine = default_profile()
    mine["Panthera uncia"] = 4
    assert default_profile()["Panthera uncia"] == 2


def test_sensitivity_overrides_and_extends_the_default() -> None:
    doc = _example()
    doc["sensitivity"] = {"Panthera pardus orientalis": 1, "Capreolus pygargus": 4,
                          "Grus vipio": 2}
    sensitivity = load_policy(doc).sensitivity
    assert sensitivity["Panthera pardus orientalis"] == 1
    assert sensitivity["Capreolus pygargus"] == 4
    assert sensitivity["Antigone vipio"] == 2      # set under its synonym
    assert "Grus vipio" not in sensitivity
    assert sensitivity["Platalea minor"] == 3       # untouched default


def test_taxon_keys_are_normalised() -> None:
    doc = _example()
    doc["embargo_days"] = {"panthera  TIGRIS amurensis": 30}
    assert load_policy(doc).embargo_days == {"Panthera tigris altaica": 30}


# --- every refusal, with its field ------------------------------------------------------------

Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = doc
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


def _delete(path: str) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = doc
        for key in parents:
            node = node[key]
        del node[last]
    return edit


G = "tiers/generalized"
W = "tiers/generalized/withhold_fields"

REFUSALS: list[tuple[str, Edit, str, str]] = [
    # unknown keys, at each level
    ("unknown top-level key", _set("tier", {}), "tier", "unknown key"),
    ("misspelt top-level key", _set("embargo", {}), "embargo", "did you mean 'embargo_days'"),
    ("unknown tier key", _set(f"{G}/withold_fields", {}), "tiers.generalized.withold_fields",
     "did you mean 'withhold_fields'"),
    ("unknown resource", _set(f"{W}/sightings", ["x"]),
     "tiers.generalized.withhold_fields.sightings", "unknown resource"),
    ("unknown camtrap field", _set(f"{W}/observations", ["classifedBy"]),
     "tiers.generalized.withhold_fields.observations.classifedBy",
     "not a field of observations (did you mean 'classifiedBy'?)"),
    ("unknown dwc term", _set(f"{W}/occurrence", ["recordedByName"]),
     "tiers.generalized.withhold_fields.occurrence.recordedByName", "not a field of occurrence"),
    ("unknown individuals field", _set(f"{W}/individuals", ["photo"]),
     "tiers.generalized.withhold_fields.individuals.photo", "not a field of individuals"),
    # missing and empty
    ("missing tiers", _delete("tiers"), "tiers", "required key is missing"),
    ("missing purposes", _delete("purposes"), "purposes", "required key is missing"),
    ("missing partners", _delete("partners"), "partners", "required key is missing"),
    ("empty tiers", _set("tiers", {}), "tiers", "at least one tier"),
    ("empty purposes", _set("purposes", []), "purposes", "must not be empty"),
    ("empty partners", _set("partners", []), "partners", "must not be empty"),
    # wrong types
    ("tiers not a mapping", _set("tiers", ["generalized"]), "tiers", "must be a mapping"),
    ("tier null", _set("tiers/full", None), "tiers.full", "must be a mapping"),
    ("tier a string", _set("tiers/full", "yes"), "tiers.full", "must be a mapping"),
    ("bad tier name", _set("tiers/Full Access", {}), "tiers.Full Access", "tier name"),
    ("aggregate_only not bool", _set("tiers/aggregate/aggregate_only", "yes"),
     "tiers.aggregate.aggregate_only", "true or false"),
    ("apply_sensitivity not bool", _set(f"{G}/apply_sensitivity", 1),
     "tiers.generalized.apply_sensitivity", "true or false"),
    ("pseudonymize not bool", _set(f"{G}/pseudonymize_individuals", "true"),
     "tiers.generalized.pseudonymize_individuals", "true or false"),
    ("withhold_fields a list", _set(W, ["classifiedBy"]), "tiers.generalized.withhold_fields",
     "must be a mapping"),
    ("fields not a list", _set(f"{W}/observations", "classifiedBy"),
     "tiers.generalized.withhold_fields.observations", "must be a list"),
    ("field not a string", _set(f"{W}/observations", [3]),
     "tiers.generalized.withhold_fields.observations", "strings"),
    ("field listed twice", _set(f"{W}/observations", ["sex", "sex"]),
     "tiers.generalized.withhold_fields.observations.sex", "listed twice"),
    ("key field withheld", _set(f"{W}/deployments", ["deploymentID"]),
     "tiers.generalized.withhold_fields.deployments.deploymentID", "is a key"),
    ("foreign key withheld", _set(f"{W}/occurrence", ["eventID"]),
     "tiers.generalized.withhold_fields.occurrence.eventID", "is a key"),
    ("max duration a string", _set("max_duration_days", "730"), "max_duration_days",
     "must be an integer"),
    ("sensitivity a list", _set("sensitivity", ["Panthera uncia"]), "sensitivity",
     "must be a mapping"),
    ("purposes a string", _set("purposes", "research"), "purposes", "must be a list"),
    # bad categories
    ("category 5", _set("sensitivity", {"Panthera uncia": 5}), "sensitivity.Panthera uncia",
     "category 5 is not a GBIF sensitivity category"),
    ("category 0", _set("sensitivity", {"Panthera uncia": 0}), "sensitivity.Panthera uncia",
     "not a GBIF sensitivity category"),
    ("category as text", _set("sensitivity", {"Panthera uncia": "2"}),
     "sensitivity.Panthera uncia", "must be an integer"),
    ("category as float", _set("sensitivity", {"Panthera uncia": 2.0}),
     "sensitivity.Panthera uncia", "must be an integer"),
    ("category as bool", _set("sensitivity", {"Panthera uncia": True}),
     "sensitivity.Panthera uncia", "must be an integer"),
    ("empty taxon name", _set("sensitivity", {"  ": 2}), "sensitivity.  ",
     "must be a scientific name"),
    ("taxon twice via synonym", _set("sensitivity", {"Grus vipio": 2, "Antigone vipio": 3}),
     "sensitivity.Antigone vipio", "same taxon as 'Grus vipio'"),
    ("embargo taxon twice", _set("embargo_days", {"Uncia uncia": 5, "Panthera uncia": 5}),
     "embargo_days.Panthera uncia", "listed twice"),
    # contradictory rules
    ("aggregate with withheld fields",
     _set("tiers/aggregate", {"aggregate_only": True,
                              "withhold_fields": {"observations": ["sex"]}}),
     "tiers.aggregate.withhold_fields", "contradicts aggregate_only"),
    ("aggregate with coarsening", _set("tiers/aggregate/coarsen_time", "month"),
     "tiers.aggregate.coarsen_time", "contradicts aggregate_only"),
    ("aggregate with precision", _set("tiers/aggregate/default_precision", 0.1),
     "tiers.aggregate.default_precision", "contradicts aggregate_only"),
    ("aggregate with pseudonyms", _set("tiers/aggregate/pseudonymize_individuals", True),
     "tiers.aggregate.pseudonymize_individuals", "contradicts aggregate_only"),
    ("pseudonymize a withheld id", _set(f"{W}/observations", ["individualID"]),
     "tiers.generalized.pseudonymize_individuals", "nothing to pseudonymize"),
    ("star and member ids", _set("partners", ["*", "ru-lotl"]), "partners", "either '*'"),
    # bad values
    ("coarsen week", _set(f"{G}/coarsen_time", "week"), "tiers.generalized.coarsen_time",
     "'week' is not one of none, day, month"),
    ("coarsen bool", _set(f"{G}/coarsen_time", False), "tiers.generalized.coarsen_time",
     "not one of none, day, month"),
    ("precision 0.05", _set(f"{G}/default_precision", 0.05),
     "tiers.generalized.default_precision", "not one of 0.1, 0.01, 0.001"),
    ("precision 1", _set(f"{G}/default_precision", 1), "tiers.generalized.default_precision",
     "not one of 0.1, 0.01, 0.001"),
    ("precision as text", _set(f"{G}/default_precision", "0.1"),
     "tiers.generalized.default_precision", "must be a number"),
    ("negative embargo", _set("embargo_days/Panthera tigris altaica", -1),
     "embargo_days.Panthera tigris altaica", "cannot be negative"),
    ("huge embargo", _set("embargo_days/Panthera tigris altaica", 10**9),
     "embargo_days.Panthera tigris altaica", "at most"),
    ("embargo as float", _set("embargo_days/Panthera tigris altaica", 90.5),
     "embargo_days.Panthera tigris altaica", "must be an integer"),
    ("zero duration", _set("max_duration_days", 0), "max_duration_days", "between 1 and"),
    ("negative duration", _set("max_duration_days", -30), "max_duration_days", "between 1 and"),
    ("unknown purpose", _set("purposes", ["research", "marketing"]), "purposes",
     "unknown purpose 'marketing'"),
    ("purpose twice", _set("purposes", ["research", "research"]), "purposes", "listed twice"),
    ("bad partner id", _set("partners", ["Land of the Leopard"]), "partners",
     "is not a member id"),
]


@pytest.mark.parametrize(("edit", "field", "reason"),
                         [pytest.param(e, f, r, id=name) for name, e, f, r in REFUSALS])
def test_bad_policy_is_refused_with_field_and_reason(edit: Edit, field: str,
                                                     reason: str) -> None:
    doc = _example()
    edit(doc)
    with pytest.raises(PolicyError) as caught:
        load_policy(doc)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value) == f"{field}: {caught.value.reason}"
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("document", [None, [], "tiers: {}", 3])
def test_policy_that_is_not_a_mapping_is_refused(document: Any) -> None:
    with pytest.raises(PolicyError, match=r"^policy: must be a mapping"):
        load_policy(document)


# --- the field catalogue matches the node's schemas -----------------------------------------


def test_camtrap_fields_are_the_published_schema() -> None:
    from node.data.validation import DWC_EVENT, DWC_OCCURRENCE, camtrap_table

    for resource in ("deployments", "media", "observations"):
        spec = camtrap_table(resource)
        assert RESOURCE_FIELDS[resource] == set(spec.field_names)
        assert REQUIRED_FIELDS[resource] == {f.name for f in spec.fields if f.required}
        assert spec.primary_key in KEY_FIELDS[resource]
        assert {fk for fk, _ in spec.foreign_keys} <= KEY_FIELDS[resource]
    for spec in (DWC_EVENT, DWC_OCCURRENCE):
        assert set(spec.field_names) <= RESOURCE_FIELDS[spec.name]
        assert {f.name for f in spec.fields if f.required} <= REQUIRED_FIELDS[spec.name]


def test_individuals_and_demo_dwc_fields_are_known() -> None:
    from node.data.demo_data import EVENT_FIELDS, INDIVIDUAL_FIELDS, OCCURRENCE_FIELDS

    assert RESOURCE_FIELDS["individuals"] == set(INDIVIDUAL_FIELDS)
    assert set(EVENT_FIELDS) <= RESOURCE_FIELDS["event"]
    assert set(OCCURRENCE_FIELDS) <= RESOURCE_FIELDS["occurrence"]


def test_published_dwc_files_use_only_known_terms(arocha: Path) -> None:
    for name, resource in (("events.csv", "event"), ("occurrences.csv", "occurrence")):
        with (arocha / name).open(newline="", encoding="utf-8") as f:
            header = next(csv.reader(f))
        assert set(header) <= RESOURCE_FIELDS[resource], set(header) - RESOURCE_FIELDS[resource]


def test_member_id_pattern_matches_the_registry() -> None:
    from corridor.config import MEMBER_ID_RE
    from policies import policy as policy_module

    assert policy_module._MEMBER_ID_RE.pattern == MEMBER_ID_RE.pattern


# --- terms ---------------------------------------------------------------------------------


def _policy() -> Policy:
    doc = _example()
    doc["purposes"] = ["research", "joint-monitoring"]
    doc["partners"] = ["cn-ntlnp", "ru-lotl"]
    doc["max_duration_days"] = 365
    return load_policy(doc)


def test_terms_load_every_key() -> None:
    terms = load_terms({
        "purpose": "research", "tier": "generalized",
        "taxa": ["Grus vipio", "panthera uncia"],
        "time_from": "2023-01-01", "time_to": date(2024, 12, 31),
        "bbox": [130.5, 42, 131.6, 43.6],
        "fields": {"observations": ["scientificName", "count"]},
        "duration_days": 180,
    })
    assert terms.taxa == frozenset({"Antigone vipio", "Panthera uncia"})
    assert terms.time_from == date(2023, 1, 1) and terms.time_to == date(2024, 12, 31)
    assert terms.bbox == (130.5, 42.0, 131.6, 43.6)
    assert terms.fields == {"observations": frozenset({"scientificName", "count"})}
    assert terms.duration_days == 180
    assert load_terms(json.loads(json.dumps(terms.to_json()))) == terms


def test_minimal_terms_narrow_nothing() -> None:
    terms = load_terms({"purpose": "research", "tier": "full"})
    assert terms == Terms(purpose="research", tier="full")
    assert load_terms(terms.to_json()) == terms


TERMS_REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown key", {"datasets": ["x"]}, "datasets", "unknown key"),
    ("unknown purpose", {"purpose": "marketing"}, "purpose", "is not one of"),
    ("tier not a string", {"tier": 3}, "tier", "name of a tier"),
    ("taxa not a list", {"taxa": "Panthera uncia"}, "taxa", "must be a list"),
    ("taxa empty", {"taxa": []}, "taxa", "release nothing"),
    ("taxon twice", {"taxa": ["Grus vipio", "Antigone vipio"]}, "taxa.Antigone vipio",
     "listed twice"),
    ("bad date", {"time_from": "2024-13-01"}, "time_from", "is not a date"),
    ("datetime not date", {"time_from": datetime(2024, 1, 1)}, "time_from", "is not a date"),
    ("reversed window", {"time_from": "2024-02-01", "time_to": "2024-01-31"}, "time_to",
     "before time_from"),
    ("bbox of three", {"bbox": [1, 2, 3]}, "bbox", "[west, south, east, north]"),
    ("bbox with text", {"bbox": [1, 2, "3", 4]}, "bbox", "not a number"),
    ("bbox with bool", {"bbox": [True, 2, 3, 4]}, "bbox", "not a number"),
    ("bbox latitude", {"bbox": [130, 42, 131, 95]}, "bbox", "latitudes"),
    ("bbox longitude", {"bbox": [130, 42, 181, 43]}, "bbox", "longitudes"),
    ("bbox west of east", {"bbox": [131, 42, 130, 43]}, "bbox", "west must be less than east"),
    ("bbox south of north", {"bbox": [130, 43, 131, 43]}, "bbox", "south must be less"),
    ("fields unknown resource", {"fields": {"photos": ["a"]}}, "fields.photos",
     "unknown resource"),
    ("fields unknown field", {"fields": {"media": ["gps"]}}, "fields.media.gps",
     "not a field of media"),
    ("zero duration", {"duration_days": 0}, "duration_days", "whole number of days"),
    ("bool duration", {"duration_days": True}, "duration_days", "whole number of days"),
]


@pytest.mark.parametrize(("change", "field", "reason"),
                         [pytest.param(c, f, r, id=name) for name, c, f, r in TERMS_REFUSALS])
def test_bad_terms_are_refused_with_field_and_reason(change: dict[str, Any], field: str,
                                                     reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_terms({"purpose": "research", "tier": "generalized", **change})
    assert caught.value.field == field
    assert reason in caught.value.reason


@pytest.mark.parametrize("missing", ["purpose", "tier"])
def test_terms_need_purpose_and_tier(missing: str) -> None:
    doc = {"purpose": "research", "tier": "generalized"}
    del doc[missing]
    with pytest.raises(PolicyError, match=f"^{missing}: required key is missing"):
        load_terms(doc)


def test_narrowing_terms_pass() -> None:
    terms = load_terms({"purpose": "joint-monitoring", "tier": "generalized",
                        "taxa": ["Panthera pardus orientalis"], "time_from": "2024-01-01",
                        "bbox": [130, 42, 132, 44],
                        "fields": {"observations": ["scientificName", "individualID"]},
                        "duration_days": 365})
    check_terms(_policy(), terms, "ru-lotl")


WIDENING: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("purpose not allowed", {"purpose": "education"}, "cn-ntlnp", "purpose",
     "purpose 'education' is not allowed by this dataset's policy"),
    ("tier not offered", {"tier": "raw"}, "cn-ntlnp", "tier", "tier 'raw' is not offered"),
    ("requester not a partner", {}, "jp-izumi", "requester",
     "'jp-izumi' is not a partner"),
    ("no requester", {}, "", "requester", "is not a partner"),
    ("duration too long", {"duration_days": 366}, "cn-ntlnp", "duration_days",
     "366 days is longer than the policy allows (365 days)"),
    ("withheld field", {"fields": {"observations": ["scientificName", "classifiedBy"]}},
     "cn-ntlnp", "fields.observations.classifiedBy",
     "terms would widen the policy: observations.classifiedBy is withheld in tier generalized"),
    ("withheld media field", {"fields": {"media": ["exifData"]}}, "cn-ntlnp",
     "fields.media.exifData", "media.exifData is withheld in tier generalized"),
    ("fields from an aggregate tier", {"tier": "aggregate",
                                       "fields": {"observations": ["count"]}},
     "cn-ntlnp", "fields", "aggregate-only and releases no fields"),
]


@pytest.mark.parametrize(("change", "requester", "field", "reason"),
                         [pytest.param(c, who, f, r, id=name)
                          for name, c, who, f, r in WIDENING])
def test_terms_that_widen_the_policy_are_refused(change: dict[str, Any], requester: str,
                                                 field: str, reason: str) -> None:
    terms = load_terms({"purpose": "research", "tier": "generalized", **change})
    with pytest.raises(TermsRefused) as caught:
        check_terms(_policy(), terms, requester)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert isinstance(caught.value, PolicyError)


def test_star_partners_admit_any_member_but_not_nobody() -> None:
    policy = load_policy(_example())
    terms = Terms(purpose="research", tier="full")
    check_terms(policy, terms, "mn-hustai")
    with pytest.raises(TermsRefused, match="requester"):
        check_terms(policy, terms, "")


def test_an_empty_combination_of_checks_refuses() -> None:
    with pytest.raises(TermsRefused, match=r"^terms: no checks"):
        AllOf().check(_policy(), Terms(purpose="research", tier="generalized"), "cn-ntlnp")
