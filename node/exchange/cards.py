"""Catalogue cards: what the other side's experts need to tell whether two animals are one.

A tier with ``catalogue_cards`` adds ``cards.csv`` to the package: one row per
released individual (:data:`CARD_FIELDS`), under its catalogue id (a card tier
never pseudonymizes), with

* its taxon, sex and life stage from the individuals resource (withheld
  fields stay blank);
* the first and last month it was seen (in the time zone its records were
  written in, as the package's timestamps) and its events, from the
  released observations only (an embargoed fresh sighting does not show);
* the 0.1° cells of the cameras that recorded it, from their *released*
  (generalized) positions, so a card says no more about where than the
  package's deployments do;
* up to :data:`REFERENCE_MEDIA` reference images: media rows of its released
  observations (made on the image, or an event spanning it at the same
  camera), the owner's favourites first, then the highest classification
  confidence, then the earliest.

The ``referenceMedia`` ids are rows of the package's own ``media.csv``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from corridor.db import table_of
from node.exchange.release import CamtrapRelease
from node.models import Individual, Media, Observation
from policies.engine import Plan
from policies.grid import cell_of

__all__ = ["CARD_FIELDS", "REFERENCE_MEDIA", "card_rows", "cards_csv"]

#: Columns of ``cards.csv``.
CARD_FIELDS = ("individualID", "scientificName", "sex", "lifeStage", "firstMonth", "lastMonth",
               "detections", "cells", "referenceMedia")
#: Reference images per card, at most.
REFERENCE_MEDIA = 3
#: The grid of a card's cells, in degrees.
CARD_CELL = "0.1"


def card_rows(engine: Engine, dataset_id: int, plan: Plan, release: CamtrapRelease,
              deployments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One card per individual a released observation names (module docstring).

    :param deployments: the package's released deployment rows (generalized).
    """
    individuals, obs, media = table_of(Individual), table_of(Observation), table_of(Media)
    withheld = plan.withheld.get("individuals", frozenset())
    positions = {str(d["deploymentID"]): (float(d["latitude"]), float(d["longitude"]))
                 for d in deployments
                 if d.get("latitude") not in (None, "") and d.get("longitude") not in (None, "")}
    released = release.observations(obs)
    with engine.connect() as conn:
        records = conn.execute(
            select(individuals.c.individualID, individuals.c.scientificName,
                   individuals.c.record)
            .where(individuals.c.dataset_id == dataset_id, release.individuals(individuals))
            .order_by(individuals.c.individualID)).all()
        cameras: dict[str, set[str]] = {}
        span: dict[str, tuple[tuple[datetime, str], tuple[datetime, str]]] = {}
        for ident, deployment, start, written in conn.execute(
                select(obs.c.individualID, obs.c.deploymentID, obs.c.eventStart_utc,
                       obs.c.eventStart)
                .where(*released, obs.c.individualID.is_not(None))):
            cameras.setdefault(ident, set()).add(deployment)
            moment = (start, written)
            first, last = span.get(ident, (moment, moment))
            span[ident] = (min(first, moment), max(last, moment))
        shown_on = or_(obs.c.mediaID == media.c.mediaID,
                       and_(obs.c.observationLevel == "event",
                            media.c.deploymentID == obs.c.deploymentID,
                            media.c.timestamp_utc >= obs.c.eventStart_utc,
                            media.c.timestamp_utc <= obs.c.eventEnd_utc))
        images: dict[str, list[tuple[bool, float, datetime, str]]] = {}
        for ident, media_id, favorite, confidence, taken in conn.execute(
                select(obs.c.individualID, media.c.mediaID, media.c.favorite,
                       obs.c.classificationProbability, media.c.timestamp_utc)
                .join(media, and_(media.c.dataset_id == obs.c.dataset_id, shown_on))
                .where(*released, obs.c.individualID.is_not(None))):
            images.setdefault(ident, []).append(
                (not favorite, -(confidence or 0.0), taken, media_id))
    sightings = release.sightings()
    rows: list[dict[str, Any]] = []
    for ident, taxon, record in records:
        if taxon and (not plan.in_taxa(taxon) or plan.is_dropped(taxon)):
            continue  # filed under another taxon than its observations: stays home
        seen, when = sightings.get(ident), span.get(ident)
        cells = sorted({cell_of(*positions[d], CARD_CELL).name for d in cameras.get(ident, ())
                        if d in positions})
        best = sorted(set(images.get(ident, [])))
        chosen = list(dict.fromkeys(m for *_, m in best))[:REFERENCE_MEDIA]
        card = {"individualID": ident, "scientificName": taxon,
                "sex": (record or {}).get("sex"), "lifeStage": (record or {}).get("lifeStage"),
                "firstMonth": when[0][1][:7] if when else None,
                "lastMonth": when[1][1][:7] if when else None,
                "detections": seen[2] if seen else 0,
                "cells": ";".join(cells), "referenceMedia": ";".join(chosen)}
        for name in withheld & {"sex", "lifeStage", "scientificName"}:
            card[name] = None
        rows.append(card)
    return rows


def cards_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """``cards.csv`` (UTF-8, ``\\r\\n`` as the package's other CSV files)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, CARD_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")
