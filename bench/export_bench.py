"""Export benchmark: Corridor's signed, policy-filtered package vs. ``sqlite3 -csv``.

Builds the dataset once (N generated observations, imported into a node;
reused from --workdir when it is already there), then in one run times:

(a)  ``sqlite3 -csv`` dumping the Camtrap DP columns of the observations table;
(a3) ``sqlite3 -csv`` dumping deployments, media and observations (everything
     the package holds);
(b)  Corridor's ``generalized``-tier signed export (zip package with
     deployments, media, observations, individuals; plan applied, hashes,
     detached JWS), in a child process so its peak memory is its own;
(c)  datasette's streamed CSV of the observations table, if datasette is
     installed (it is not a dependency; the line says so when it is absent).

Prints each time, the ratios b/a3 and b/a (the budget in DESIGN.md §12 is
b/a ≤ 2.0), b/c when measured, and Corridor's peak RSS.

    python bench/export_bench.py --observations 1000000 --workdir /tmp/corridor-export-bench
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLES = ("deployments", "media", "observations")


def camtrap_columns(table: str) -> str:
    """The Camtrap DP field list of a table, quoted for SQL."""
    from node.data.validation import camtrap_table

    return ", ".join(f'"{f.name}"' for f in camtrap_table(table).fields)


def build(workdir: Path, observations: int) -> Path:
    """A node directory with the generated dataset imported (kept for the next run)."""
    node_dir = workdir / "node"
    marker = workdir / f"built-{observations}"
    if marker.exists():
        return node_dir
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    from node.cli import generate_and_import, init_node

    settings = init_node(node_dir, "ru-lotl", "Land of the Leopard (bench)", "RU")
    print(f"building {observations:,} observations (once) ...", flush=True)
    generate_and_import(settings, node_dir / "demo-data", side="ru", observations=observations,
                        seed=2024, bird_counts=False)
    shutil.rmtree(node_dir / "demo-data")
    marker.touch()
    return node_dir


def sqlite_dump(db: Path, tables: tuple[str, ...], out: Path) -> float:
    """Seconds for the sqlite3 shell to write the tables' Camtrap columns as CSV."""
    sqlite3 = shutil.which("sqlite3")
    if sqlite3 is None:
        sys.exit("sqlite3 command not found (apt-get install sqlite3)")
    script = "\n".join([".headers on", ".mode csv", f".output {out}"]
                       + [f"SELECT {camtrap_columns(t)} FROM {t};"  # noqa: S608 (our schema)
                          for t in tables])
    start = time.perf_counter()
    subprocess.run([sqlite3, str(db)], input=script, text=True, check=True)
    return time.perf_counter() - start


def datasette_csv(db: Path, out: Path) -> float | None:
    """Seconds for datasette to stream the observations table as CSV, or None if absent."""
    try:
        from datasette.app import Datasette  # type: ignore[import-not-found]
    except ImportError:
        return None
    import asyncio

    async def run() -> float:
        ds = Datasette([str(db)], settings={"max_csv_mb": 0})
        start = time.perf_counter()
        response = await ds.client.get(f"/{db.stem}/observations.csv?_stream=on&_size=max")
        out.write_bytes(response.content)
        return time.perf_counter() - start

    return asyncio.run(run())


def corridor_export(node_dir: Path, out: Path, tables: tuple[str, ...]) -> dict[str, float]:
    """Export in a child process (policy compiled, rows streamed, signed); seconds and peak RSS."""
    code = (
        "import json, resource, time\n"
        "from datetime import UTC, datetime\n"
        "from pathlib import Path\n"
        "import sqlalchemy as sa\n"
        "from corridor.db import make_engine\n"
        "from corridor.keystore import load_signing_key\n"
        "from node.data.datasets import get_dataset\n"
        "from node.exchange.package import CAMTRAP_RESOURCES, CamtrapExporter\n"
        "from node.data.policy_store import cursor_key, get_policy, pseudonym_key\n"
        "from node.settings import load_settings\n"
        "from policies.engine import compile\n"
        "from policies.terms import load_terms\n"
        "t = time.perf_counter()\n"
        f"settings = load_settings(Path({str(node_dir)!r}))\n"
        "engine = make_engine(settings.database_url)\n"
        "now = datetime.now(UTC)\n"
        "with sa.orm.Session(engine) as s:\n"
        "    ds = get_dataset(s, 'corridor-demo-ru-lotl')\n"
        "    policy, _ = get_policy(s, ds.name)\n"
        "plan = compile(policy, load_terms({'purpose': 'joint-monitoring', 'tier': 'generalized'}),"
        " 'cn-ntlnp', now, pseudonym_key=pseudonym_key(settings.keys_dir, 'bench'),"
        " resources=CAMTRAP_RESOURCES)\n"
        f"with open({str(out)!r}, 'wb') as fh:\n"
        "    CamtrapExporter(engine, ds, plan, provider=settings.member_id,"
        " key=load_signing_key(settings.keys_dir), now=now, recipient='cn-ntlnp',"
        " cursor_key=cursor_key(settings.keys_dir))"
        f".write(fh, {tables!r})\n"
        "s = time.perf_counter() - t\n"
        "print(json.dumps({'seconds': s, 'peak_mib':"
        " resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    child: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return child


def main() -> None:
    """Build once, then time the three ways of getting the rows out."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the built dataset here between runs")
    args = parser.parse_args()
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="corridor-export-bench-")
        args.workdir = Path(tmp.name)
    try:
        node_dir = build(args.workdir, args.observations)
        db = node_dir / "node.db"
        scratch = args.workdir / "out"
        scratch.mkdir(exist_ok=True)
        a = sqlite_dump(db, ("observations",), scratch / "observations.csv")
        a3 = sqlite_dump(db, TABLES, scratch / "all.csv")
        b = corridor_export(node_dir, scratch / "observations.zip", ("observations",))
        b3 = corridor_export(node_dir, scratch / "package.zip", (*TABLES, "individuals"))
        c = datasette_csv(db, scratch / "datasette.csv")
        size = (scratch / "package.zip").stat().st_size / 1e6
        print(f"observations: {args.observations:,}; full package {size:,.0f} MB")
        print(f"(a)  sqlite3 -csv observations                 {a:8.2f} s")
        print(f"(b)  corridor generalized, observations, signed {b['seconds']:7.2f} s")
        print(f"(a3) sqlite3 -csv deployments+media+obs        {a3:8.2f} s")
        print(f"(b3) corridor generalized full package, signed {b3['seconds']:8.2f} s")
        print("(c)  datasette streamed CSV                    "
              + (f"{c:8.2f} s" if c is not None else "   n/a (datasette not installed)"))
        print(f"ratio b/a   (budget <= 2.0)                    {b['seconds'] / a:8.2f}x")
        print(f"ratio b3/a3 (whole package, same tables)       {b3['seconds'] / a3:8.2f}x")
        if c is not None:
            print(f"ratio b/c                                      {b['seconds'] / c:8.2f}x")
        print(f"corridor peak memory (observations / package)  {b['peak_mib']:5.0f} /"
              f" {b3['peak_mib']:.0f} MiB")
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
