"""Scientific-name normalisation and the curated synonym table."""

from __future__ import annotations

import pytest

from policies.taxonomy import SYNONYMS, accepted_name, names_for, normalise, same_taxon


@pytest.mark.parametrize(("synonym", "accepted"), [
    ("Grus vipio", "Antigone vipio"),
    ("Antigone monacha", "Grus monacha"),
    ("Uncia uncia", "Panthera uncia"),
    ("Felis uncia", "Panthera uncia"),
    ("Panthera tigris tigris", "Panthera tigris altaica"),
    ("Panthera tigris amurensis", "Panthera tigris altaica"),
    ("Panthera pardus japonensis", "Panthera pardus orientalis"),
    ("Grus leucogeranus", "Leucogeranus leucogeranus"),
    ("Cervus elaphus xanthopygus", "Cervus canadensis xanthopygus"),
    ("Capreolus capreolus pygargus", "Capreolus pygargus"),
    ("Meles meles leucurus", "Meles leucurus"),
])
def test_synonyms_map_to_the_accepted_name(synonym: str, accepted: str) -> None:
    assert accepted_name(synonym) == accepted
    assert accepted_name(accepted) == accepted
    assert same_taxon(synonym, accepted) and same_taxon(accepted, synonym)
    assert names_for(synonym) == names_for(accepted)
    assert {synonym, accepted} <= names_for(accepted)


@pytest.mark.parametrize("name", ["Antigone vipio", "Grus monacha", "Platalea minor",
                                  "Panthera uncia", "Panthera tigris altaica",
                                  "Panthera pardus orientalis", "Grus japonensis"])
def test_flagship_species_are_accepted_names(name: str) -> None:
    assert accepted_name(name) == name
    assert name in names_for(name)


def test_amur_tiger_maps_both_ways_with_the_cctf_name() -> None:
    assert names_for("Panthera tigris altaica") == names_for("Panthera tigris tigris")
    assert "Panthera tigris tigris" in names_for("Panthera tigris altaica")
    assert "Panthera tigris altaica" in names_for("panthera  TIGRIS tigris")


def test_hooded_and_white_naped_cranes_stay_distinct() -> None:
    assert not same_taxon("Grus monacha", "Grus vipio")
    assert not same_taxon("Antigone monacha", "Antigone vipio")
    assert names_for("Grus monacha").isdisjoint(names_for("Antigone vipio"))


def test_species_is_not_its_subspecies() -> None:
    assert not same_taxon("Panthera tigris", "Panthera tigris altaica")
    assert not same_taxon("Panthera pardus", "Panthera pardus orientalis")
    assert not same_taxon("Cervus canadensis", "Cervus canadensis xanthopygus")


@pytest.mark.parametrize(("raw", "expected"), [
    ("  grus   VIPIO ", "Antigone vipio"),
    ("GRUS VIPIO", "Antigone vipio"),
    ("antigone\tvipio", "Antigone vipio"),
    ("PLATALEA minor", "Platalea minor"),
    ("uncia Uncia", "Panthera uncia"),
    ("panthera pardus ORIENTALIS", "Panthera pardus orientalis"),
])
def test_case_and_whitespace_are_normalised_before_lookup(raw: str, expected: str) -> None:
    assert accepted_name(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("vulpes   vulpes", "Vulpes vulpes"),
    ("ANAS PLATYRHYNCHOS", "Anas platyrhynchos"),
    ("aves", "Aves"),
    ("Ardea", "Ardea"),
    ("Limosa lapponica", "Limosa lapponica"),
    ("rattus norvegicus  ", "Rattus norvegicus"),
    ("Mustela putorius Linnaeus", "Mustela putorius Linnaeus"),
    ("Poa annua var. REPTANS", "Poa annua var. reptans"),
    ("Ursus arctos (Linnaeus, 1758)", "Ursus arctos (Linnaeus, 1758)"),
])
def test_unknown_names_pass_through_normalised(raw: str, expected: str) -> None:
    assert accepted_name(raw) == expected
    assert names_for(raw) == frozenset({expected})
    assert same_taxon(raw, expected)


def test_empty_names_match_nothing() -> None:
    assert accepted_name("   ") == ""
    assert names_for("") == frozenset()
    assert not same_taxon("", " ")


def test_normalise_is_idempotent_over_the_table() -> None:
    for taxon in SYNONYMS:
        for name in (taxon.accepted, *taxon.synonyms):
            assert normalise(name) == name, "table entries are written normalised"
            assert normalise(normalise(name.upper())) == normalise(name.upper())
        assert taxon.source, "every entry cites its authority"


def test_no_name_is_in_two_groups() -> None:
    seen: dict[str, str] = {}
    for taxon in SYNONYMS:
        for name in (taxon.accepted, *taxon.synonyms):
            assert name not in seen, f"{name} in {seen.get(name)} and {taxon.accepted}"
            seen[name] = taxon.accepted
