"""Maps of what a release shows: cameras as stored, as released, and withheld.

Drawn on this machine with matplotlib's object API (no pyplot state, so a
web worker's threads do not share a figure) and no map tiles: park networks
are often offline, and a tile request would tell a tile server where the
cameras are. Positions are plotted on a faint graticule, a degree of
longitude drawn shorter than one of latitude as it is on the ground; the
agreement's area, when it has one, is outlined.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

#: (latitude, longitude)
Point = tuple[float, float]


@dataclass
class ReleaseGeometry:
    """Where a dataset's cameras (or survey sites) are, and where a release shows them.

    ``released`` holds (latitude, longitude, precision) as released; a
    precision (degrees) draws the cell the point stands for.
    """

    stored: list[Point] = field(default_factory=list)
    released: list[tuple[float, float, float | None]] = field(default_factory=list)
    withheld: list[Point] = field(default_factory=list)
    area: tuple[float, float, float, float] | None = None  # west, south, east, north

    @property
    def empty(self) -> bool:
        """Nothing to draw: no positions at all."""
        return not (self.stored or self.released)


def _extent(geometry: ReleaseGeometry) -> tuple[float, float, float, float]:
    lats = [p[0] for p in geometry.stored] + [p[0] for p in geometry.released]
    lons = [p[1] for p in geometry.stored] + [p[1] for p in geometry.released]
    if geometry.area is not None:
        west, south, east, north = geometry.area
        lats += [south, north]
        lons += [west, east]
    cell = max((p[2] or 0.0 for p in geometry.released), default=0.0) / 2
    pad = max(max(lats) - min(lats), max(lons) - min(lons), 0.05) * 0.08 + cell
    return min(lons) - pad, min(lats) - pad, max(lons) + pad, max(lats) + pad


def render_png(geometry: ReleaseGeometry, *, title: str, stored_label: str = "as stored",
               released_label: str = "as released") -> bytes:
    """The map as PNG bytes (one panel, a legend that counts each kind of mark)."""
    figure = Figure(figsize=(7, 6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if geometry.empty:
        axes.text(0.5, 0.5, "no positions to show", ha="center", va="center",
                  transform=axes.transAxes)
        axes.set_axis_off()
    else:
        west, south, east, north = _extent(geometry)
        for number, (lat, lon, precision) in enumerate(geometry.released):
            if precision:
                half = precision / 2
                axes.add_patch(Rectangle((lon - half, lat - half), precision, precision,
                                         facecolor="#f0a030", edgecolor="#b06000", alpha=0.45,
                                         linewidth=0.8,
                                         label=f"{released_label}: {len(geometry.released)} "
                                               f"(cells of {precision:g}°)"
                                         if number == 0 else None))
        if geometry.released and not geometry.released[0][2]:
            axes.scatter([p[1] for p in geometry.released], [p[0] for p in geometry.released],
                         s=28, marker="s", color="#f0a030", edgecolor="#b06000",
                         label=f"{released_label}: {len(geometry.released)} (exact positions)")
        if geometry.stored:
            axes.scatter([p[1] for p in geometry.stored], [p[0] for p in geometry.stored],
                         s=9, color="#333333", label=f"{stored_label}: {len(geometry.stored)}",
                         zorder=3)
        if geometry.withheld:
            axes.scatter([p[1] for p in geometry.withheld], [p[0] for p in geometry.withheld],
                         s=36, marker="x", color="#c0392b", zorder=4,
                         label=f"not released: {len(geometry.withheld)}")
        if geometry.area is not None:
            a_west, a_south, a_east, a_north = geometry.area
            axes.add_patch(Rectangle((a_west, a_south), a_east - a_west, a_north - a_south,
                                     fill=False, linestyle="--", edgecolor="#2f6f8f",
                                     linewidth=1.2, label="the agreement's area"))
        axes.set_xlim(west, east)
        axes.set_ylim(south, north)
        # A degree of longitude is shorter than one of latitude away from the equator.
        middle = math.radians((south + north) / 2)
        axes.set_aspect(1 / max(math.cos(middle), 0.1), adjustable="box")
        axes.grid(True, linewidth=0.3, color="#cccccc")
        axes.set_xlabel("longitude (°)")
        axes.set_ylabel("latitude (°)")
        axes.legend(loc="best", fontsize=8)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def withheld_of(stored: Sequence[tuple[str, float, float]], released_ids: set[str]
                ) -> list[Point]:
    """Stored (id, lat, lon) positions whose id the release leaves out."""
    return [(lat, lon) for ident, lat, lon in stored if ident not in released_ids]
