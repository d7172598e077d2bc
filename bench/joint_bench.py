"""Joint-count benchmark: fan-out to every provider in parallel, and one node counting 1M rows.

Builds, in a temporary directory removed at the end, a loopback federation (a
registry, one requester node, --providers provider nodes, each a real HTTP
server on 127.0.0.1), imports --observations synthetic camera-trap
observations into each provider (``generate_and_import``, sides ``ru`` and
``cn`` alternately, a seed per provider), publishes each provider's dataset
with the ``aggregate`` tier and runs one aggregate-tier agreement per provider
through the registry (filed, approved under the default policy, accepted,
synced). A separate, unserved node gets --big-observations observations.
Generating and importing run in two worker processes; that setup is not timed.

The query, for both measurements: Far Eastern leopard and Amur tiger, 0.1°
cells, per month, over the calendar year best covered by the generated data
that ends before the default policy's 90-day embargo on both cats (--year
overrides it).

(1) Fan-out, at the requester (``run_joint_count``: a token per provider from
    the registry, POST /agreements/<id>/counts at each provider, each signed
    result verified, kept, logged, then merged):
    (a)  each provider queried alone (``run_joint_count`` with one agreement);
         the slowest of them is the reference;
    (b)  all providers in one ``run_joint_count`` (a thread per provider).
    Rounds alternate (b) and every (a), after one untimed warm-up round.
    Budget: b / slowest a <= 1.3 (the joint count costs about as much as its
    slowest provider). By default (--serve processes) each provider is served
    by its own gunicorn (1 worker, deploy/gunicorn.conf.py) on the port it
    registered, as real providers each count in their own server; the
    registry and the requester stay in this process. --serve threads keeps
    every server in this one Python process (one interpreter, one GIL). Real
    providers count on their own machines: this machine's cores are shared by
    every provider, so with more providers than cores the joint count cannot
    be faster than (providers / cores) x a single one. The sum of the single
    times is printed to show how much overlapped.

(2) One node, in process, no HTTP: ``node.exchange.counts.count`` over the big
    dataset with the plan of an aggregate joint-monitoring request
    (``dataset_plan`` with the default policy) and the policy's aggregate tier,
    against the floor of reading every observation in the order the counting
    walks them (``SELECT deploymentID, scientificName, eventStart_utc FROM
    observations ORDER BY deploymentID, eventStart_utc`` with the sqlite3
    module, every row fetched) and, for information, the same SELECT through
    SQLAlchemy with the model's column types (timestamps parsed).

Prints min and median of --runs runs of each, and the ratios.

    python bench/joint_bench.py --observations 20000 --big-observations 100000   # ~2 min
    python bench/joint_bench.py                     # 5 x 200,000 and 1,000,000 observations
"""

from __future__ import annotations

import argparse
import io
import logging
import multiprocessing
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, closing, redirect_stderr
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from gunicorn_serving import serve_with_gunicorn
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from corridor.cli_context import ServiceContext
from corridor.db import make_engine, make_session_factory, table_of
from deploy.federation import LoopbackFederation, agree, camtrap_dataset, publish_camtrap
from node.cli import generate_and_import, init_node
from node.data.policy_store import get_policy
from node.db import upgrade
from node.exchange.counts import count
from node.exchange.joint_cli import run_joint_count
from node.exchange.package import dataset_plan
from node.models import Observation
from node.settings import NodeSettings, load_settings
from policies.counts import CAMTRAP_METRICS, Query
from policies.terms import load_terms

CATS = ["Panthera pardus orientalis", "Panthera tigris altaica"]
CELL = "0.1"
UNIT = "month"
#: The default policy's embargo on both cats.
EMBARGO_DAYS = 90
REQUESTER = "mn-requester"
BIG = "ru-big"
FLOOR_SQL = ("SELECT deploymentID, scientificName, eventStart_utc FROM observations "
             "ORDER BY deploymentID, eventStart_utc")


# ------------------------------------------------------------------ setup


def provider_ids(n: int) -> list[tuple[str, str, str]]:
    """(member id, country, demo-data side) of each provider: ru and cn alternately."""
    return [(f"ru-p{i + 1}", "RU", "ru") if i % 2 == 0 else (f"cn-p{i + 1}", "CN", "cn")
            for i in range(n)]


def import_data(directory: str, side: str, observations: int, seed: int) -> float:
    """Generate and import one node's camera-trap data (in a worker process); seconds."""
    start = time.perf_counter()
    settings = load_settings(Path(directory))
    with redirect_stderr(io.StringIO()):  # progress bars of parallel workers garble
        generate_and_import(settings, settings.directory / "demo-data", side=side,
                            observations=observations, seed=seed, bird_counts=False)
    shutil.rmtree(settings.directory / "demo-data")
    return time.perf_counter() - start


