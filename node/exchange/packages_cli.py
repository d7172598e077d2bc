"""``corridor node packages show FILE``: what a received package holds, and where it lies.

For the partner: the package is verified against this node's trust list
first (signature, digests, sizes); then its terms, rows and released extent
are printed, and ``--map`` draws the released cameras or survey sites (the
generalized cells, when coordinates were rounded) to a PNG, on this machine.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import click

from corridor.anchor import AnchorError
from corridor.console import fail, out
from corridor.files import written_whole
from corridor.package_reader import verify_package
from corridor.wording import latitude_range, longitude_range, rows_summary
from crypto.trustlist import TrustListRejected
from node.exchange.agreements_cli import node_context
from node.exchange.release_map import ReleaseGeometry, render_png
from node.exchange.trust_store import TrustStore

#: The table holding positions, and its latitude and longitude columns, per profile.
_POSITIONS = (("deployments.csv", "latitude", "longitude"),
              ("event.csv", "decimalLatitude", "decimalLongitude"))


@click.group("packages")
def packages() -> None:
    """Look into packages this node received."""


def released_positions(package: Path) -> list[tuple[float, float]]:
    """(latitude, longitude) of every released camera or survey event in a package zip."""
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        for member, lat, lon in _POSITIONS:
            if member in names:
                rows = csv.DictReader(io.StringIO(archive.read(member).decode("utf-8")))
                return sorted({(float(r[lat]), float(r[lon])) for r in rows
                               if r.get(lat) and r.get(lon)})
    return []


@packages.command("show")
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--map", "map_path", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the released cameras or sites to this PNG file.")
@click.pass_context
def show(ctx: click.Context, package: Path, map_path: Path | None) -> None:
    """Verify a received package, then print its terms, rows and released extent."""
    settings = node_context(ctx).settings
    try:
        trust_list = TrustStore(settings.directory).current()
    except (AnchorError, TrustListRejected):
        trust_list = None
    if trust_list is None:
        fail("this node has no trust list to verify the package with: join a registry and "
             "run `corridor node sync`")
    report = verify_package(package, trust_list)
    if not report.ok or report.descriptor is None:
        fail(f"{package.name} does not verify: {report.failure}")
    descriptor: dict[str, Any] = report.descriptor
    meta = descriptor.get("corridor") or {}
    out.print(f"[bold]{package.name}[/]  verified: signed by {report.signer_member}, "
              f"{len(report.checks)} checks passed")
    for label, value in (("dataset", f"{meta.get('dataset')} v{meta.get('datasetVersion')}"),
                         ("agreement", meta.get("agreement") or "none (a preview)"),
                         ("recipient", meta.get("recipient")), ("tier", meta.get("tier")),
                         ("purpose", meta.get("purpose")), ("created", descriptor.get("created")),
                         ("rows", rows_summary(meta.get("rows") or {}) or "none")):
        out.print(f"  {label:<10} {value}", markup=False)
    precision = descriptor.get("coordinatePrecision")
    positions = released_positions(package)
    if positions:
        lats, lons = [p[0] for p in positions], [p[1] for p in positions]
        out.print(f"  area       {latitude_range(min(lats), max(lats))}, "
                  f"{longitude_range(min(lons), max(lons))}", markup=False)
    out.print("  positions  " + (f"rounded to {precision:g}°" if precision else "as recorded")
              + f", {len(positions)} distinct", markup=False)
    temporal = descriptor.get("temporal") or {}
    if temporal:
        out.print(f"  dates      {temporal.get('start')} .. {temporal.get('end')}", markup=False)
    for line in (meta.get("plan") or {}).get("explanation") or []:
        out.print(f"    {line}", markup=False)
    if map_path is not None:
        geometry = ReleaseGeometry(released=[(lat, lon, precision) for lat, lon in positions])
        png = render_png(geometry, title=f"{meta.get('dataset')} as released to "
                                         f"{meta.get('recipient')}",
                         released_label="released")
        with written_whole(map_path) as part:
            part.write_bytes(png)
        out.print(f"Map written to {map_path}")
