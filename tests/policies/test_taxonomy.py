"""Scientific-name normalisation and the curated synonym table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies.taxonomy import (
    SYNONYMS,
    BackboneError,
    accepted_name,
    names_for,
    normalise,
    parse_taxa,
    parse_vernacular,
    same_taxon,
    search_names,
    vernacular_names,
)


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
    ("vulpes   vulpes", "Vulpes vulpes"),          # in the backbone, with no synonym
    ("ANAS PLATYRHYNCHOS", "Anas platyrhynchos"),
    ("aves", "Aves"),
    ("Ardea", "Ardea"),
    ("Limosa lapponica", "Limosa lapponica"),
    ("rattus norvegicus  ", "Rattus norvegicus"),
    ("myodes  RUFOCANUS", "Myodes rufocanus"),     # outside the backbone
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


# -- the backbone ----------------------------------------------------------------

HEADER = ("scientificName,taxonRank,taxonomicStatus,acceptedNameUsage,genus,family,order,class,"
          "nameAccordingTo,taxonRemarks\n")


def test_the_gadwall_is_mareca_and_the_example_name_is_its_synonym() -> None:
    # The Camtrap DP example (COL 2023) says Anas strepera; the IOC list says Mareca.
    assert accepted_name("Anas strepera") == "Mareca strepera"
    assert names_for("Mareca strepera") == {"Mareca strepera", "Anas strepera"}


def test_every_example_taxon_is_in_the_backbone(camtrap_example: Path) -> None:
    # The taxa of the Camtrap DP example, read from its datapackage.json.
    package = json.loads((camtrap_example / "datapackage.json").read_text("utf-8"))
    taxa = [t["scientificName"] for t in package["taxonomic"]]
    assert len(taxa) == 10
    accepted = {t.accepted for t in SYNONYMS}
    assert all(accepted_name(t) in accepted for t in taxa), taxa


def test_ranks_and_higher_classification() -> None:
    taxa = {t.accepted: t for t in SYNONYMS}
    assert taxa["Platalea minor"].rank == "species"
    assert taxa["Platalea minor"].above("family") == "Threskiornithidae"
    assert taxa["Panthera tigris altaica"].rank == "subspecies"
    assert taxa["Anatidae"].rank == "family" and taxa["Anatidae"].above("class") == "Aves"
    # Every higher name a row gives is itself a row of that rank.
    for taxon in SYNONYMS:
        for rank, name in taxon.higher:
            assert taxa[name].rank == rank, (taxon.accepted, rank, name)


@pytest.mark.parametrize(("name", "language", "expected"), [
    ("Platalea minor", "en", "Black-faced Spoonbill"),
    ("Platalea minor", "zh", "黑脸琵鹭"),
    ("Platalea minor", "ko", "저어새"),
    ("Platalea minor", "ja", "クロツラヘラサギ"),
    ("Platalea minor", "ru", "малая колпица"),
    ("Grus vipio", "ru", "даурский журавль"),          # through the synonym
    ("Panthera uncia", "mn", "ирвэс"),
    ("Uncia uncia", "en", "Snow Leopard"),
])
def test_vernacular_names(name: str, language: str, expected: str) -> None:
    assert expected in vernacular_names(name, language)


FLAGSHIPS = ("Panthera tigris altaica", "Panthera pardus orientalis", "Panthera uncia",
             "Grus japonensis", "Grus monacha", "Antigone vipio", "Leucogeranus leucogeranus",
             "Platalea minor", "Ciconia boyciana", "Calidris pygmaea")


@pytest.mark.parametrize("name", FLAGSHIPS)
def test_flagships_have_names_in_the_five_national_languages_of_the_flyway(name: str) -> None:
    # Mongolian is given only where the compiler was sure (policies/data/taxonomy/SOURCE.md).
    for language in ("en", "ru", "zh", "ko", "ja"):
        assert vernacular_names(name, language), (name, language)


@pytest.mark.parametrize(("query", "inside", "outside"), [
    ("Platalea", {"Platalea minor", "Platalea leucorodia", "Platalea alba"}, {"Ardea cinerea"}),
    ("Anatidae", {"Mareca strepera", "Anas strepera", "Cygnus cygnus"}, {"Grus grus"}),
    ("heron", {"Ardea cinerea", "Ardea goliath", "Egretta garzetta"}, {"Grus grus"}),
    ("HERONS", {"Ardea cinerea"}, set()),
    ("鹭", {"Ardea cinerea", "Platalea minor"}, {"Grus grus"}),
    ("Mammalia", {"Homo sapiens", "Panthera uncia", "Uncia uncia"}, {"Aves", "Grus grus"}),
    ("", set(), {"Grus grus"}),
])
def test_search_names(query: str, inside: set[str], outside: set[str]) -> None:
    found = search_names(query)
    assert inside <= found.names
    assert not outside & found.names


def test_search_names_gives_prefixes_for_genera_and_species_only() -> None:
    assert search_names("Platalea").prefixes == {"Platalea "}
    assert search_names("Panthera tigris").prefixes == {"Panthera tigris "}
    assert "Mareca " in search_names("Anatidae").prefixes
    assert not any(p.startswith("Anatidae") for p in search_names("Anatidae").prefixes)
    assert search_names("Myodes").prefixes == {"Myodes "}   # a genus outside the backbone
    assert search_names("Myodes rufocanus").prefixes == set()
    assert search_names("Ardea cinerea").matched == ("Ardea cinerea",)


@pytest.mark.parametrize(("rows", "message"), [
    ("grus grus,species,accepted,,,,,,IOC,\n", "written normalised"),
    ("Grus grus,species,accepted,,,,,,IOC,\nGrus grus,species,accepted,,,,,,IOC,\n",
     "listed twice"),
    ("Grus grus,kingdom,accepted,,,,,,IOC,\n", "taxonRank"),
    ("Grus grus,species,doubtful,,,,,,IOC,\n", "taxonomicStatus"),
    ("Grus grus,species,synonym,,,,,,IOC,\n", "taxonomicStatus"),
    ("Grus grus,species,accepted,,,,,,,\n", "nameAccordingTo"),
    ("Grus cinerea,species,synonym,Grus grus,,,,,IOC,\n", "not accepted: Grus grus"),
])
def test_a_broken_taxon_file_names_the_line(rows: str, message: str) -> None:
    with pytest.raises(BackboneError, match=message) as caught:
        parse_taxa(HEADER + rows)
    assert "taxon.csv" in str(caught.value)


def test_a_wrong_header_is_refused() -> None:
    with pytest.raises(BackboneError, match="header"):
        parse_taxa("name,rank\nGrus grus,species\n")


@pytest.mark.parametrize(("row", "message"), [
    ("Grus cinerea,en,Common Crane,IOC", "line 2 .*not an accepted name"),
    ("Grus grus,eng,Common Crane,IOC", "ISO 639-1"),
    ("Grus grus,en,,IOC", "ISO 639-1"),
    ("Grus grus,en,Common Crane,", "source"),
])
def test_a_broken_vernacular_file_names_the_line(row: str, message: str) -> None:
    taxa = parse_taxa(HEADER + "Grus grus,species,accepted,,,,,,IOC,\n")
    with pytest.raises(BackboneError, match=message):
        parse_vernacular("scientificName,language,vernacularName,source\n" + row + "\n", taxa)


@pytest.mark.parametrize(("query", "name", "answers"), [
    ("Mareca strepera", "Anas strepera", True),     # a synonym of the taxon
    ("Anatidae", "Anas erythrorhyncha", True),      # outside the backbone, genus below
    ("Platalea", "Platalea minor", True),
    ("Platalea", "Ardea cinerea", False),
    ("Panthera tigris", "Panthera tigris altaica", True),
    ("Myodes", "Myodesia x", False),                # a prefix is a whole genus
])
def test_a_search_answers_the_names_it_asks_for(query: str, name: str, answers: bool) -> None:
    assert search_names(query).answers(name) is answers
