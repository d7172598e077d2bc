"""The coordinated census: max per site in the window, zeros kept, outside counts listed."""

from __future__ import annotations

from datetime import date

import pytest

from policies.census import CensusError, CensusRecord, CensusWindow, census

SPOONBILL = "Platalea minor"
WINDOW = CensusWindow.parse("01-17..01-19")


def rec(site: str, country: str, day: tuple[int, int, int], count: int | None,
        taxon: str = SPOONBILL) -> CensusRecord:
    return CensusRecord(site, country, date(*day), taxon, count)


RECORDS = [
    rec("ZENGWEN", "TW", (2024, 1, 17), 2500), rec("ZENGWEN", "TW", (2024, 1, 19), 2710),
    rec("ZENGWEN", "TW", (2024, 1, 24), 3100),          # after the window: listed, not added
    rec("MAIPO", "HK", (2024, 1, 18), 0),               # counted, none found: a zero
    rec("DEEPBAY", "HK", (2024, 1, 18), None),          # not counted: nothing
    rec("HADO", "KR", (2024, 1, 18), 41),
    rec("ZENGWEN", "TW", (2023, 1, 18), 2400), rec("MAIPO", "HK", (2023, 1, 18), 300),
    rec("HADO", "KR", (2023, 2, 18), 99),               # another month: not the census
    rec("HADO", "KR", (2024, 1, 18), 7, taxon="Grus monacha"),
]


def test_the_census_of_a_year_and_its_change() -> None:
    result = census(RECORDS, taxa=[SPOONBILL], year=2024, window=WINDOW)
    assert result["window"] == "2024-01-17 to 2024-01-19"
    [spoonbill] = result["species"]
    assert spoonbill["sites"] == [{"site": "HADO", "country": "KR", "count": 41},
                                  {"site": "MAIPO", "country": "HK", "count": 0},
                                  {"site": "ZENGWEN", "country": "TW", "count": 2710}]
    countries = {r["country"]: r for r in spoonbill["countries"]}
    assert countries["TW"] == {"country": "TW", "total": 2710, "sites": 1, "previous": 2400,
                               "change_percent": 12.9}
    assert countries["HK"]["total"] == 0 and countries["HK"]["change_percent"] == -100.0
    assert countries["KR"]["previous"] is None and countries["KR"]["change_percent"] is None
    assert spoonbill["flyway"] == {"country": "flyway", "total": 2751, "sites": 3,
                                   "previous": 2700, "change_percent": 1.9}
    assert spoonbill["outside_window"] == [{"site": "ZENGWEN", "country": "TW",
                                            "date": "2024-01-24", "count": 3100}]


def test_synonyms_count_as_one_species() -> None:
    records = [rec("CHEORWON", "KR", (2024, 1, 18), 3000, taxon="Grus vipio"),
               rec("IZUMI", "JP", (2024, 1, 18), 1500, taxon="Antigone vipio")]
    [crane] = census(records, taxa=["Grus vipio"], year=2024, window=WINDOW)["species"]
    assert crane["taxon"] == "Antigone vipio" and crane["flyway"]["total"] == 4500


@pytest.mark.parametrize("text", ["01-17", "01-17..02-03", "01-19..01-17", "02-30..02-31",
                                  "1-17..1-19", ""])
def test_a_window_must_be_days_of_one_month(text: str) -> None:
    with pytest.raises(CensusError):
        CensusWindow.parse(text)


def test_a_released_census_holds_totals_only_and_merges_by_adding() -> None:
    from policies.census import merge_census, released_census

    south = released_census(census(RECORDS, taxa=[SPOONBILL], year=2024, window=WINDOW))
    assert "sites" not in south["species"][0] and south["species"][0]["outside_window"] == 1
    north = released_census(census([rec("ZENGWEN2", "TW", (2024, 1, 18), 90),
                                    rec("KHANKA", "RU", (2024, 1, 18), 0)],
                                   taxa=[SPOONBILL], year=2024, window=WINDOW))
    merged = merge_census([south, north])
    [spoonbill] = merged["species"]
    countries = {r["country"]: r for r in spoonbill["countries"]}
    assert countries["TW"] == {"country": "TW", "total": 2800, "sites": 2, "previous": 2400,
                               "change_percent": 16.7}
    assert countries["RU"]["total"] == 0 and countries["RU"]["previous"] is None
    assert spoonbill["flyway"]["total"] == 2751 + 90
    assert spoonbill["flyway"]["previous"] == 2700 and spoonbill["outside_window"] == 1
    other = released_census(census([], taxa=[SPOONBILL], year=2023, window=WINDOW))
    with pytest.raises(CensusError, match="cannot merge"):
        merge_census([south, other])
