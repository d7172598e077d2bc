"""API load benchmark: a node and the registry under gunicorn (2 workers), loaded by wrk.

Builds, in a temporary directory removed at the end, a loopback federation (a
registry, ru-lotl and cn-ntlnp, admitted, trust lists synced), then serves
cn-ntlnp and the registry each from gunicorn with deploy/gunicorn.conf.py and
2 workers, on the ports they registered. wrk (a second process, Debian's
package) sends the load; its own CPU is reported, since on a small machine
it competes with the servers.

In the node's gunicorn, alternating, --rounds times:

(ref) ``GET /bare/``: a bare Flask endpoint mounted in the same workers
      (bench/api_bench_wsgi.py), a fixed JSON answer of /whoami's size;
(a)   ``GET /whoami`` with a registry access token, verified from the trust
      list as every authorized request is.
Budget (DESIGN.md §12): a ≥ 50% of ref's requests/s, p99(a) ≤ 50 ms.

At the registry's gunicorn:

(b)   ``POST /oauth/token``: tokens issued with --token-connections
      concurrent clients, each request with its own pre-signed client
      assertion (so wrk can send them; a replay would be refused). Reported:
      tokens/s, p99, the servers' CPU per token, and the Ed25519 work per
      token measured in this process (one assertion verify, one token
      sign), to say what bounds it.

The registry is on SQLite in its directory unless --postgres names a
PostgreSQL server, where a fresh database is made for it (and dropped).

    python bench/api_bench.py --seconds 10
    python bench/api_bench.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import re
import resource
import secrets
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from gunicorn_serving import serve_with_gunicorn

from corridor.keystore import load_signing_key
from crypto.keys import SigningKey
from crypto.tokens import ASSERTION_TYPE, issue_access_token, make_client_assertion
from deploy.federation import LoopbackFederation
from node.exchange.oauth_client import TokenClient

WSGI = "api_bench_wsgi:app"
# wrk's Lua: each thread sends its share of the pre-signed bodies, each once.
WRK_SCRIPT = """
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  bodies, count, nth = {}, 0, 0
  local i = 0
  for line in io.lines(args[1]) do
    if i % tonumber(args[2]) == id then
      count = count + 1
      bodies[count] = line
    end
    i = i + 1
  end
end
function request()
  nth = nth + 1
  if nth > count then nth = 1 end  -- a replay, refused: counted as an error
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"},
                    bodies[nth])
end
"""
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Load:
    """One wrk run: requests/s, p99 in ms, requests that failed, and the CPU it cost."""

    rate: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu: float  # CPU seconds of the gunicorn workers during the run
    wrk_cpu: float     # CPU seconds of wrk itself
    machine_cpu: float  # CPU seconds of the whole machine (the database server too)
    seconds: float

    @property
    def cpu_ms_per_request(self) -> float:
        """The workers' CPU per request answered."""
        return 1e3 * self.server_cpu / max(self.requests, 1)


def worker_cpu(arbiter: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) used so far by the arbiter's workers, living and ended
    (gunicorn recycles workers after max_requests: the ended ones are in the arbiter's
    ``cutime`` and ``cstime``)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def fields(pid: int | str) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    own = fields(arbiter.pid)
    total = (int(own[13]) + int(own[14])) / ticks  # cutime, cstime: the reaped workers
    for pid in Path(f"/proc/{arbiter.pid}/task/{arbiter.pid}/children").read_text().split():
        try:
            worker = fields(pid)
        except FileNotFoundError:
            continue  # ended between the two reads; counted once reaped
        total += (int(worker[11]) + int(worker[12])) / ticks
    return total


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (not idle, not waiting for IO)."""
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / ticks


def wrk(url: str, arbiter: subprocess.Popen[bytes], *, seconds: float, connections: int,
        threads: int, headers: dict[str, str] | None = None,
        script: tuple[Path, list[str]] | None = None) -> Load:
    """Run wrk against ``url`` and read its summary."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
               "--timeout", "10s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script[0]), url, "--", *script[1]]
    else:
        command.append(url)
    cpu_before, machine_before = worker_cpu(arbiter), machine_cpu()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    if done.stderr.strip():  # a script error still exits 0, with GETs in its place
        raise SystemExit(f"wrk: {done.stderr.strip()}")
    out = done.stdout
    elapsed = time.perf_counter() - started
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = worker_cpu(arbiter) - cpu_before
    machine = machine_cpu() - machine_before
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(n) for n in sockets.groups()) if sockets else 0)
    assert p99 is not None, out
    return Load(rate, float(p99.group(1)) * _UNIT[p99.group(2)], total, errors, server_cpu,
                (wrk_after.ru_utime + wrk_after.ru_stime)
                - (wrk_before.ru_utime + wrk_before.ru_stime), machine, elapsed)