def aggregate_agreement(asking: NodeSettings, giving: NodeSettings,
                        sessions: Callable[[NodeSettings], Session]) -> str:
    """Publish ``giving``'s dataset, then request, approve, accept and sync an aggregate deal."""
    now = datetime.now(UTC)
    entry = publish_camtrap(giving, sessions, now=now)
    terms = {"provider": giving.member_id, "dataset": entry["id"],
             "purpose": "joint-monitoring", "tier": "aggregate",
             "until": (now + timedelta(days=365)).date().isoformat()}
    return agree(asking, giving, sessions, terms=terms, now=now,
                 justification="Benchmark: joint count of the cats",
                 reason="Summary counts under the default thresholds")


def pick_year(spans: list[tuple[str | None, str | None]], today: date) -> int:
    """The year best covered by every dataset's temporal range, ending before the embargo."""
    cutoff = today - timedelta(days=EMBARGO_DAYS)
    first = max(date.fromisoformat(s) for s, _ in spans if s)
    last = min(date.fromisoformat(e) for _, e in spans if e)

    def covered(year: int) -> int:
        low, high = max(first, date(year, 1, 1)), min(last, date(year, 12, 31))
        return (high - low).days + 1

    years = [y for y in range(first.year, last.year + 1) if date(y, 12, 31) < cutoff]
    if not years or covered(max(years, key=covered)) <= 0:
        raise SystemExit(f"no whole year of data ({first} to {last}) ends before the "
                         f"embargo cutoff {cutoff}; give --year")
    return max(years, key=lambda y: (covered(y), y))


# ------------------------------------------------------------------ timing


def summary(seconds: list[float]) -> tuple[float, float]:
    """(min, median)."""
    return min(seconds), statistics.median(seconds)


def line(label: str, seconds: list[float], extra: str = "") -> str:
    """One printed result: min and median in seconds."""
    low, mid = summary(seconds)
    return f"{label:<44} min {low:8.3f} s   median {mid:8.3f} s{extra}"


