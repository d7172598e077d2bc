"""Scientific names: normalisation, a taxonomic backbone, and search by any name.

Partners name the same animal differently: a Russian crane count may report
*Grus vipio* while a Chinese one reports *Antigone vipio*; the Camtrap DP
example says *Anas strepera* for the gadwall that the IOC list calls *Mareca
strepera*. Corridor keys taxa by scientific name (DESIGN.md §4), so the
catalog stores every name a taxon goes by and a search for any of them finds
all of them.

The backbone is two Darwin Core tables shipped with the package
(``policies/data/taxonomy/``, described in its ``SOURCE.md``):

* ``taxon.csv``: accepted names and synonyms of the region's flagship and
  monitored vertebrates, the taxa of the bundled example data, and the
  genera, families, orders and classes above them, each with its rank, its
  higher classification and the authority the accepted name follows;
* ``vernacularname.csv``: common names in English, Russian, Chinese, Korean,
  Japanese and Mongolian, each with its source.

Names outside the backbone pass through, only normalised. Apart from reading
those two packaged files once, at import, this module is pure: no other IO,
no clock.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

__all__ = [
    "HIGHER_RANKS",
    "SYNONYMS",
    "BackboneError",
    "NameSearch",
    "Taxon",
    "accepted_name",
    "names_for",
    "normalise",
    "parse_taxa",
    "parse_vernacular",
    "same_taxon",
    "search_names",
    "vernacular_names",
]

#: Ranks above the species, from the lowest; their names head a group of species.
HIGHER_RANKS = ("genus", "family", "order", "class")
RANKS = frozenset({"subspecies", "species", *HIGHER_RANKS})
_TAXON_COLUMNS = ("scientificName", "taxonRank", "taxonomicStatus", "acceptedNameUsage",
                  "genus", "family", "order", "class", "nameAccordingTo", "taxonRemarks")
_VERNACULAR_COLUMNS = ("scientificName", "language", "vernacularName", "source")
_LANGUAGE = re.compile(r"[a-z]{2}")  # ISO 639-1, as the Darwin Core VernacularName extension


@dataclass(frozen=True)
class Taxon:
    """One accepted name, the other names it goes by, its rank and place, and its authority."""

    accepted: str
    synonyms: tuple[str, ...]
    source: str
    rank: str = "species"
    #: The taxa above it as ``(rank, name)`` pairs, lowest first, where known.
    higher: tuple[tuple[str, str], ...] = ()

    def above(self, rank: str) -> str:
        """The name of the taxon of ``rank`` above this one, or ``""``."""
        return dict(self.higher).get(rank, "")


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


class BackboneError(ValueError):
    """A backbone file breaks its format; the message names the file and line."""


def _packaged(name: str) -> str:
    return resources.files("policies").joinpath("data", "taxonomy", name).read_text("utf-8")


def _rows(name: str, text: str,
          columns: tuple[str, ...]) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != columns:
        raise BackboneError(f"{name}: the header must be {','.join(columns)}")
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}


def parse_taxa(text: str) -> tuple[Taxon, ...]:
    """The accepted taxa of a ``taxon.csv`` text, each with its synonyms.

    Raises:
        BackboneError: a wrong header, a name not written normalised or listed
            twice, an unknown rank or status, a missing authority, or a
            synonym of a name that is not accepted (naming the line).
    """
    accepted: dict[str, dict[str, str]] = {}
    synonyms: dict[str, list[str]] = {}
    seen: set[str] = set()
    for line, row in _rows("taxon.csv", text, _TAXON_COLUMNS):
        name, rank, status = row["scientificName"], row["taxonRank"], row["taxonomicStatus"]
        where = f"taxon.csv line {line} ({name or 'no name'})"
        if not name or normalise(name) != name:
            raise BackboneError(f"{where}: the name must be written normalised")
        if name in seen:
            raise BackboneError(f"{where}: the name is listed twice")
        if rank not in RANKS:
            raise BackboneError(f"{where}: taxonRank must be one of {', '.join(sorted(RANKS))}")
        if not row["nameAccordingTo"]:
            raise BackboneError(f"{where}: nameAccordingTo must cite the authority")
        seen.add(name)
        if status == "accepted" and not row["acceptedNameUsage"]:
            accepted[name] = row
        elif status == "synonym" and row["acceptedNameUsage"]:
            synonyms.setdefault(row["acceptedNameUsage"], []).append(name)
        else:
            raise BackboneError(f"{where}: taxonomicStatus must be 'accepted' (with no "
                                "acceptedNameUsage) or 'synonym' (with one)")
    if unknown := sorted(set(synonyms) - set(accepted)):
        raise BackboneError("taxon.csv: synonyms point at names not accepted: "
                            + ", ".join(unknown))
    return tuple(
        Taxon(name, tuple(synonyms.get(name, ())),
              "; ".join(v for v in (row["nameAccordingTo"], row["taxonRemarks"]) if v),
              row["taxonRank"],
              tuple((r, row[r]) for r in HIGHER_RANKS if row[r]))
        for name, row in accepted.items())


#: The backbone's accepted taxa, each with its synonyms (from ``taxon.csv``).
SYNONYMS: tuple[Taxon, ...] = parse_taxa(_packaged("taxon.csv"))


def _build() -> tuple[Mapping[str, str], Mapping[str, frozenset[str]]]:
    accepted_of: dict[str, str] = {}
    names: dict[str, frozenset[str]] = {}
    for taxon in SYNONYMS:
        group = frozenset({taxon.accepted, *taxon.synonyms})
        for name in group:
            accepted_of[name] = taxon.accepted
        names[taxon.accepted] = group
    return MappingProxyType(accepted_of), MappingProxyType(names)


_ACCEPTED_OF, _NAMES = _build()
_TAXA = MappingProxyType({t.accepted: t for t in SYNONYMS})


def parse_vernacular(text: str, taxa: Iterable[Taxon]
                     ) -> Mapping[str, tuple[tuple[str, str], ...]]:
    """The ``(language, name)`` pairs of a ``vernacularname.csv`` text, by accepted name.

    Raises:
        BackboneError: a wrong header, a name that is not an accepted name of
            ``taxa``, or a row without an ISO 639-1 language, a name or a source.
    """
    known = {t.accepted for t in taxa}
    found: dict[str, list[tuple[str, str]]] = {}
    for line, row in _rows("vernacularname.csv", text, _VERNACULAR_COLUMNS):
        name, language = row["scientificName"], row["language"]
        where = f"vernacularname.csv line {line} ({name or 'no name'})"
        if name not in known:
            raise BackboneError(f"{where}: not an accepted name of taxon.csv")
        if not _LANGUAGE.fullmatch(language) or not row["vernacularName"] or not row["source"]:
            raise BackboneError(f"{where}: needs an ISO 639-1 language, a name and a source")
        found.setdefault(name, []).append((language, row["vernacularName"]))
    return MappingProxyType({k: tuple(v) for k, v in found.items()})


_VERNACULAR = parse_vernacular(_packaged("vernacularname.csv"), SYNONYMS)


def accepted_name(name: str) -> str:
    """The accepted name for ``name``: its backbone entry, or ``name`` normalised."""
    normalised = normalise(name)
    return _ACCEPTED_OF.get(normalised, normalised)


def names_for(name: str) -> frozenset[str]:
    """Every name the taxon of ``name`` goes by (accepted first among equals), normalised.

    For a name outside the backbone this is just the normalised name; for an
    empty name, the empty set.
    """
    accepted = accepted_name(name)
    if not accepted:
        return frozenset()
    return _NAMES.get(accepted, frozenset({accepted}))


def same_taxon(a: str, b: str) -> bool:
    """Whether two names denote the same taxon in Corridor's backbone (never for empty names)."""
    first, second = accepted_name(a), accepted_name(b)
    return bool(first) and first == second


