"""Merkle log benchmark (pure, in memory): appends, proofs and full verification vs. SHA-256.

Builds N payloads of P random bytes (default 1,000,000 of 256), then in one run times:

(ref) plain ``hashlib.sha256`` of every payload: the floor of any log over them;
(a)   appending all of them to an in-memory ``MerkleLog`` (leaf hash plus the
      nodes ``appended_nodes`` completes, as a database log would store them);
(b)   inclusion proof generation + verification on the full log, per proof:
      median (and 99th percentile) of 1000 random leaves;
(c)   full verification: every leaf hash recomputed from its payload and the
      root rebuilt from them with ``root_from_leaf_hashes``.

Prints each with its ratio to (ref): (a) and (c) against the whole reference
run, (b) against one payload's share of it. The design's budgets are at least
5,000 appends/s and at most 5 ms per inclusion proof on a 1M-entry log.

    python bench/log_bench.py --entries 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time

from crypto.merkle import MerkleLog, leaf_hash, root_from_leaf_hashes, verify_inclusion

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
    args = parser.parse_args()
    if args.entries < 1 or args.payload_bytes < 8 or args.proofs < 1:
        parser.error("need --entries >= 1, --payload-bytes >= 8 and --proofs >= 1")

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

if __name__ == "__main__":
    main()