def timed(fn: Callable[[], object], cpu: list[float] | None = None) -> float:
    """Seconds of one call; with ``cpu``, the process's CPU seconds are appended to it."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    if cpu is not None:
        cpu.append(time.process_time() - start_cpu)
    return time.perf_counter() - start


def fan_out(requester: NodeSettings, agreements: dict[str, str], query: Query, work: Path,
            runs: int, serve: str) -> None:
    """Measurement (1): every provider alone, and all of them in one joint count."""
    context = ServiceContext(requester.directory, load_settings, upgrade)
    calls = [0]

    def joint(ids: list[str]) -> Any:
        calls[0] += 1
        return run_joint_count(context, query, agreements=ids, own=None,
                               work=work / f"call-{calls[0]}")

    everyone = list(agreements.values())
    try:
        warm = joint(everyone)  # untimed: caches, connections, SQLite pages
        rows = {name: len(r.counts) for name, r in warm.sources.items()}
        suppressed = sum(1 for r in warm.joint.counts if "suppressed" in r)
        print(f"joint result: {len(warm.joint.counts):,} cell rows "
              f"({suppressed:,} suppressed); per provider "
              + ", ".join(f"{k} {v:,}" for k, v in sorted(rows.items())), flush=True)
        for agreement in everyone:
            joint([agreement])
        together: list[float] = []
        cpu_together: list[float] = []
        cpu_alone: list[float] = []
        alone: dict[str, list[float]] = {p: [] for p in agreements}
        for round_ in range(runs):
            together.append(timed(lambda: joint(everyone), cpu_together))
            for provider, agreement in agreements.items():
                alone[provider].append(timed(partial(joint, [agreement]), cpu_alone))
            print(f"  round {round_ + 1}/{runs}: joint {together[-1]:.3f} s, singles "
                  + ", ".join(f"{alone[p][-1]:.3f}" for p in agreements), flush=True)
    finally:
        context.close()

    print()
    where = ("each provider in its own gunicorn process" if serve == "processes"
             else "every server in this process")
    print(f"(1) fan-out: {len(agreements)} providers ({where}), query {query.describe()}")
    for provider, seconds in alone.items():
        print(line(f"(a)  {provider} alone", seconds))
    slowest = max(alone, key=lambda p: statistics.median(alone[p]))
    ref_min = max(min(s) for s in alone.values())
    ref_med = statistics.median(alone[slowest])
    sums = [sum(alone[p][i] for p in alone) for i in range(runs)]
    print(line("(a)  sum of the singles (per round)", sums))
    print(line(f"(b)  joint, all {len(agreements)} providers in parallel", together))
    low, mid = summary(together)
    print(f"ratio b / slowest single (budget <= 1.3)     min {low / ref_min:8.2f} x   "
          f"median {mid / ref_med:8.2f} x   (slowest by median: {slowest}; the min ratio "
          "uses the largest single min)")
    print(f"ratio b / sum of singles                     min {low / min(sums):8.2f} x   "
          f"median {mid / statistics.median(sums):8.2f} x   (1.0 = no overlap at all)")
    cores = multiprocessing.cpu_count()
    servers = ("providers excluded" if serve == "processes" else "servers included")
    print(f"CPU seconds of this process ({servers}): a single {min(cpu_alone):.3f} to "
          f"{max(cpu_alone):.3f}, the joint {min(cpu_together):.3f} to {max(cpu_together):.3f}; "
          f"{cores} cores")
    if serve == "processes" and len(agreements) > cores:
        print(f"bound on this machine: {len(agreements)} providers share {cores} cores, so "
              f"b / slowest single >= about {len(agreements) / cores:.2f} x here")


def one_node(directory: Path, query: Query, runs: int) -> None:
    """Measurement (2): count() over the big dataset vs. reading the rows it walks."""
    settings = load_settings(directory)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            dataset = camtrap_dataset(session)
            terms = load_terms({"purpose": "joint-monitoring", "tier": "aggregate"})
            dataset, plan = dataset_plan(session, dataset.name, terms, "cn-ntlnp",
                                         datetime.now(UTC), keys_dir=settings.keys_dir,
                                         pseudonym_scope="preview:cn-ntlnp")
            policy, _ = get_policy(session, dataset.name)
            tier = policy.tiers[plan.tier]
            session.expunge(dataset)
        database = engine.url.database
        assert database, settings.database_url
        n_obs = int(dataset.counts.get("observations", 0))

        with closing(sqlite3.connect(database)) as conn:
            cat_rows = conn.execute(
                "SELECT count(*) FROM observations WHERE scientificName IN (?, ?) "
                "AND observationType = 'animal'", CATS).fetchone()[0]

        def floor() -> int:
            with closing(sqlite3.connect(database)) as conn:
                return sum(1 for _ in conn.execute(FLOOR_SQL))

        obs = table_of(Observation)
        typed_sql = select(obs.c.deploymentID, obs.c.scientificName,
                           obs.c.eventStart_utc).order_by(obs.c.deploymentID,
                                                          obs.c.eventStart_utc)

        def typed() -> int:
            with engine.connect() as conn:
                return sum(1 for _ in conn.execution_options(yield_per=10_000)
                           .execute(typed_sql))

        def counted() -> Any:
            return count(engine, dataset, plan, tier, query)

        answer = counted()  # warm-up (and the page cache)
        read = floor()
        typed()
        ref = [timed(floor) for _ in range(runs)]
        ref_typed = [timed(typed) for _ in range(runs)]
        mine = [timed(counted) for _ in range(runs)]
    finally:
        engine.dispose()

    released = answer.released
    suppressed = sum(1 for r in released.counts if "suppressed" in r)
    print()
    print(f"(2) one node: {n_obs:,} observations ({read:,} rows read by the floor, "
          f"{cat_rows:,} animal records of the two cats, all years), query "
          f"{query.describe()}; {len(released.counts):,} cell rows ({suppressed:,} suppressed)")
    print(line("(ref) bare SQL, sqlite3 module, all rows", ref))
    print(line("(ref2) same SELECT via SQLAlchemy, typed", ref_typed))
    print(line("(c)  node.exchange.counts.count()", mine))
    low, mid = summary(mine)
    print(f"ratio c / ref                                min {low / min(ref):8.2f} x   "
          f"median {mid / statistics.median(ref):8.2f} x")
    print(f"ratio c / ref2                               min {low / min(ref_typed):8.2f} x   "
          f"median {mid / statistics.median(ref_typed):8.2f} x")


# ------------------------------------------------------------------ main


def main() -> None:
    """Build the federation and the big node, then run both measurements."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Setup (generating and importing, in --workers processes) dominates the run "
               "time: about 45 s per 200,000 observations per process on a small machine.")
    parser.add_argument("--observations", type=int, default=200_000, metavar="N",
                        help="camera-trap observations per provider (default: %(default)s; "
                             "e.g. 20000 for a quick run)")
    parser.add_argument("--providers", type=int, default=5, metavar="N",
                        help="provider nodes (default: %(default)s)")
    parser.add_argument("--big-observations", type=int, default=1_000_000, metavar="N",
                        help="observations of the single node of measurement (2); 0 skips "
                             "it (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, metavar="N",
                        help="timed runs of each measurement, at least 3 (default: "
                             "%(default)s)")
    parser.add_argument("--year", type=int, default=None,
                        help="the year counted (default: the best-covered whole year of the "
                             "generated data that ends before the embargo)")
    parser.add_argument("--seed", type=int, default=2024,
                        help="seed of the first provider's data; provider i adds i "
                             "(default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="processes generating and importing the data (default: "
                             "%(default)s)")
    parser.add_argument("--serve", choices=["processes", "threads"], default="processes",
                        help="serve each provider from its own gunicorn process, or every "
                             "server in this process (default: %(default)s)")
    parser.add_argument("--skip-fanout", action="store_true",
                        help="run measurement (2) only (no federation is started)")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3")
    if args.providers < 1:
        parser.error("--providers must be at least 1")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="corridor-joint-bench-"))
    net: LoopbackFederation | None = None
    engines: dict[str, Engine] = {}
    stack = ExitStack()

    def sessions(settings: NodeSettings) -> Session:
        if settings.database_url not in engines:
            engines[settings.database_url] = make_engine(settings.database_url)
        session: Session = make_session_factory(engines[settings.database_url])()
        return session

    try:
        jobs: list[tuple[str, str, str, int, int]] = []  # label, dir, side, rows, seed
        providers = [] if args.skip_fanout else provider_ids(args.providers)
        if providers:
            net = LoopbackFederation.start(root / "fed", name="Joint-count bench registry")
            net.add_node(REQUESTER, "Requesting park (bench)", "MN")
            for i, (member, country, side) in enumerate(providers):
                settings = net.add_node(member, f"Provider {member} (bench)", country)
                jobs.append((member, str(settings.directory), side, args.observations,
                             args.seed + i))
        big_dir = root / BIG
        if args.big_observations > 0:
            init_node(big_dir, BIG, "Big node (bench)", "RU")
            jobs.insert(0, (BIG, str(big_dir), "ru", args.big_observations, args.seed))
        total = sum(j[3] for j in jobs)
        print(f"generating and importing {total:,} observations into {len(jobs)} nodes "
              f"({args.workers} processes) ...", flush=True)
        spawn = multiprocessing.get_context("spawn")  # no fork of the server threads
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=spawn) as pool:
            futures = {label: pool.submit(import_data, d, side, rows, seed)
                       for label, d, side, rows, seed in jobs}
            took = {label: f.result() for label, f in futures.items()}
        print("  " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items())
              + f"; setup so far {time.perf_counter() - started:.0f} s", flush=True)

        spans: list[tuple[str | None, str | None]] = []
        for label, d, *_ in jobs:
            with sessions(load_settings(Path(d))) as session:
                ds = camtrap_dataset(session)
                spans.append((ds.temporal_start, ds.temporal_end))
                print(f"  {label}: {ds.name}, {ds.counts}, {ds.temporal_start} to "
                      f"{ds.temporal_end}")
        year = args.year or pick_year(spans, datetime.now(UTC).date())
        query = Query.build(metrics=CAMTRAP_METRICS, taxa=CATS, cell_size=CELL, unit=UNIT,
                            first=f"{year}-01", last=f"{year}-12")
        print(f"query: {query.describe()}", flush=True)

        if net is not None:
            for member in net.nodes:
                net.admit(member)
            net.sync()
            requester = net.nodes[REQUESTER]
            agreements = {member: aggregate_agreement(requester, net.nodes[member], sessions)
                          for member, _, _ in providers}
            for engine in engines.values():
                engine.dispose()
            engines.clear()
            if args.serve == "processes":
                for member in agreements:
                    serve_with_gunicorn(net, member, stack, workers=1)
            print(f"{len(agreements)} aggregate agreements active; setup took "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            fan_out(requester, agreements, query, root / "received", args.runs, args.serve)
        if args.big_observations > 0:
            one_node(big_dir, query, args.runs)
        print(f"\n(total {time.perf_counter() - started:.0f} s on "
              f"{multiprocessing.cpu_count()} cores)")
    finally:
        stack.close()
        if net is not None:
            net.stop()
        for engine in engines.values():
            engine.dispose()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
