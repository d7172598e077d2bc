"""``corridor joint-count``: one query to every provider, verified, merged on the common grid.

Run from a node's directory. For each ``--agreement`` (one per provider) it
asks the provider for signed counts, in parallel; with ``--own DATASET`` it
counts this node's own dataset too, under its policy's aggregate tier. Every
answer is verified before it is used (the provider's signature from the
stored trust list, this agreement, this node as recipient, the protocol
asked for), results computed with different protocol parameters are refused
rather than merged, and the rest is summed per cell, period and taxon
(:mod:`policies.joint`). It prints a table per source and for the whole
landscape, and with ``--out DIR`` writes ``counts.csv``, ``cells.geojson``,
``map.png`` and the signed results under ``sources/``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn
from sqlalchemy import select

from corridor.cli_context import ServiceContext
from corridor.console import fail, out
from corridor.errors import CorridorError
from corridor.keystore import load_signing_key
from corridor.outbound import partner_client
from corridor.pages import is_development_url
from node.db import upgrade
from node.exchange.agreements import local
from node.exchange.agreements_cli import registry_of, trust_list_of
from node.exchange.counts_client import CountsReceived, own_counts, request_counts
from node.exchange.counts_table import counts_table
from node.exchange.fetch import FetchRefused
from node.exchange.joint_output import (
    individuals_table,
    write_csv,
    write_geojson,
    write_individuals,
    write_map,
)
from node.models import Link
from node.settings import NodeSettings, load_settings
from policies.counts import BIRD_METRICS, CAMTRAP_METRICS, Protocol, Query
from policies.crossers import JointIndividuals, joint_individuals
from policies.grid import CELL_SIZES, PERIOD_UNITS, GridError
from policies.joint import MergeRefused, merge
from policies.links import CONFIRMED
from policies.suppression import Released

__all__ = ["JointCount", "joint_count", "run_joint_count"]


class JointCount:
    """The outcome of a joint count: each source's verified result, and their merge.

    ``individuals`` is the joint count of individuals when it was asked for.
    """

    def __init__(self, received: dict[str, CountsReceived], joint: Released,
                 individuals: JointIndividuals | None = None) -> None:
        """Hold ``received`` (by source name), the ``joint`` merge and ``individuals``."""
        self.received = received
        self.joint = joint
        self.individuals = individuals

    @property
    def sources(self) -> dict[str, Released]:
        """Each source's verified rows."""
        return {name: r.report.released() for name, r in self.received.items()}


def run_joint_count(context: ServiceContext[NodeSettings], query: Query, *,
                    agreements: list[str], own: str | None, work: Path,
                    on_done: Any = None, individuals: bool = False) -> JointCount:
    """Query every source in parallel, verify each answer, merge.

    Signed results are written under ``work`` (``<source>.json``). With
    ``individuals``, every source also sends its crossers section and the
    joint count of individuals uses this node's confirmed links.

    :raises FetchRefused: a provider refused or an answer did not verify.
    :raises MergeRefused: two results were computed differently.
    :raises CorridorError: this node's own count failed.
    """
    settings = context.settings
    client = registry_of(settings)
    trust_list = trust_list_of(settings)
    work.mkdir(parents=True, exist_ok=True)
    http = partner_client(development=is_development_url(settings.url))
    sessions = context.sessions  # migrate and connect once, before the threads start

    def ask(agreement: str) -> CountsReceived:
        with sessions() as session:
            received = request_counts(session, client, trust_list, agreement_id=agreement,
                                      query=query, out=work / f"{agreement}.json",
                                      now=datetime.now(UTC), http=http, crossers=individuals)
        if on_done is not None:
            on_done()
        return received

    with sessions() as session:
        partners = [local(session, a, settings.member_id).provider for a in agreements]
    received: dict[str, CountsReceived] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(agreements)))) as pool:
        futures = [pool.submit(ask, a) for a in agreements]
        if own:
            with sessions() as session:
                mine = own_counts(session, context.engine, me=settings.member_id,
                                  key=load_signing_key(settings.keys_dir),
                                  keys_dir=settings.keys_dir, trust_list=trust_list,
                                  dataset_name=own, query=query,
                                  out=work / f"{settings.member_id}-own.json",
                                  now=datetime.now(UTC),
                                  crossers_with=partners if individuals else None)
            received[settings.member_id] = mine
            if on_done is not None:
                on_done()
        for future in futures:
            result = future.result()
            if result.provider in received:
                raise MergeRefused(f"two results come from {result.provider}: give one "
                                   "agreement per provider")
            received[result.provider] = result
    released = [r.report.released() for r in received.values()]
    joint = JointCount(received, merge(released))
    if individuals:
        with sessions() as session:
            confirmed = {link_id: frozenset({settings.member_id, other})
                         for link_id, other in session.execute(
                             select(Link.link_id, Link.other_member)
                             .where(Link.state == CONFIRMED))}
        joint.individuals = joint_individuals(
            {name: crossers_section_of(r) for name, r in received.items()}, confirmed)
    return joint


