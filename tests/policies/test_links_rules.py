"""The match ledger's pure rules: one animal to one, one taxon, a known animal."""

from __future__ import annotations

from policies.links import HeldLink, link_refusal

LEOPARD, TIGER = "Panthera pardus orientalis", "Panthera tigris altaica"
HELD = [HeldLink("L1", "PPO-RU-001", "CN-L01", "confirmed")]


def refusal(local_id: str = "PPO-RU-002", other_id: str = "CN-L02",
            local_taxon: str | None = LEOPARD, other_taxon: str = LEOPARD) -> str | None:
    return link_refusal(local_id=local_id, local_taxon=local_taxon, other_id=other_id,
                        other_taxon=other_taxon, other="cn-ntlnp", held=HELD)


def test_a_free_pair_of_one_taxon_is_allowed() -> None:
    assert refusal() is None


def test_either_animal_already_linked_is_refused_naming_the_link() -> None:
    for local_id, other_id in (("PPO-RU-001", "CN-L02"), ("PPO-RU-002", "CN-L01")):
        why = refusal(local_id, other_id)
        assert why is not None and "one animal to two" in why and "L1" in why


def test_two_taxa_and_unknown_animals_are_refused() -> None:
    assert "two taxa" in (refusal(other_taxon=TIGER) or "")
    assert "not an individual" in (refusal(local_taxon=None) or "")


def test_a_synonym_is_the_same_taxon() -> None:
    assert refusal(other_taxon="Panthera pardus japonensis") is None
    assert refusal(local_taxon=TIGER, other_taxon="Panthera tigris amurensis") is None
