"""The coordinated census: one window, one count per site, totals that do not double-count.

Flyway censuses (the yearly Black-faced Spoonbill census, the crane counts of
the wintering grounds) add up counts that every country takes inside one
short window, so that birds moving between sites are counted once: per site
the **maximum** count inside the window (several counts of one site in the
window are the same birds), sites summed per country and over the flyway.

* A site counted inside the window with none of the species found
  contributes **0**, and is listed: a zero is a result, not a gap.
* Counts of the census month outside the window are **listed separately**
  (site, date, count) and left out of every total.
* Each total is given with the previous year's, computed the same way, and
  the change in per cent (none when the previous total is 0 or no site was
  counted then).

The window is in the sites' local calendar dates (``eventDate`` as recorded),
as census organisers set it. A count dated only to the month (a yearly
census series) is inside a window that covers that whole month, and in no
narrower one. Pure: no IO, no clock.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from policies.taxonomy import accepted_name

__all__ = ["CensusError", "CensusRecord", "CensusWindow", "census", "merge_census",
           "released_census"]

_WINDOW = re.compile(r"(\d\d)-(\d\d)\.\.(\d\d)-(\d\d)")


class CensusError(ValueError):
    """A census window or year that cannot be used."""


@dataclass(frozen=True)
class CensusWindow:
    """Days of one month, both included: ``01-17..01-19`` is 17 to 19 January."""

    month: int
    first_day: int
    last_day: int

    @classmethod
    def parse(cls, text: str) -> CensusWindow:
        """``MM-DD..MM-DD`` within one month.

        :raises CensusError: another shape, two months, or days that do not exist.
        """
        match = _WINDOW.fullmatch(text.strip())
        if not match:
            raise CensusError(f"census window {text!r}: write MM-DD..MM-DD, e.g. 01-17..01-19")
        m1, d1, m2, d2 = (int(g) for g in match.groups())
        if m1 != m2:
            raise CensusError(f"census window {text!r}: a window lies within one month")
        try:
            date(2024, m1, d1), date(2024, m2, d2)  # 2024: 29 February exists
        except ValueError as e:
            raise CensusError(f"census window {text!r}: {e}") from e
        if d2 < d1:
            raise CensusError(f"census window {text!r}: the last day is before the first")
        return cls(m1, d1, d2)

    def holds(self, day: date) -> bool:
        """Whether ``day`` is inside the window (any year)."""
        return day.month == self.month and self.first_day <= day.day <= self.last_day

    def covers_month(self, year: int) -> bool:
        """Whether the window is the whole of its month in ``year`` (then a count dated
        only to the month, as yearly census series are, lies inside it)."""
        return self.first_day == 1 and self.last_day == calendar.monthrange(year,
                                                                            self.month)[1]

    def describe(self, year: int) -> str:
        """``2024-01-17 to 2024-01-19``."""
        return (f"{year}-{self.month:02d}-{self.first_day:02d} to "
                f"{year}-{self.month:02d}-{self.last_day:02d}")


@dataclass(frozen=True)
class CensusRecord:
    """One count of one species at one site (``count`` None: looked for, not counted)."""

    site: str
    country: str
    day: date
    taxon: str
    count: int | None


@dataclass
class _Year:
    sites: dict[str, int] = field(default_factory=dict)  # site -> max count in the window
    countries: dict[str, str] = field(default_factory=dict)  # site -> country
    outside: list[dict[str, Any]] = field(default_factory=list)


def census(records: Iterable[CensusRecord], *, taxa: Iterable[str], year: int,
           window: CensusWindow) -> dict[str, Any]:
    """The census of ``year`` and of the year before, per species, country and flyway.

    :returns: ``{"window", "year", "previous_year", "species": [...]}``; each
        species has ``sites`` (site, country, count), ``countries`` (country,
        total, sites, previous, change_percent), ``flyway`` (the same over
        every country) and ``outside_window`` (site, country, date, count).
    """
    wanted = [accepted_name(t) for t in taxa]
    years = {(t, y): _Year() for t in wanted for y in (year, year - 1)}
    for record in records:
        taxon = accepted_name(record.taxon)
        bucket = years.get((taxon, record.day.year))
        if bucket is None or record.day.month != window.month:
            continue
        if record.count is None:
            continue  # looked for but not counted: neither a zero nor a figure
        if window.holds(record.day):
            bucket.sites[record.site] = max(bucket.sites.get(record.site, 0), record.count)
            bucket.countries[record.site] = record.country
        elif record.day.year == year:
            bucket.outside.append({"site": record.site, "country": record.country,
                                   "date": record.day.isoformat(), "count": record.count})
    species: list[dict[str, Any]] = []
    for taxon in wanted:
        now, before = years[(taxon, year)], years[(taxon, year - 1)]
        countries: list[str] = sorted(set(now.countries.values())
                                      | set(before.countries.values()))
        rows = [_total(country, _by_country(now, country), _by_country(before, country))
                for country in countries]
        species.append({
            "taxon": taxon,
            "sites": [{"site": s, "country": now.countries[s], "count": n}
                      for s, n in sorted(now.sites.items())],
            "countries": rows,
            "flyway": _total("flyway", now.sites, before.sites),
            "outside_window": sorted(now.outside, key=lambda r: (r["site"], r["date"])),
        })
    return {"window": window.describe(year), "year": year, "previous_year": year - 1,
            "species": species}


def _by_country(bucket: _Year, country: str) -> Mapping[str, int]:
    return {s: n for s, n in bucket.sites.items() if bucket.countries[s] == country}


def _total(name: str, now: Mapping[str, int], before: Mapping[str, int]) -> dict[str, Any]:
    total, previous = sum(now.values()), sum(before.values()) if before else None
    change = (None if not previous or not now
              else round(100 * (total - previous) / previous, 1))
    return {"country": name, "total": total if now else None, "sites": len(now),
            "previous": previous, "change_percent": change}


def released_census(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a node sends a partner: per species the country and flyway totals, and how
    many counts were left out; no site, no date, no single count."""
    return {"window": result["window"], "year": result["year"],
            "previous_year": result["previous_year"],
            "species": [{"taxon": s["taxon"], "countries": [dict(r) for r in s["countries"]],
                         "flyway": dict(s["flyway"]),
                         "outside_window": len(s["outside_window"])}
                        for s in result["species"]]}


