"""The coordinated census over one of this node's Darwin Core survey datasets.

Reads each survey event's site (``locationID``), country (``countryCode``)
and local date (``eventDate``) and each occurrence's species and
``individualCount``, and hands them to :func:`policies.census.census`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from rich.console import Group
from rich.table import Table
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from corridor.db import table_of
from node.models import Dataset, Event, Occurrence
from policies.census import CensusRecord, CensusWindow, census
from policies.taxonomy import accepted_name

__all__ = ["census_tables", "dataset_census"]


def _records(session: Session, dataset: Dataset, taxa: set[str],
             window: CensusWindow) -> Iterator[CensusRecord]:
    events, occ = table_of(Event), table_of(Occurrence)
    rows = session.execute(
        select(events.c.eventID, events.c.locationID, events.c.countryCode,
               events.c.eventDate, occ.c.scientificName, occ.c.individualCount)
        .join(occ, and_(occ.c.dataset_id == events.c.dataset_id,
                        occ.c.eventID == events.c.eventID))
        .where(events.c.dataset_id == dataset.id, occ.c.scientificName.is_not(None)))
    for event_id, site, country, day, taxon, count in rows:
        if accepted_name(taxon) not in taxa or not day:
            continue
        text = str(day)
        try:
            if re.fullmatch(r"\d{4}-\d\d", text):  # a month: inside only a whole-month window
                year, month = int(text[:4]), int(text[5:])
                if month != window.month or not window.covers_month(year):
                    continue
                when = date(year, month, 1)
            else:
                when = date.fromisoformat(text[:10])
        except ValueError:
            continue  # an interval or another partial date is not a census count
        yield CensusRecord(site or event_id, country or "", when, taxon, count)


def dataset_census(session: Session, dataset: Dataset, *, taxa: Iterable[str], year: int,
                   window: CensusWindow) -> dict[str, Any]:
    """The census of ``year`` (and the year before) over ``dataset``'s survey counts."""
    wanted = [accepted_name(t) for t in taxa]
    result = census(_records(session, dataset, set(wanted), window), taxa=wanted, year=year,
                    window=window)
    result["dataset"] = {"name": dataset.name, "version": dataset.version}
    return result


def census_tables(result: dict[str, Any]) -> Group:
    """One table per species: countries, the flyway, and the counts left out."""
    tables: list[Any] = []
    year, previous = result["year"], result["previous_year"]
    for species in result["species"]:
        table = Table(title=f"{species['taxon']}, census {result['window']}")
        for column in ("country", "sites", str(year), str(previous), "change"):
            table.add_column(column, justify="left" if column == "country" else "right")
        for row in [*species["countries"], species["flyway"]]:
            change = row["change_percent"]
            table.add_row("flyway (all countries)" if row is species["flyway"] else row["country"],
                          str(row["sites"]), _number(row["total"]), _number(row["previous"]),
                          "" if change is None else f"{change:+.1f}%",
                          end_section=row is species["countries"][-1] if species["countries"]
                          else False)
        tables.append(table)
        if species["outside_window"]:
            left = ", ".join(f"{r['site']} {r['date']}: {r['count']:,}"
                             for r in species["outside_window"])
            tables.append(f"  outside the window, not in the totals: {left}")
    return Group(*tables)


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