def median_load(loads: list[Load]) -> Load:
    """The median of each figure over rounds (errors: the sum)."""
    def mid(name: str) -> float:
        return statistics.median(getattr(load, name) for load in loads)
    return Load(mid("rate"), mid("p99_ms"), int(mid("requests")),
                sum(load.errors for load in loads), mid("server_cpu"), mid("wrk_cpu"),
                mid("machine_cpu"), mid("seconds"))


def line(label: str, load: Load, unit: str = "req/s") -> str:
    """One result line."""
    return (f"{label:<38} {load.rate:9,.0f} {unit:<6} p99 {load.p99_ms:7.1f} ms   "
            f"errors {load.errors:<4} server CPU {load.cpu_ms_per_request:5.2f} ms/req   "
            f"cores busy: servers {load.server_cpu / load.seconds:.2f}, "
            f"wrk {load.wrk_cpu / load.seconds:.2f}, machine {load.machine_cpu / load.seconds:.2f}")


def assertions(path: Path, net: LoopbackFederation, count: int) -> None:
    """Write ``count`` token-request bodies, each with a fresh signed client assertion,
    alternating the two members (each asks for a token to the other)."""
    endpoint = net.registry.token_endpoint
    members = [(m, load_signing_key(net.nodes[m].keys_dir), other)
               for m, other in (("ru-lotl", "cn-ntlnp"), ("cn-ntlnp", "ru-lotl"))]
    now = int(time.time())
    with path.open("w", encoding="ascii") as out:
        for i in range(count):
            member, key, audience = members[i % 2]
            assertion = make_client_assertion(key, client_id=member, token_endpoint=endpoint,
                                              now=now, lifetime=240)
            out.write(urlencode({"grant_type": "client_credentials", "audience": audience,
                                 "scope": "node:read", "client_assertion_type": ASSERTION_TYPE,
                                 "client_assertion": assertion}) + "\n")


def crypto_per_token(seconds: float = 1.0) -> float:
    """Milliseconds of Ed25519 work in one token request: an assertion verified, a token signed."""
    key = SigningKey.generate()
    assertion = make_client_assertion(key, client_id="ru-lotl",
                                      token_endpoint="https://registry.example/oauth/token",  # noqa: S106
                                      now=int(time.time()))
    signing_input, _, signature = assertion.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        key.public_key.verify(raw, signing_input.encode())
        issue_access_token(key, issuer="https://r", subject="ru-lotl", audience="cn-ntlnp",
                           scope="node:read", now=int(time.time()), ttl=300, jti=str(n))
        n += 1
    return 1e3 * (time.perf_counter() - started) / n


def gunicorn_log_counts(directory: Path) -> tuple[int, int]:
    """(workers booted, 'database is locked' lines) in a service's gunicorn.log."""
    text = (directory / "gunicorn.log").read_text(errors="replace")
    return text.count("Booting worker"), text.count("database is locked")


