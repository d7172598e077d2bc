"""Import benchmark: Corridor's validated import vs. sqlite3's own ``.import``.

Generates N synthetic observations once (not timed), then in the same run:

(a) reference: the ``sqlite3`` shell imports the same deployments, media and
    observations CSVs into a fresh database with ``.import --csv`` (no
    validation, no types);
(b) Corridor: ``Importer.import_camtrap`` into a fresh node database (every
    row validated, typed, keys checked, one transaction), in a child process
    so that its peak memory can be measured on its own.

Prints rows per second for both, the ratio b/a, and Corridor's peak RSS.

    python bench/import_bench.py --observations 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESOURCES = ("deployments", "media", "observations")


def count_rows(package: Path) -> int:
    """Data rows in the three CSVs (lines minus headers; generated rows have no newlines)."""
    total = 0
    for name in RESOURCES:
        with (package / f"{name}.csv").open("rb") as fh:
            total += sum(1 for _ in fh) - 1
    return total


def sqlite_reference(package: Path, workdir: Path) -> float:
    """Seconds for the sqlite3 shell to .import the three CSVs into a fresh file."""
    sqlite3 = shutil.which("sqlite3")
    if sqlite3 is None:
        sys.exit("sqlite3 command not found (apt-get install sqlite3)")
    db = workdir / "reference.db"
    script = "\n".join(
        f".import --csv {package / f'{name}.csv'} {name}" for name in RESOURCES
    )
    start = time.perf_counter()
    subprocess.run([sqlite3, str(db)], input=script, text=True, check=True)
    return time.perf_counter() - start


def corridor_import(package: Path, workdir: Path) -> dict[str, float]:
    """Run the Corridor import in a child process; return its seconds and peak RSS."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(package), str(workdir / "node.db")],
        capture_output=True, text=True, check=True,
    )
    child: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return child


def child_main(package: Path, db: Path) -> None:
    """In the child: import once and print seconds and peak RSS as JSON."""
    from corridor.db import make_engine
    from node.data.importer import Importer
    from node.db import upgrade

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    start = time.perf_counter()
    result = Importer(engine).import_camtrap(package)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024,
                      "observations": result.counts["observations"]}))


def main() -> None:
    """Parse arguments, generate data, run both imports, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--child", nargs=2, metavar=("PACKAGE", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(Path(args.child[0]), Path(args.child[1]))
        return

    from node.data.demo_data import generate_camtrap

    with tempfile.TemporaryDirectory(prefix="corridor-bench-") as tmp:
        workdir = Path(tmp)
        print(f"generating {args.observations:,} observations ...", flush=True)
        package = generate_camtrap(workdir / "pkg", side="ru", observations=args.observations,
                                   seed=args.seed).path
        rows = count_rows(package)
        size_mb = sum((package / f"{n}.csv").stat().st_size for n in RESOURCES) / 1e6
        reference = sqlite_reference(package, workdir)
        corridor = corridor_import(package, workdir)
        seconds = corridor["seconds"]
        print(f"rows (deployments + media + observations): {rows:,} in {size_mb:.0f} MB of CSV")
        print(f"(a) sqlite3 .import        {reference:8.2f} s  {rows / reference:12,.0f} rows/s")
        print(f"(b) corridor import        {seconds:8.2f} s  {rows / seconds:12,.0f} rows/s")
        print(f"ratio b/a                  {seconds / reference:8.2f}x")
        print(f"corridor peak memory       {corridor['peak_mib']:8.0f} MiB")


if __name__ == "__main__":
    main()
