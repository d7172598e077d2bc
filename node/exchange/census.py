"""The coordinated census over one of this node's Darwin Core survey datasets.

Reads each survey event's site (``locationID``), country (``countryCode``)
and local date (``eventDate``) and each occurrence's species and
``individualCount``, and hands them to :func:`policies.census.census`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from corridor.db import table_of
from crypto.canonical import canonical_json
from crypto.errors import InvalidSignature
from crypto.jws import sign_detached, verify_detached
from crypto.keys import SigningKey
from crypto.trustlist import TrustList
from node.models import Dataset, Event, Occurrence
from policies.census import CensusRecord, CensusWindow, census
from policies.engine import Plan
from policies.taxonomy import accepted_name

__all__ = ["CENSUS_TYP", "census_tables", "dataset_census", "sign_census", "verify_census"]

#: ``typ`` of a signed census result; ``type`` member of its document.
CENSUS_TYP = "corridor-census+jws"
CENSUS_TYPE = "corridor.census"
_MAX_JWS = 4096


def _released(plan: Plan | None, taxon: str, lat: float | None, lon: float | None,
              start: datetime | None) -> bool:
    """Whether a partner's plan releases this count (taxa, area, time, embargo)."""
    if plan is None:
        return True
    if not plan.in_taxa(taxon) or plan.is_dropped(taxon):
        return False
    if not plan.in_area(lat, lon):
        return False
    cutoff = plan.embargo_cutoff(taxon)
    if start is None:
        return cutoff is None and plan.time_from is None and plan.time_to is None
    return not ((cutoff is not None and start > cutoff)
                or (plan.time_from is not None and start < plan.time_from)
                or (plan.time_to is not None and start >= plan.time_to))


def _records(session: Session, dataset: Dataset, taxa: set[str],
             window: CensusWindow, plan: Plan | None = None) -> Iterator[CensusRecord]:
    events, occ = table_of(Event), table_of(Occurrence)
    rows = session.execute(
        select(events.c.eventID, events.c.locationID, events.c.countryCode,
               events.c.eventDate, occ.c.scientificName, occ.c.individualCount,
               events.c.decimalLatitude, events.c.decimalLongitude,
               events.c.eventDate_start_utc)
        .join(occ, and_(occ.c.dataset_id == events.c.dataset_id,
                        occ.c.eventID == events.c.eventID))
        .where(events.c.dataset_id == dataset.id, occ.c.scientificName.is_not(None)))
    for event_id, site, country, day, taxon, count, lat, lon, start in rows:
        if accepted_name(taxon) not in taxa or not day or not _released(plan, taxon, lat, lon,
                                                                          start):
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
                   window: CensusWindow, plan: Plan | None = None) -> dict[str, Any]:
    """The census of ``year`` (and the year before) over ``dataset``'s survey counts.

    With ``plan`` (a partner's agreement), only the counts it releases are read.
    """
    wanted = [accepted_name(t) for t in taxa]
    result = census(_records(session, dataset, set(wanted), window, plan), taxa=wanted,
                    year=year, window=window)
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
        outside = species["outside_window"]
        if isinstance(outside, int):  # a released census: how many, not which
            if outside:
                tables.append(f"  {outside} counts outside the window, not in the totals")
        elif outside:
            left = ", ".join(f"{r['site']} {r['date']}: {r['count']:,}" for r in outside)
            tables.append(f"  outside the window, not in the totals: {left}")
    return Group(*tables)


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def sign_census(released: Mapping[str, Any], key: SigningKey, *, provider: str,
                recipient: str, agreement: str | None, dataset: Dataset,
                issued_at: datetime) -> dict[str, Any]:
    """``{"result": document, "jws": detached JWS}`` of a released census."""
    document = {"type": CENSUS_TYPE, "provider": provider, "recipient": recipient,
                "agreement": agreement,
                "dataset": {"name": dataset.name, "version": dataset.version},
                "issued_at": issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"), **released}
    return {"result": document,
            "jws": sign_detached(canonical_json(document), key, typ=CENSUS_TYP)}


def verify_census(signed: Any, trust_list: TrustList, *, provider: str, recipient: str,
                  agreement: str | None) -> dict[str, Any]:
    """The census result if ``provider`` signed it for ``recipient`` under ``agreement``.

    :raises ValueError: naming the first thing that does not hold.
    """
    if not isinstance(signed, dict) or set(signed) != {"result", "jws"}:
        raise ValueError("not a census result: expected exactly 'result' and 'jws'")
    result, jws = signed["result"], signed["jws"]
    if not isinstance(result, dict) or result.get("type") != CENSUS_TYPE:
        raise ValueError(f"not a census result: 'result.type' is not {CENSUS_TYPE!r}")
    member = trust_list.member(provider)
    if member is None:
        raise ValueError(f"{provider} is not an active member in trust list "
                         f"v{trust_list.version}")
    if not isinstance(jws, str) or len(jws) > _MAX_JWS:
        raise ValueError("the signature is missing or oversize")
    try:
        verify_detached(jws, canonical_json(result), member.keys, expected_typ=CENSUS_TYP,
                        max_size=_MAX_JWS)
    except InvalidSignature as e:
        raise ValueError(f"the signature does not verify with {provider}'s keys") from e
    for name, value in (("provider", provider), ("recipient", recipient),
                        ("agreement", agreement)):
        if result.get(name) != value:
            raise ValueError(f"the result is for {name} {result.get(name)!r}, not {value!r}")
    if not isinstance(result.get("species"), list):
        raise ValueError("the result holds no species")
    return result