def fresh_postgres(server: str, stack: ExitStack) -> str:
    """A new, empty database on ``server`` for the registry, dropped when ``stack`` closes."""
    name = f"corridor_api_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    stack.callback(drop)
    return sa.make_url(server).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    """Build the federation, serve it under gunicorn, load it, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each wrk run (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=64,
                        help="concurrent connections at the node (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2,
                        help="wrk threads (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating (ref)/(a) rounds, and (b) runs; medians are "
                             "printed (default: %(default)s)")
    parser.add_argument("--token-connections", type=int, default=16,
                        help="concurrent clients asking the registry for tokens "
                             "(default: %(default)s)")
    parser.add_argument("--token-requests", type=int, default=6000,
                        help="pre-signed token requests per (b) run; more than the registry "
                             "can answer in --seconds (default: %(default)s)")
    parser.add_argument("--gunicorn", default="", metavar="OPTIONS",
                        help="further gunicorn options for both services, e.g. "
                             "'--threads 8' (default: deploy/gunicorn.conf.py as it is)")
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server URL: the registry gets a fresh database there")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be at least 1 and --seconds positive")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    root = Path(tempfile.mkdtemp(prefix="corridor-api-bench-"))
    stack = ExitStack()
    try:
        database = fresh_postgres(args.postgres, stack) if args.postgres else None
        net = LoopbackFederation.start(root / "fed", name="API bench registry",
                                       database_url=database)
        stack.callback(net.stop)
        for member, country in (("ru-lotl", "RU"), ("cn-ntlnp", "CN")):
            net.add_node(member, member, country)
            net.admit(member)
        net.sync()
        node_url = net.servers["cn-ntlnp"].url
        registry_url = net.registry_server.url
        extra = shlex.split(args.gunicorn)
        node = serve_with_gunicorn(net, "cn-ntlnp", stack, workers=2, app=WSGI, extra=extra)
        registry = serve_with_gunicorn(net, "registry", stack, workers=2, extra=extra)
        client = TokenClient(registry_url, net.registry.token_endpoint, "ru-lotl",
                             load_signing_key(net.nodes["ru-lotl"].keys_dir),
                             http=httpx.Client(timeout=10), clock=lambda: datetime.now(UTC))
        common = {"seconds": args.seconds, "connections": args.connections,
                  "threads": args.threads}
        assert httpx.get(f"{node_url}/bare/").status_code == 200
        print(f"node: gunicorn, 2 workers; wrk -t{args.threads} -c{args.connections} "
              f"-d{args.seconds:g}s; {args.rounds} alternating rounds, medians", flush=True)
        bare, checked = [], []
        for _ in range(args.rounds):
            bare.append(wrk(f"{node_url}/bare/", node, **common))
            token = client.token("cn-ntlnp", "node:read")
            assert httpx.get(f"{node_url}/whoami", headers={
                "Authorization": f"Bearer {token}"}).status_code == 200
            checked.append(wrk(f"{node_url}/whoami", node, **common,
                               headers={"Authorization": f"Bearer {token}"}))
        ref, a = median_load(bare), median_load(checked)
        print(line("(ref) bare Flask GET /bare/", ref))
        print(line("(a)   token-checked GET /whoami", a))
        print(f"      a/ref = {a.rate / ref.rate:.2f} (budget >= 0.50), "
              f"p99 {a.p99_ms:.1f} ms (budget <= 50 ms); with every core busy, "
              f"{args.connections} connections wait {1e3 * args.connections / a.rate:.1f} ms "
              "on average (Little's law), the bare endpoint's p99 is the floor")

        storage = "PostgreSQL" if args.postgres else "SQLite"
        print(f"registry ({storage}): gunicorn, 2 workers; wrk -t{args.threads} "
              f"-c{args.token_connections} -d{args.seconds:g}s; {args.rounds} runs, medians",
              flush=True)
        issued = []
        script = root / "token.lua"
        script.write_text(WRK_SCRIPT)
        for i in range(args.rounds):
            bodies = root / f"token-requests-{i}.txt"
            assertions(bodies, net, args.token_requests)
            issued.append(wrk(f"{registry_url}/oauth/token", registry,
                              seconds=args.seconds, connections=args.token_connections,
                              threads=args.threads,
                              script=(script, [str(bodies), str(args.threads)])))
        b = median_load(issued)
        print(line("(b)   tokens issued POST /oauth/token", b, "tok/s"))
        if b.requests >= args.token_requests:
            print(f"      every pre-signed request was used: raise --token-requests above "
                  f"{b.requests:,} (replays were refused and counted as errors)")
        crypto = crypto_per_token()
        busy = b.machine_cpu / b.seconds
        cores = os.cpu_count() or 1
        print(f"      per token: {b.cpu_ms_per_request:.2f} ms of worker CPU, of which "
              f"Ed25519 (assertion verify + token sign) {crypto:.2f} ms; the machine was "
              f"busy on {busy:.2f} of {cores} cores: "
              + ("CPU-bound" if busy > 0.85 * cores else
                 "not CPU-bound: requests wait for the database's write lock"
                 + (" (SQLite: one writer at a time, waiters sleep and retry)"
                    if not args.postgres else "")))
        for label, directory in (("node", net.nodes["cn-ntlnp"].directory),
                                 ("registry", net.registry.directory)):
            booted, locked = gunicorn_log_counts(directory)
            print(f"{label}: {booted - 2} worker restarts, {locked} 'database is locked'")
    finally:
        stack.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
