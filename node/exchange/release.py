"""What a plan releases from a camera-trap dataset, as SQL (the closure of a release).

An owner who narrows an agreement to leopards expects the partner to learn
about leopards and nothing else (DESIGN.md §2, §8). The released
*observations* are the rows that pass the plan's filters; everything else in a
package is released only because a released observation reaches it:

* a **media** row, if a released observation was made on it (``mediaID``, for
  datasets classified at media level) or spans it (an event-level observation
  at the same camera whose start and end enclose the image's timestamp: the
  images of its event);
* a **deployment**, if a released observation was made at that camera, or the
  plan releases effort (cameras without detections, for camera-days);
* an **individual**, if a released observation names it.

Each rule is an ``EXISTS`` subquery correlated with the outer row, so the
database does the work and nothing per row is held in Python. The
event-window probe is bounded below by the dataset's longest event
(:meth:`CamtrapRelease.longest_event`), so it is an index range scan on
``(dataset_id, deploymentID, eventStart_utc)`` rather than a scan of the
camera's history.

Released-at-an-earlier-cutoff variants (``cutoffs=``) give the rows a
previous incremental export sent, so that the next one sends exactly the
difference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    Interval,
    Table,
    and_,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
)

from corridor.db import table_of
from node.models import Observation
from policies.engine import Plan

__all__ = ["CamtrapRelease", "embargo_clause"]

#: Seconds added to the longest event when bounding the event-window probe: SQLite's
#: ``datetime()`` drops fractions of a second, so the bound must stay loose.
_WINDOW_SLACK = 2


def embargo_clause(taxon: Column[Any], start: Column[Any],
                   cutoffs: Mapping[str, datetime]) -> ColumnElement[bool]:
    """Rows of an embargoed taxon (stored name -> cutoff) starting after its cutoff are out."""
    clauses = [and_(taxon == name, start > cutoff) for name, cutoff in sorted(cutoffs.items())]
    if not clauses:
        return literal(True)
    # "taxon IS NULL OR": NOT(NULL = 'x' AND ...) is NULL in SQL, which would silently
    # drop every row without a scientific name (blanks, people, vehicles).
    return or_(taxon.is_(None), not_(or_(*clauses)))


class CamtrapRelease:
    """The released observations of one export, and what they reach.

    :param names: the dataset's distinct scientific names as stored; the
        plan speaks of taxa in any spelling, SQL needs the stored strings.
    :param excluded_cameras: cameras the area filter leaves out (decided by
        the exporter, see :meth:`policies.engine.Plan.in_area`).
    """

    def __init__(self, engine: Engine, dataset_id: int, plan: Plan, *, names: Iterable[str],
                 excluded_cameras: Iterable[str]) -> None:
        self.engine, self.dataset_id, self.plan = engine, dataset_id, plan
        stored = sorted(set(names))
        self.drop_names = [n for n in stored if plan.is_dropped(n)]
        self.taxa_names = None if plan.taxa is None else [n for n in stored if plan.in_taxa(n)]
        #: Stored name -> embargo cutoff now.
        self.cutoffs = {n: c for n in stored if (c := plan.embargo_cutoff(n)) is not None}
        self.excluded = sorted(set(excluded_cameras))
        self._longest: float | None = self.longest_event()

    # -- observations ----------------------------------------------------------------

    def observations(self, obs: Any, *, cutoffs: Mapping[str, datetime] | None = None,
                     last_row: int | None = None) -> list[ColumnElement[bool]]:
        """The conditions a released observation row (of table or alias ``obs``) meets.

        ``cutoffs`` replaces the current embargo cutoffs and ``last_row``
        bounds ``source_row``: together, what an earlier export released.
        """
        where = [*self.within_terms(obs), *self.not_dropped(obs),
                 embargo_clause(obs.c.scientificName, obs.c.eventStart_utc,
                                self.cutoffs if cutoffs is None else cutoffs)]
        if last_row is not None:
            where.append(obs.c.source_row <= last_row)
        return where

    def within_terms(self, obs: Any) -> list[ColumnElement[bool]]:
        """The agreement's own narrowing: taxa, time window, area (cameras outside it)."""
        plan = self.plan
        where: list[ColumnElement[bool]] = [obs.c.dataset_id == self.dataset_id]
        if self.excluded:
            where.append(obs.c.deploymentID.not_in(self.excluded))
        if self.taxa_names is not None:
            where.append(obs.c.scientificName.in_(self.taxa_names))
        if plan.time_from is not None:
            where.append(obs.c.eventStart_utc >= plan.time_from)
        if plan.time_to is not None:
            where.append(obs.c.eventStart_utc < plan.time_to)
        return where

    def not_dropped(self, obs: Any) -> list[ColumnElement[bool]]:
        """Not a record of a category-1 taxon (withheld entirely)."""
        if not self.drop_names:
            return []
        return [or_(obs.c.scientificName.is_(None), obs.c.scientificName.not_in(self.drop_names))]

    def _observations_alias(self) -> Any:
        return table_of(Observation).alias("released")

    # -- what they reach ------------------------------------------------------------------

    def media(self, media: Table, *, cutoffs: Mapping[str, datetime] | None = None,
              last_row: int | None = None) -> ColumnElement[bool]:
        """A media row is reached by a released observation made on it or spanning it."""
        o = self._observations_alias()
        released = self.observations(o, cutoffs=cutoffs, last_row=last_row)
        on_it = exists().where(o.c.mediaID == media.c.mediaID, *released)
        if self._longest is None:
            return on_it
        plan = self.plan
        lower = self._minus_seconds(media.c.timestamp_utc,
                                    math.ceil(self._longest) + _WINDOW_SLACK)
        spans = exists().where(o.c.deploymentID == media.c.deploymentID,
                               o.c.observationLevel == "event",
                               o.c.eventStart_utc <= media.c.timestamp_utc,
                               o.c.eventStart_utc >= lower,
                               o.c.eventEnd_utc >= media.c.timestamp_utc, *released)
        # The image itself must also lie inside the agreement's time window.
        inside: list[ColumnElement[bool]] = []
        if plan.time_from is not None:
            inside.append(media.c.timestamp_utc >= plan.time_from)
        if plan.time_to is not None:
            inside.append(media.c.timestamp_utc < plan.time_to)
        return or_(on_it, and_(spans, *inside))

    def deployments(self, deployments: Table) -> ColumnElement[bool]:
        """A camera is reached by a released observation made there."""
        o = self._observations_alias()
        return exists().where(o.c.deploymentID == deployments.c.deploymentID,
                              *self.observations(o))

    def individuals(self, individuals: Table) -> ColumnElement[bool]:
        """An individual is reached by a released observation naming it."""
        o = self._observations_alias()
        return exists().where(o.c.individualID == individuals.c.individualID,
                              *self.observations(o))

    # -- summaries of the released observations (for the descriptor) ----------------------

    def released_names(self) -> list[str]:
        """The distinct scientific names (as stored) of the released observations."""
        obs = table_of(Observation)
        query = (select(obs.c.scientificName).distinct()
                 .where(*self.observations(obs), obs.c.scientificName.is_not(None)))
        with self.engine.connect() as conn:
            return sorted(conn.scalars(query))

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        """First start and last end (UTC) of the released observations."""
        obs = table_of(Observation)
        query = select(func.min(obs.c.eventStart_utc), func.max(obs.c.eventEnd_utc)) \
            .where(*self.observations(obs))
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        return _aware(row[0]), _aware(row[1])

    def sightings(self) -> dict[str, tuple[datetime, datetime, int]]:
        """Individual id -> (first start, last start, distinct events), released rows only.

        Bounded by the number of recognised animals, not by rows.
        """
        obs = table_of(Observation)
        event = func.coalesce(obs.c.eventID, obs.c.observationID)
        query = (select(obs.c.individualID, func.min(obs.c.eventStart_utc),
                        func.max(obs.c.eventStart_utc), func.count(event.distinct()))
                 .where(*self.observations(obs), obs.c.individualID.is_not(None))
                 .group_by(obs.c.individualID))
        found: dict[str, tuple[datetime, datetime, int]] = {}
        with self.engine.connect() as conn:
            for ident, first, last, events in conn.execute(query):
                found[ident] = (_aware(first), _aware(last), int(events))  # type: ignore[assignment]
        return found

    def longest_event(self) -> float | None:
        """Seconds of the dataset's longest event-level observation (None: there are none)."""
        obs = table_of(Observation)
        if self.engine.dialect.name == "sqlite":
            length: Any = (func.julianday(obs.c.eventEnd_utc)
                           - func.julianday(obs.c.eventStart_utc)) * 86400.0
        else:
            length = func.extract("epoch", obs.c.eventEnd_utc - obs.c.eventStart_utc)
        query = select(func.max(length)).where(obs.c.dataset_id == self.dataset_id,
                                               obs.c.observationLevel == "event")
        with self.engine.connect() as conn:
            value = conn.scalar(query)
        return None if value is None else max(float(value), 0.0)

    def _minus_seconds(self, column: Column[Any], seconds: int) -> ColumnElement[Any]:
        if self.engine.dialect.name == "sqlite":
            # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff'; datetime() answers without the
            # fraction, which sorts before it: a bound that is never too tight.
            return func.datetime(column, f"-{seconds} seconds")
        return column - literal(timedelta(seconds=seconds), type_=Interval())


def _aware(value: Any) -> datetime | None:
    """A UTC datetime from an aggregate (SQLite returns text, naive)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a time: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