def merge_census(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several nodes' released censuses as one: countries and the flyway added up.

    A country reported by two nodes is added (their sites differ: each node
    counts its own). Changes are recomputed from the sums, never averaged.

    :raises CensusError: the results are of different windows, years or species.
    """
    if not results:
        raise CensusError("nothing to merge")
    first = results[0]
    for other in results[1:]:
        for key in ("window", "year"):
            if other[key] != first[key]:
                raise CensusError(f"cannot merge censuses of {key} {first[key]!r} and "
                                  f"{other[key]!r}")
        if [s["taxon"] for s in other["species"]] != [s["taxon"] for s in first["species"]]:
            raise CensusError("cannot merge censuses of different species")
    species = []
    for i, taxon in enumerate(s["taxon"] for s in first["species"]):
        now: dict[str, list[int]] = {}
        before: dict[str, int | None] = {}
        for result in results:
            for row in result["species"][i]["countries"]:
                country = row["country"]
                totals = now.setdefault(country, [0, 0, 0])  # total, sites, counted at all
                if row["total"] is not None:
                    totals[0] += row["total"]
                    totals[2] = 1
                totals[1] += row["sites"]
                if row["previous"] is not None:
                    before[country] = (before.get(country) or 0) + row["previous"]
                else:
                    before.setdefault(country, None)
        rows = [_summed(c, now[c], before.get(c)) for c in sorted(now)]
        counted = [r for r in rows if r["total"] is not None]
        previous = [r["previous"] for r in rows if r["previous"] is not None]
        flyway = _summed("flyway", [sum(r["total"] for r in counted),
                                    sum(r["sites"] for r in rows), int(bool(counted))],
                         sum(previous) if previous else None)
        species.append({"taxon": taxon, "countries": rows, "flyway": flyway,
                        "outside_window": sum(r["species"][i]["outside_window"]
                                              for r in results)})
    return {"window": first["window"], "year": first["year"],
            "previous_year": first["previous_year"], "species": species}


def _summed(name: str, now: Sequence[int], previous: int | None) -> dict[str, Any]:
    total = now[0] if now[2] else None
    change = (None if not previous or total is None
              else round(100 * (total - previous) / previous, 1))
    return {"country": name, "total": total, "sites": now[1], "previous": previous,
            "change_percent": change}
