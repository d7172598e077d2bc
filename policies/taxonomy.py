"""Scientific names: normalisation and a small curated synonym table.

Partners name the same animal differently: a Russian crane count may report
*Grus vipio* while a Chinese one reports *Antigone vipio*; a camera-trap
dataset may say *Uncia uncia* for the snow leopard. Corridor keys taxa by
scientific name (DESIGN.md §4), so the catalog stores every name a taxon goes
by and a search for any of them finds all of them.

The table is deliberately small: the NEASPEC flagship species (Amur tiger,
Far Eastern leopard, snow leopard, the flyway cranes, Black-faced Spoonbill)
and the prey species of the demo federation. Each entry cites the authority
for the name Corridor accepts. Names not in the table pass through, only
normalised. This module is pure: no IO, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["SYNONYMS", "Taxon", "accepted_name", "names_for", "normalise", "same_taxon"]


@dataclass(frozen=True)
class Taxon:
    """One accepted name, the other names it goes by, and the authority for the choice."""

    accepted: str
    synonyms: tuple[str, ...]
    source: str


# Accepted name first; synonyms are names in current or recent use by the
# monitoring partners (old combinations, basionyms, subsumed subspecies).
SYNONYMS: tuple[Taxon, ...] = (
    # --- Cats -------------------------------------------------------------
    # Amur tiger. Kitchener et al. 2017 (Cat Classification Task Force of the
    # IUCN/SSC Cat Specialist Group, Cat News Special Issue 11) lump
    # all mainland Asian tigers into P. t. tigris. Corridor keeps altaica as the
    # accepted name (it is what both parks' monitoring programmes and the demo
    # data use) but maps P. t. tigris to it, so a search under the CCTF name
    # finds the Amur tiger data and vice versa. Caveat: in a catalog with
    # Bengal tiger data this would over-match; the table is NEASPEC-scoped.
    # amurensis Dode, 1871 is a junior synonym of altaica Temminck, 1844
    # (Wozencraft 2005, Mammal Species of the World 3rd ed.).
    Taxon("Panthera tigris altaica",
          ("Panthera tigris tigris", "Panthera tigris amurensis"),
          "Temminck 1844; Kitchener et al. 2017 (CCTF) treat as P. t. tigris"),
    # Far Eastern (Amur) leopard. Kitchener et al. 2017 (CCTF, pp. 73-75)
    # subsume the North Chinese leopard P. p. japonensis (Gray, 1862) into
    # P. p. orientalis (Schlegel, 1857).
    Taxon("Panthera pardus orientalis",
          ("Panthera pardus japonensis", "Felis orientalis"),
          "Schlegel 1857; Kitchener et al. 2017 (CCTF)"),
    # Snow leopard. Kitchener et al. 2017 (CCTF) keep it in Panthera following
    # molecular phylogenies (e.g. Johnson et al. 2006); Uncia Gray, 1854 is
    # the older monotypic genus, Felis uncia Schreber, 1775 the basionym.
    Taxon("Panthera uncia", ("Uncia uncia", "Felis uncia"),
          "Schreber 1775; Kitchener et al. 2017 (CCTF)"),
    # --- Cranes and spoonbill (flyway counts) -----------------------------
    # White-naped Crane. Krajewski et al. 2010 (The Auk 127: 440-452) moved it
    # from Grus to Antigone; adopted by the IOC World Bird List.
    Taxon("Antigone vipio", ("Grus vipio",),
          "Pallas 1811; Krajewski et al. 2010; IOC World Bird List"),
    # Hooded Crane stays in Grus (Krajewski et al. 2010; IOC). "Antigone
    # monacha" is not a published combination; it is mapped defensively
    # because the White-naped Crane's move invites the mistake.
    Taxon("Grus monacha", ("Antigone monacha",),
          "Temminck 1835; Krajewski et al. 2010; IOC World Bird List"),
    # Red-crowned Crane: no competing name in use; listed so the flagship
    # species are all here.
    Taxon("Grus japonensis", (), "Statius Muller 1776; IOC World Bird List"),
    # Siberian Crane. Krajewski et al. 2010 placed it in the monotypic genus
    # Leucogeranus; IOC World Bird List follows.
    Taxon("Leucogeranus leucogeranus", ("Grus leucogeranus",),
          "Pallas 1773; Krajewski et al. 2010; IOC World Bird List"),
    # Black-faced Spoonbill: no synonym in current use.
    Taxon("Platalea minor", (), "Temminck & Schlegel 1849; IOC World Bird List"),
    # --- Prey of the demo federation ----------------------------------------
    # Wapiti split from red deer (Ludt et al. 2004, Mol. Phylogenet. Evol.
    # 31: 1064-1083; Mammal Diversity Database). Manchurian wapiti is
    # C. canadensis xanthopygus (Milne-Edwards, 1867).
    Taxon("Cervus canadensis", ("Cervus elaphus canadensis",),
          "Erxleben 1777; Ludt et al. 2004; Mammal Diversity Database"),
    Taxon("Cervus canadensis xanthopygus", ("Cervus elaphus xanthopygus",),
          "Milne-Edwards 1867; Ludt et al. 2004; Mammal Diversity Database"),
    # Siberian roe deer, formerly a subspecies of the European roe deer
    # (Danilkin 1996; Grubb 2005, Mammal Species of the World 3rd ed.).
    Taxon("Capreolus pygargus", ("Capreolus capreolus pygargus",),
          "Pallas 1771; Grubb 2005 (MSW3)"),
    # Asian badger, split from the European badger (Abramov 2002; Abramov &
    # Puzachenko 2013; IUCN Red List 2016).
    Taxon("Meles leucurus", ("Meles meles leucurus",),
          "Hodgson 1847; Abramov & Puzachenko 2013; IUCN Red List"),
)

# Infraspecific rank markers are written in lower case (ICZN/ICN practice).
_RANK_MARKERS = frozenset({"subsp.", "ssp.", "var.", "f.", "forma", "morph", "cf.", "aff."})
_EPITHET = re.compile(r"[A-Za-z][A-Za-z-]*")


def normalise(name: str) -> str:
    """Normalise the spelling of a scientific name (not its meaning).

    Whitespace runs collapse to one space; the genus (first word) is written
    with a capital initial and the rest lower case; the specific and
    infraspecific epithets (the second word, the third, and a word after a
    rank marker such as ``var.``) are lower case, as are rank markers. An
    infraspecific word written with a capital initial is left alone (it is an
    author, as in "Grus vipio Pallas"), and so is anything else: authorship,
    years, parentheses.
    """
    words = name.split()
    if not words:
        return ""
    out = [words[0][:1].upper() + words[0][1:].lower()]
    for position, word in enumerate(words[1:], start=1):
        lowered = word.lower()
        epithet = _EPITHET.fullmatch(word) is not None
        infraspecific = position == 2 or out[-1] in _RANK_MARKERS
        is_lower_case = (lowered in _RANK_MARKERS or (position == 1 and epithet)
                         or (infraspecific and epithet and not word.istitle()))
        out.append(lowered if is_lower_case else word)
    return " ".join(out)


def _build() -> tuple[Mapping[str, str], Mapping[str, frozenset[str]]]:
    accepted_of: dict[str, str] = {}
    names: dict[str, frozenset[str]] = {}
    for taxon in SYNONYMS:
        accepted = normalise(taxon.accepted)
        group = frozenset({accepted, *(normalise(s) for s in taxon.synonyms)})
        for name in group:
            if name in accepted_of:
                raise ValueError(f"taxonomy table lists {name!r} twice")
            accepted_of[name] = accepted
        names[accepted] = group
    return MappingProxyType(accepted_of), MappingProxyType(names)


_ACCEPTED_OF, _NAMES = _build()


def accepted_name(name: str) -> str:
    """The accepted name for ``name``: its synonym-table entry, or ``name`` normalised."""
    normalised = normalise(name)
    return _ACCEPTED_OF.get(normalised, normalised)


def names_for(name: str) -> frozenset[str]:
    """Every name the taxon of ``name`` goes by (accepted first among equals), normalised.

    For a name outside the table this is just the normalised name; for an
    empty name, the empty set.
    """
    accepted = accepted_name(name)
    if not accepted:
        return frozenset()
    return _NAMES.get(accepted, frozenset({accepted}))


def same_taxon(a: str, b: str) -> bool:
    """Whether two names denote the same taxon in Corridor's table (never for empty names)."""
    first, second = accepted_name(a), accepted_name(b)
    return bool(first) and first == second
