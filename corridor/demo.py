"""``corridor demo``: a throw-away two-country federation on this machine.

At this stage the demo sets up the Russian and the Chinese node side by side,
generates each side's synthetic camera-trap data (and the flyway bird counts on
the Russian node), imports it, and prints what each node now holds.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import distinct, func, select

from corridor.db import make_engine, make_session_factory
from node.cli import dataset_summary, generate_and_import, init_node
from node.datasets import current_datasets
from node.models import Dataset, Observation
from node.settings import load_settings

out = Console(highlight=False)


@dataclass(frozen=True)
class DemoMember:
    """One institution of the demo federation."""

    member_id: str
    name: str
    country: str
    side: str
    bird_counts: bool


MEMBERS: Sequence[DemoMember] = (
    DemoMember("ru-lotl", "Land of the Leopard National Park", "RU", "ru", True),
    DemoMember("cn-ntlnp", "Northeast China Tiger and Leopard National Park", "CN", "cn", False),
)


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to put the demo (default: a temporary directory, removed at the end).")
@click.option("--observations", default=20_000, show_default=True,
              type=click.IntRange(100, 1_000_000), help="Camera-trap observations per country.")
@click.option("--seed", default=2024, show_default=True, help="Random seed of the demo data.")
@click.option("--keep", is_flag=True, help="Keep the temporary directory after the demo.")
def demo(directory: Path | None, observations: int, seed: int,
         keep: bool) -> None:
    """Run the local demo federation: two border parks with their own data."""
    throwaway = directory is None
    root = Path(tempfile.mkdtemp(prefix="corridor-demo-")) if directory is None else directory
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise click.UsageError(f"{directory} is not empty; give a new or empty directory")
    out.rule("[bold]Corridor demo")
    out.print(f"Working in {root}\n")
    try:
        for member in MEMBERS:
            node_dir = root / member.member_id
            out.print(f"[bold]{member.name}[/] ({member.member_id}, {member.country})")
            settings = init_node(node_dir, member.member_id, member.name, member.country)
            results = generate_and_import(settings, node_dir / "demo-data", side=member.side,
                                          observations=observations, seed=seed,
                                          bird_counts=member.bird_counts)
            for result in results:
                counts = ", ".join(f"{n:,} {k}" for k, n in result.counts.items())
                out.print(f"  imported {result.name} v{result.version}: {counts}")
            out.print()
        _summary(root)
    finally:
        if throwaway and not keep:
            shutil.rmtree(root, ignore_errors=True)
            out.print(f"[dim]Removed {root} (use --keep or --dir to keep it).[/]")


def _summary(root: Path) -> None:
    """Print each node's datasets, its flagship species, and shared individuals."""
    individuals: dict[str, set[str]] = {}
    for member in MEMBERS:
        settings = load_settings(root / member.member_id)
        engine = make_engine(settings.database_url)
        with make_session_factory(engine)() as session:
            rows = current_datasets(session)
            out.rule(f"[bold]{member.member_id}[/]: what this node holds", align="left")
            out.print(dataset_summary(rows))
            camtrap = [d for d in rows if d.profile == "camtrap-dp"]
            if camtrap:
                out.print(_species_table(session, camtrap[0]))
                individuals[member.member_id] = set(session.scalars(
                    select(Observation.individualID).distinct().where(
                        Observation.dataset_id == camtrap[0].id,
                        Observation.individualID.is_not(None))))
        engine.dispose()
    if len(individuals) == 2:
        a, b = individuals.values()
        shared = sorted(a & b)
        out.print(f"[bold]{len(shared)}[/] recognised tigers and leopards were photographed on "
                  f"both sides of the border: {', '.join(shared[:12])}"
                  + (" ..." if len(shared) > 12 else ""))
        out.print("Sharing those records is what Corridor is for: signed, policy-filtered "
                  "extracts, never raw data.")


def _species_table(session: object, dataset: Dataset) -> Table:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    query = (
        select(Observation.scientificName, func.count(), func.count(distinct(
            Observation.individualID)))
        .where(Observation.dataset_id == dataset.id, Observation.observationType == "animal")
        .group_by(Observation.scientificName)
        .order_by(func.count().desc())
    )
    table = Table(title=f"{dataset.name}: detections by species", title_justify="left")
    table.add_column("species")
    table.add_column("observations", justify="right")
    table.add_column("individuals", justify="right")
    for name, n, distinct_ids in session.execute(query):
        table.add_row(name or "-", f"{n:,}", str(distinct_ids or ""))
    return table
