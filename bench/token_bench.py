"""Token benchmark: issuance at the registry, verification at a node, vs. raw Ed25519.

In one run:

(ref) one Ed25519 signature verification with ``cryptography`` (the floor of
      any token check);
(a)   access-token verification as a node does it (``verify_access_token``:
      size and header checks, signature, claims);
(b)   tokens issued per second by a registry served over real HTTP on
      loopback (client assertion signed and verified, replay check, token
      signed, both recorded in SQLite), from one client thread.

Prints rates and the ratio of (a) to (ref).

    python bench/token_bench.py --seconds 3
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from corridor.keystore import load_signing_key
from crypto.keys import KeySet, SigningKey
from crypto.tokens import issue_access_token, verify_access_token
from deploy.federation import LoopbackFederation
from node.exchange.oauth_client import TokenClient


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    fn()  # warm up
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            fn()
        n += 50
    return n / elapsed


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    registry_key, client_key = SigningKey.generate(), SigningKey.generate()
    payload = b"x" * 300
    signature = registry_key.sign(payload)
    public = registry_key.public_key
    ref = rate(lambda: public.verify(signature, payload), args.seconds)

    now = int(time.time())
    token = issue_access_token(registry_key, issuer="https://registry.example",
                               subject="ru-lotl", audience="cn-ntlnp", scope="node:read",
                               now=now, ttl=300, jti="bench")
    keys = KeySet([registry_key.public_key])
    verify = rate(lambda: verify_access_token(token, keys, audience="cn-ntlnp",
                                              issuer="https://registry.example", now=now),
                  args.seconds)

    with tempfile.TemporaryDirectory(prefix="corridor-token-bench-") as tmp:
        # The loopback federation the demo and the tests use: a registry, two members.
        net = LoopbackFederation.start(Path(tmp), name="Bench registry")
        for member_id, country in (("ru-lotl", "RU"), ("cn-ntlnp", "CN")):
            net.add_node(member_id, member_id, country)
            net.admit(member_id)
        url = net.registry_server.url
        client_key = load_signing_key(net.nodes["ru-lotl"].keys_dir)
        http = httpx.Client(timeout=10)

        def issue() -> None:
            # A fresh client each call: no caching, one full token request every time.
            TokenClient(url, f"{url}/oauth/token", "ru-lotl", client_key, http=http,
                        clock=lambda: datetime.now(UTC)).token("cn-ntlnp", "node:read")

        issued = rate(issue, args.seconds)
        net.stop()

    print(f"(ref) Ed25519 verify (cryptography)   {ref:10,.0f} /s   {1e6 / ref:8.1f} us")
    print(f"(a)   access-token verify at a node   {verify:10,.0f} /s   {1e6 / verify:8.1f} us"
          f"   = {ref / verify:.1f}x the cost of one Ed25519 verify")
    print(f"(b)   tokens issued over HTTP         {issued:10,.0f} /s   {1e3 / issued:8.2f} ms")


if __name__ == "__main__":
    main()