def crossers_section_of(received: CountsReceived) -> list[dict[str, Any]]:
    """The verified result's crossers section, checked for shape and against its totals.

    :raises FetchRefused: missing or malformed (the provider signed it, but
        it is not something the joint count can use).
    """
    result = received.document["result"]
    section = result.get("crossers")
    who = received.provider
    if not isinstance(section, list):
        raise FetchRefused(f"{who}'s result has no crossers section")
    totals = {(t.get("taxon"), t.get("period")): t for t in result.get("totals", [])}
    rows: list[dict[str, Any]] = []
    for row in section:
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str)
                                                for k in ("taxon", "period")):
            raise FetchRefused(f"{who}'s crossers section holds a malformed row")
        total = totals.get((row["taxon"], row["period"]))
        if "suppressed" in row:
            if not isinstance(row["suppressed"], str):
                raise FetchRefused(f"{who}'s crossers section holds a malformed row")
        elif (type(row.get("individuals")) is not int
              or total is None or total.get("individuals") != row["individuals"]
              or not _strings(row.get("links")) or not _strings(row.get("cells"))):
            raise FetchRefused(f"{who}'s crossers row for {row['taxon']} {row['period']} is "
                               "malformed or disagrees with its signed totals")
        rows.append(row)
    return rows


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


@click.command("joint-count")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default="current directory",
              help="This node's directory (its keys, trust list and agreements).")
@click.option("--agreement", "agreements", multiple=True,
              help="An active agreement with a provider (repeat: one per provider).")
@click.option("--own", default=None, help="Also count this node's own DATASET.")
@click.option("--taxon", "taxa", multiple=True, required=True,
              help="Taxon to count (repeat for several); synonyms are resolved.")
@click.option("--metric", "metrics", multiple=True,
              type=click.Choice(CAMTRAP_METRICS + BIRD_METRICS),
              help="Metrics (default: effort, events, rai, occupancy, individuals).")
@click.option("--cell", "cell_size", type=click.Choice(CELL_SIZES), default="0.1",
              show_default=True, help="Grid cell size, in degrees.")
@click.option("--unit", type=click.Choice(PERIOD_UNITS), default="month", show_default=True,
              help="Period unit.")
@click.option("--from", "first", required=True, help="First period, e.g. 2024-01, 2024-Q1, 2024.")
@click.option("--to", "last", required=True, help="Last period (included).")
@click.option("--independence-minutes", default=30, show_default=True, type=int,
              help="Minutes between independent events.")
@click.option("--independence-from", type=click.Choice(("last", "first")), default="last",
              show_default=True, help="Measure the interval from the last record or the first "
                                      "of the event.")
@click.option("--border", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A GeoJSON LineString of the border, drawn on the map.")
@click.option("--individuals", is_flag=True,
              help="Also count distinct individuals across the sources: seen only on one side, "
                   "on both (confirmed links of this node's match ledger), and in total.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Write counts.csv, cells.geojson, map.png (and with "
                                 "--individuals, individuals.csv) and the signed results here.")
def joint_count(directory: Path, agreements: tuple[str, ...], own: str | None,
                taxa: tuple[str, ...], metrics: tuple[str, ...], cell_size: str, unit: str,
                first: str, last: str, independence_minutes: int, independence_from: str,
                border: Path | None, individuals: bool, out_dir: Path | None) -> None:
    """Count one population across borders: signed counts from every node, merged on one grid."""
    if not agreements and not own:
        raise click.UsageError("give at least one --agreement (or --own DATASET)")
    if individuals and metrics and "individuals" not in metrics:
        metrics = (*metrics, "individuals")
    try:
        query = Query.build(metrics=metrics or CAMTRAP_METRICS, taxa=taxa, cell_size=cell_size,
                            unit=unit, first=first, last=last,
                            protocol=Protocol(independence_minutes=independence_minutes,
                                              independence_from=independence_from))
    except GridError as e:
        raise click.UsageError(str(e)) from e
    line = _border(border) if border else None
    context = ServiceContext(directory, load_settings, upgrade)
    work = (out_dir / "sources") if out_dir else directory / "received" / "counts"
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), console=out,
                      transient=True) as progress:
            task = progress.add_task("Asking every node", total=len(agreements) + bool(own))
            result = run_joint_count(context, query, agreements=list(agreements), own=own,
                                     work=work, on_done=lambda: progress.advance(task),
                                     individuals=individuals)
    except FetchRefused as e:
        fail(f"joint count stopped: {e}")
    except MergeRefused as e:
        fail(f"cannot merge: {e}")
    except CorridorError as e:
        fail(str(e.detail))
    finally:
        context.close()
    out.print(f"Counted: {query.describe()}")
    for name, received in result.received.items():
        out.print(f"  {name}: {received.path} verified ({received.report.checks[0]})")
    for name, released in result.sources.items():
        out.print(counts_table(f"{name}", released))
    out.print(counts_table("joint (all sources)", result.joint))
    if result.individuals is not None:
        out.print(individuals_table(result.individuals))
        for problem in result.individuals.unused:
            out.print(f"[yellow]not used:[/] link {problem}", markup=True)
    if out_dir is not None:
        if result.individuals is not None:
            write_individuals(out_dir / "individuals.csv", result.individuals)
            out.print(f"Wrote {out_dir / 'individuals.csv'}.")
        rows = write_csv(out_dir / "counts.csv", result.sources, result.joint)
        cells = write_geojson(out_dir / "cells.geojson", result.sources, result.joint)
        write_map(out_dir / "map.png", result.sources, result.joint, border=line,
                  title=query.describe())
        out.print(f"Wrote {out_dir / 'counts.csv'} ({rows:,} rows), "
                  f"{out_dir / 'cells.geojson'} ({cells:,} cells), {out_dir / 'map.png'}, "
                  f"and the signed results in {work}.")


def _border(path: Path) -> list[tuple[float, float]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        geometry = document.get("geometry", document)
        if geometry.get("type") != "LineString":
            raise ValueError("not a LineString")
        return [(float(x), float(y)) for x, y in geometry["coordinates"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise click.UsageError(f"--border {path}: {e}") from e
