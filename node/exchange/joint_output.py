"""What ``corridor joint-count`` writes: ``counts.csv``, ``cells.geojson``, ``map.png``
(and ``individuals.csv``).

Every row of ``counts.csv`` names its source (a member id, or ``joint``), so
that each number traces to the signed result it came from (kept next to it
under ``sources/``). The map is drawn on this machine with matplotlib, with
no tiles from the internet: cells coloured by joint RAI over the whole query,
suppressed cells hatched, each source's camera cells outlined in its colour,
and the border if one is given.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle
from rich.table import Table

from corridor.files import written_whole
from policies.crossers import JointIndividuals
from policies.grid import parse_cell
from policies.suppression import Released, derived

__all__ = ["CSV_COLUMNS", "individuals_table", "write_csv", "write_geojson", "write_individuals",
           "write_map"]

CSV_COLUMNS = ("source", "level", "taxon", "cell", "period", "events", "camera_days", "rai",
               "cameras", "cameras_detected", "occupancy", "individuals", "visits", "surveys",
               "sites", "sites_detected", "sum", "max", "suppressed")
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _rows(source: str, released: Released) -> list[dict[str, Any]]:
    out = []
    for level, rows in (("cell", released.counts), ("total", released.totals)):
        for row in rows:
            values = derived(row, released.kind)
            out.append({"source": source, "level": level,
                        **{k: values.get(k, "") for k in CSV_COLUMNS[2:]}})
    return out


def write_csv(path: Path, sources: Mapping[str, Released], joint: Released) -> int:
    """One row per cell x period x taxon x source, plus the joint rows and the totals."""
    rows = [r for name, rel in sources.items() for r in _rows(name, rel)] + _rows("joint", joint)
    with written_whole(path) as part, part.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def _whole_query(released: Released) -> dict[tuple[str, str], dict[str, Any]]:
    """(taxon, cell) -> events and camera-seconds over every period, or suppressed."""
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for row in released.counts:
        key = (row["taxon"], row["cell"])
        held = cells.setdefault(key, {"events": 0, "camera_seconds": 0})
        if "suppressed" in row or "suppressed" in held:
            cells[key] = {"suppressed": row.get("suppressed") or held.get("suppressed")}
            continue
        held["events"] += row.get("events", row.get("visits", 0))
        held["camera_seconds"] += row.get("camera_seconds", row.get("surveys", 0))
    return cells


def write_geojson(path: Path, sources: Mapping[str, Released], joint: Released) -> int:
    """Every cell as a polygon with its joint figures over the query and who has cameras there."""
    where: dict[str, list[str]] = {}
    for name, released in sources.items():
        for row in released.effort:
            where.setdefault(row["cell"], [])
            if name not in where[row["cell"]]:
                where[row["cell"]].append(name)
    features = []
    for (taxon, cell), figures in sorted(_whole_query(joint).items()):
        west, south, east, north = parse_cell(cell).bounds()
        properties: dict[str, Any] = {"cell": cell, "taxon": taxon,
                                      "sources": where.get(cell, [])}
        if "suppressed" in figures:
            properties["suppressed"] = figures["suppressed"]
        else:
            days = figures["camera_seconds"] / 86400
            properties.update(events=figures["events"], camera_days=round(days, 3),
                              rai=round(100 * figures["events"] / days, 3) if days else None)
        features.append({"type": "Feature", "properties": properties, "geometry": {
            "type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                [west, north], [west, south]]]}})
    with written_whole(path) as part:
        part.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                                   indent=1), encoding="utf-8")
    return len(features)


def write_map(path: Path, sources: Mapping[str, Released], joint: Released, *,
              border: Sequence[tuple[float, float]] | None = None, title: str = "") -> None:
    """A PNG: one panel per taxon, cells coloured by joint RAI, sources outlined."""
    taxa = list(joint.query.get("taxa", [])) or ["?"]
    figures = _whole_query(joint)
    fig, axes = plt.subplots(1, len(taxa), figsize=(6 * len(taxa), 6), squeeze=False)
    values = [f["events"] * 8640000 / f["camera_seconds"] for f in figures.values()
              if "suppressed" not in f and f["camera_seconds"]]
    top = max(values, default=1.0) or 1.0
    colour_map = plt.get_cmap("YlOrRd")
    for ax, taxon in zip(axes[0], taxa, strict=True):
        for (t, cell), f in figures.items():
            if t != taxon:
                continue
            west, south, east, north = parse_cell(cell).bounds()
            if "suppressed" in f:
                ax.add_patch(Rectangle((west, south), east - west, north - south,
                                       facecolor="#dddddd", hatch="///", edgecolor="#999999",
                                       linewidth=0.3))
            else:
                rai = f["events"] * 8640000 / f["camera_seconds"] if f["camera_seconds"] else 0
                ax.add_patch(Rectangle((west, south), east - west, north - south,
                                       facecolor=colour_map(rai / top), edgecolor="none"))
        for index, (name, released) in enumerate(sources.items()):
            colour = _COLOURS[index % len(_COLOURS)]
            for n, cell in enumerate(sorted({r["cell"] for r in released.effort})):
                west, south, east, north = parse_cell(cell).bounds()
                ax.add_patch(Rectangle((west, south), east - west, north - south, fill=False,
                                       edgecolor=colour, linewidth=1.2,
                                       label=f"{name} cameras" if n == 0 else None))
        if border:
            ax.plot([p[0] for p in border], [p[1] for p in border], color="black",
                    linewidth=1.5, linestyle="--", label="border")
        ax.autoscale_view()
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"{taxon}: joint RAI (events / 100 camera-days)", fontsize=10)
        ax.set_xlabel("longitude (°E)")
        ax.set_ylabel("latitude (°N)")
        ax.legend(loc="lower left", fontsize=7)
    scale = plt.cm.ScalarMappable(cmap=colour_map, norm=Normalize(0, top))
    fig.colorbar(scale, ax=axes[0].tolist(), shrink=0.7, label="RAI; hatched: suppressed")
    if title:
        fig.suptitle(title, fontsize=11)
    with written_whole(path) as part:
        fig.savefig(part, format="png", dpi=110)
    plt.close(fig)


def _individual_columns(result: JointIndividuals) -> list[str]:
    return ["taxon", "period", *result.sources, *(f"only {s}" for s in result.sources),
            "both", "total", "links", "cells", "suppressed"]


def write_individuals(path: Path, result: JointIndividuals) -> int:
    """``individuals.csv``: one row per taxon and period (links and cells ``;``-joined)."""
    columns = _individual_columns(result)
    with written_whole(path) as part, part.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, columns, lineterminator="\n")
        writer.writeheader()
        for row in result.rows:
            writer.writerow({c: ";".join(v) if isinstance(v := row.get(c), list) else v
                             for c in columns})
    return len(result.rows)


def individuals_table(result: JointIndividuals) -> Table:
    """The joint count of individuals for the terminal: one row per taxon and period."""
    table = Table(title="Distinct individuals across the border (confirmed links)")
    names = [*result.sources, *(f"only {s}" for s in result.sources), "both", "total"]
    for column in ("taxon", "period", *names, "links used"):
        table.add_column(column, justify="right" if column in names else "left",
                         overflow="fold")
    for row in result.rows:
        if "suppressed" in row:
            table.add_row(row["taxon"], row["period"], *([""] * len(names)),
                          f"suppressed: {row['suppressed']}")
            continue
        table.add_row(row["taxon"], row["period"], *(str(row[n]) for n in names),
                      str(len(row["links"])))
    return table
