"""Merkle log benchmark: appends, proofs and full verification, in memory and in a database.

Builds N payloads of P random bytes (default 1,000,000 of 256), then in one run times:

(ref) plain ``hashlib.sha256`` of every payload: the floor of any log over them;
(a)   appending all of them to an in-memory ``MerkleLog`` (leaf hash plus the
      nodes ``appended_nodes`` completes, as a database log would store them);
(b)   inclusion proof generation + verification on the full log, per proof:
      median (and 99th percentile) of 1000 random leaves;
(c)   full verification: every leaf hash recomputed from its payload and the
      root rebuilt from them with ``root_from_leaf_hashes``.

Then the database log a service keeps (``corridor.tlog`` on a fresh, migrated
SQLite node database, or ``--db-url``), with ``--db-entries`` realistic events:

(ref') SHA-256 of every leaf (the canonical JSON events) the log ends up holding;
(d)   ``append()`` one event at a time, 1,000 per transaction (bursts of actions);
(e)   ``append_many()`` in batches of 10,000 (how the 1M-entry log is filled);
(f)   one transaction per append, committed each time (2,000 of them: bound by
      the database's commit, not by the log);
(g)   inclusion proof generation from stored nodes + verification, per proof,
      on the full database log;
(h)   full verification as ``corridor audit verify DIR`` does it
      (``verify_log``): every entry read, checked and re-hashed, root rebuilt.

Prints each with its ratio to its reference. The design's budgets are at least
5,000 appends/s and at most 5 ms per inclusion proof on a 1M-entry log.

    python bench/log_bench.py --entries 1000000 --db-entries 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit.checks import verify_log
from audit.sources import DatabaseSource
from corridor.db import make_engine, make_session_factory
from corridor.tlog import LogEvent, node_origin
from crypto.keys import KeySet, SigningKey
from crypto.merkle import MerkleLog, leaf_hash, root_from_leaf_hashes, verify_inclusion
from node.db import upgrade
from node.log.exchange_log import LOG

APPEND_BUDGET = 5_000  # appends per second, at least
PROOF_BUDGET = 5e-3  # seconds per inclusion proof at 1M entries, at most


def payloads(entries: int, size: int) -> list[bytes]:
    """``entries`` distinct pseudo-random payloads of ``size`` bytes (seeded)."""
    blob = random.Random(0).randbytes(entries * size)
    return [blob[i * size : (i + 1) * size] for i in range(entries)]


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="log size (leaves)")
    parser.add_argument("--payload-bytes", type=int, default=256, help="size of each entry")
    parser.add_argument("--proofs", type=int, default=1000, help="random inclusion proofs")
    parser.add_argument("--db-entries", type=int, default=1_000_000,
                        help="size of the database log (0: skip the database part)")
    parser.add_argument("--db-url", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    if args.entries < 1 or args.payload_bytes < 8 or args.proofs < 1:
        parser.error("need --entries >= 1, --payload-bytes >= 8 and --proofs >= 1")
    if 0 < args.db_entries < 30_000:
        parser.error("--db-entries must be 0 or at least 30,000")
    in_memory(args)
    if args.db_entries:
        with tempfile.TemporaryDirectory() as tmp:
            database(args.db_url or f"sqlite:///{Path(tmp) / 'node.db'}", args.db_entries,
                     args.proofs)


def in_memory(args: argparse.Namespace) -> None:
    """Parts (ref) and (a) to (c)."""

    print(f"generating {args.entries:,} payloads of {args.payload_bytes} bytes ...", flush=True)
    data = payloads(args.entries, args.payload_bytes)
    n = len(data)

    sha256 = hashlib.sha256
    start = time.perf_counter()
    reference_digests = [sha256(p).digest() for p in data]
    ref = time.perf_counter() - start
    del reference_digests

    log = MerkleLog()
    append = log.append
    start = time.perf_counter()
    for p in data:
        append(p)
    appending = time.perf_counter() - start
    root = log.root()

    rng = random.Random(1)
    proof_times, generation_times = [], []
    for index in (rng.randrange(n) for _ in range(args.proofs)):
        start = time.perf_counter()
        proof = log.inclusion_proof(index)
        generated = time.perf_counter()
        verify_inclusion(log.leaf_hash(index), index, n, proof, root)
        proof_times.append(time.perf_counter() - start)
        generation_times.append(generated - start)
    proof_median = statistics.median(proof_times)
    proof_p99 = statistics.quantiles(proof_times, n=100)[98] if len(proof_times) > 1 \
        else proof_times[0]
    generation_median = statistics.median(generation_times)

    start = time.perf_counter()
    recomputed = root_from_leaf_hashes([leaf_hash(p) for p in data])
    full = time.perf_counter() - start
    if recomputed != root:
        raise SystemExit("full verification recomputed a different root")

    per_leaf = ref / n
    rate = n / appending
    appends_ok = "ok" if rate >= APPEND_BUDGET else "MISSED"
    proof_ok = "ok" if proof_median <= PROOF_BUDGET else "MISSED"
    print(f"log of {n:,} entries of {args.payload_bytes} bytes; {args.proofs:,} proofs")
    print(f"(ref) SHA-256 of every payload     {ref:8.2f} s   {n / ref:10,.0f} /s")
    print(f"(a)   MerkleLog appends            {appending:8.2f} s   {rate:10,.0f} /s"
          f"   {appending / ref:5.2f}x ref   (budget >= {APPEND_BUDGET:,}/s: {appends_ok})")
    print(f"(b)   inclusion proof gen + verify {proof_median * 1e6:8.1f} us median"
          f" ({generation_median * 1e6:.1f} us generating), p99 {proof_p99 * 1e6:.1f} us")
    print(f"                                   = {proof_median / per_leaf:.1f}x one payload's"
          f" SHA-256   (budget <= {PROOF_BUDGET * 1e3:g} ms: {proof_ok})")
    print(f"(c)   full verification            {full:8.2f} s"
          f"   {full / ref:5.2f}x ref (leaf hashes and root of all entries)")

def _event(n: int, at: datetime) -> LogEvent:
    """A package-served event like the node logs (digests and counts, no data)."""
    digest = hashlib.sha256(n.to_bytes(8, "big")).hexdigest()
    return LogEvent("package.served", at + timedelta(microseconds=n), "cn-fesp",
                    f"cn-fesp.{n // 100:016x}",
                    {"token_jti": digest[:32], "content_sha256": digest,
                     "plan_digest": "sha256:" + digest[::-1], "cursor": str(n),
                     "rows": {"deployments": 12, "media": 3400, "observations": 77}})


def database(url: str, entries: int, proofs: int) -> None:
    """Parts (ref') and (d) to (h) on a database log of ``entries`` entries."""
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    at = datetime(2026, 11, 22, tzinfo=UTC)
    key = SigningKey.generate()
    burst, transactions = 20_000, 2_000
    print(f"database log at {engine.url.render_as_string()} ...", flush=True)

    start = time.perf_counter()
    for first in range(0, burst, 1000):
        with sessions.begin() as session:
            for n in range(first, first + 1000):
                e = _event(n, at)
                LOG.append(session, e.type, e.at, member=e.member, agreement=e.agreement,
                           **e.fields)
    single = time.perf_counter() - start

    start = time.perf_counter()
    for n in range(burst, burst + transactions):
        with sessions.begin() as session:
            e = _event(n, at)
            LOG.append(session, e.type, e.at, member=e.member, agreement=e.agreement,
                       **e.fields)
    committed = time.perf_counter() - start

    done, batched = burst + transactions, 0.0
    while done < entries:
        batch = [_event(n, at) for n in range(done, min(entries, done + 10_000))]
        start = time.perf_counter()
        with sessions.begin() as session:
            LOG.append_many(session, batch)
        batched += time.perf_counter() - start
        done += len(batch)
    bulk_count = done - burst - transactions

    with sessions.begin() as session:
        size = LOG.size(session)
        row = LOG.sign_checkpoint(session, node_origin("ru-lotl"), "ru-lotl", key, at)
        root = row.root
    source = DatabaseSource(sessions, LOG, "bench")
    start = time.perf_counter()
    leaves = [entry.leaf.encode() for entry in source.entries(0)]
    reading = time.perf_counter() - start
    mean_leaf = sum(map(len, leaves)) / size
    start = time.perf_counter()
    for leaf in leaves:
        hashlib.sha256(leaf).digest()
    ref = time.perf_counter() - start
    per_leaf = ref / size

    rng = random.Random(2)
    proof_times = []
    with sessions() as session:
        for index in (rng.randrange(size) for _ in range(proofs)):
            start = time.perf_counter()
            proof = LOG.inclusion_proof(session, index, size)
            verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root)
            proof_times.append(time.perf_counter() - start)
    del leaves
    proof_median = statistics.median(proof_times)
    proof_p99 = statistics.quantiles(proof_times, n=100)[98] if len(proof_times) > 1 \
        else proof_times[0]

    start = time.perf_counter()
    verdict = verify_log(source, KeySet(), {"ru-lotl": KeySet([key.public_key])},
                         require_witness=False)
    full = time.perf_counter() - start
    assert verdict.entries == size
    engine.dispose()

    single_rate, bulk_rate = burst / single, bulk_count / batched if batched else 0.0
    ok = "ok" if single_rate >= APPEND_BUDGET else "MISSED"
    proof_ok = "ok" if proof_median <= PROOF_BUDGET else "MISSED"
    print(f"database log of {size:,} entries; leaves of {mean_leaf:.0f} bytes on average")
    print(f"(ref') SHA-256 of every leaf        {ref:8.2f} s   {size / ref:10,.0f} /s"
          f"   (reading them back took {reading:.2f} s)")
    print(f"(d)   append(), 1,000 per commit   {single:8.2f} s   {single_rate:10,.0f} /s"
          f"   {size / ref / single_rate:7.1f}x ref per entry   (budget >= {APPEND_BUDGET:,}/s:"
          f" {ok})")
    if bulk_count:
        print(f"(e)   append_many(), 10,000/batch  {batched:8.2f} s   {bulk_rate:10,.0f} /s"
              f"   {size / ref / bulk_rate:7.1f}x ref per entry")
    print(f"(f)   one commit per append        {committed:8.2f} s"
          f"   {transactions / committed:10,.0f} /s   (the database's commit rate)")
    print(f"(g)   inclusion proof from DB      {proof_median * 1e6:8.1f} us median,"
          f" p99 {proof_p99 * 1e6:.1f} us = {proof_median / per_leaf:.0f}x one leaf's SHA-256"
          f"   (budget <= {PROOF_BUDGET * 1e3:g} ms: {proof_ok})")
    print(f"(h)   audit verify (verify_log)    {full:8.2f} s   {size / full:10,.0f} /s"
          f"   {full / ref:7.1f}x ref")


if __name__ == "__main__":
    main()