def vernacular_names(name: str, language: str | None = None) -> tuple[str, ...]:
    """The common names of the taxon of ``name``, in ``language`` (ISO 639-1) or in all."""
    return tuple(v for lang, v in _VERNACULAR.get(accepted_name(name), ())
                 if language is None or lang == language)


@dataclass(frozen=True)
class NameSearch:
    """What a taxon query means: exact names, and name prefixes for the groups it heads."""

    #: Every name (accepted and synonyms) that answers the query.
    names: frozenset[str]
    #: ``"Genus "`` or ``"Genus species "`` prefixes: names below a group the query heads,
    #: including those outside the backbone.
    prefixes: frozenset[str]
    #: The backbone's accepted taxa the query matched directly, for showing what it meant.
    matched: tuple[str, ...]

    def answers(self, name: str) -> bool:
        """Whether ``name`` (under any of its names) is one the query asks for."""
        found = names_for(name)
        return bool(found & self.names) or any(n.startswith(p) for n in found
                                               for p in self.prefixes)


# Scripts written without spaces between words: a query matches inside a name.
_UNSPACED = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")


def _unspaced(text: str) -> bool:
    return any(unicodedata.name(c, "").startswith(_UNSPACED) for c in text)


def _by_vernacular(query: str) -> list[str]:
    wanted = query.casefold()
    if _unspaced(wanted):
        return [name for name, pairs in _VERNACULAR.items()
                if any(wanted in v.casefold() for _, v in pairs)]
    if len(wanted) < 3:
        return []
    word = re.compile(rf"(?<!\w){re.escape(wanted)}")
    return [name for name, pairs in _VERNACULAR.items()
            if any(word.search(v.casefold()) for _, v in pairs)]


def _below(group: str) -> list[Taxon]:
    """Backbone taxa in ``group`` (a genus, family, order or class) or infraspecific to it."""
    return [t for t in SYNONYMS
            if any(group == n for _, n in t.higher) or t.accepted.startswith(group + " ")]


def search_names(query: str) -> NameSearch:
    """What a catalog search for ``query`` should match.

    ``query`` may be any name of a taxon (an accepted name or a synonym: every
    name of the taxon answers), a genus, family, order or class (every species
    below it, and names outside the backbone that begin with a genus below it),
    or a common name in any of the backbone's languages (a word of it, such as
    "heron", or part of a Chinese, Japanese or Korean name, such as 鹭). A
    species also finds its subspecies. An empty query matches nothing.
    """
    normalised = normalise(query)
    if not normalised:
        return NameSearch(frozenset(), frozenset(), ())
    accepted = accepted_name(normalised)
    matched = [accepted] if accepted in _TAXA else []
    matched += [n for n in _by_vernacular(query.strip()) if n not in matched]
    heads = set(matched)
    if not matched and " " not in normalised and normalised.isalpha():
        heads.add(normalised)  # a genus outside the backbone: its names by prefix
    names: set[str] = set(names_for(normalised))
    prefixes: set[str] = set()
    for head in heads:
        taxon = _TAXA.get(head)
        if taxon is None or taxon.rank in ("genus", "species"):
            for name in names_for(head):
                prefixes.add(name + " ")
        for below in _below(head):
            names |= {below.accepted, *below.synonyms}
            if below.rank == "genus":
                prefixes.add(below.accepted + " ")
        names |= names_for(head)
    return NameSearch(frozenset(names), frozenset(prefixes), tuple(matched))
