"""Connections to partner nodes refuse inward addresses (DNS rebinding, SSRF).

A member controls its own DNS: the name in the trust list may resolve to a
private, loopback or link-local address after the registry checked it. DNS is
the IO boundary, so the rebinding cases use a fake resolver; the loopback
cases use a real server and the system resolver.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest

from corridor.config import SettingsError, proxies_setting
from corridor.outbound import (
    InwardAddress,
    PublicOnlyTransport,
    is_public,
    partner_client,
    read_capped,
)
from deploy.loopback import LoopbackServer


@pytest.fixture
def counting_server() -> Any:
    """A real HTTP server on loopback that counts the requests it gets."""
    hits: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        hits.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"inside"]

    server = LoopbackServer(app)
    yield server, hits
    server.stop()


def test_a_node_outside_development_never_connects_to_loopback(counting_server: Any) -> None:
    server, hits = counting_server
    with partner_client(development=False) as http:
        for url in (server.url, server.url.replace("127.0.0.1", "localhost")):
            with pytest.raises(InwardAddress, match="not a public address"):
                http.get(url + "/agreements/a/package")
    assert hits == []


def test_development_reaches_loopback(counting_server: Any) -> None:
    server, hits = counting_server
    with partner_client(development=True) as http:
        assert http.get(server.url + "/x").text == "inside"
    assert hits == ["/x"]


@pytest.mark.parametrize("addresses", [
    ["10.0.0.5"], ["127.0.0.1"], ["169.254.169.254"], ["192.168.1.1"], ["172.16.0.1"],
    ["100.64.0.1"], ["0.0.0.0"],  # noqa: S104 - an address refused, not bound ["::1"], ["fe80::1%eth0"], ["fc00::1"],
    ["::ffff:127.0.0.1"], ["::ffff:10.0.0.1"], ["224.0.0.1"], ["240.0.0.1"],
    # one public answer does not excuse an inward one beside it
    ["93.184.216.34", "127.0.0.1"], ["2606:4700::1111", "fd00::1"],
    [],
])
def test_a_name_that_rebinds_inward_is_refused_before_connecting(addresses: list[str]) -> None:
    sent: list[httpx.Request] = []
    transport = PublicOnlyTransport(
        resolver=lambda host, port: addresses,
        inner=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)))
    with httpx.Client(transport=transport) as http, pytest.raises(InwardAddress) as refused:
        http.get("https://ru-lotl.example/agreements/a/package")
    assert sent == []
    assert "ru-lotl.example" in str(refused.value)


@pytest.mark.parametrize("address, pinned", [("93.184.216.34", "93.184.216.34"),
                                             ("2606:4700::1111", "2606:4700::1111")])
def test_a_public_name_is_pinned_to_the_address_that_was_checked(address: str,
                                                                 pinned: str) -> None:
    asked: list[tuple[str, int]] = []
    sent: list[httpx.Request] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return [address]

    transport = PublicOnlyTransport(
        resolver=resolver,
        inner=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)))
    with httpx.Client(transport=transport) as http:
        http.get("https://ru-lotl.example/agreements/a/package?since=c")
    assert asked == [("ru-lotl.example", 443)]
    (request,) = sent
    assert request.url.host == pinned
    assert request.url.path == "/agreements/a/package" and request.url.query == b"since=c"
    # TLS and the virtual host still see the name, so the certificate is checked against it
    assert request.headers["host"] == "ru-lotl.example"
    assert request.extensions["sni_hostname"] == "ru-lotl.example"


def test_an_unresolvable_name_is_a_connect_error() -> None:
    with partner_client(development=False) as http, pytest.raises(httpx.ConnectError):
        http.get("https://no-such-node.invalid/")


def test_public_addresses() -> None:
    assert is_public("93.184.216.34") and is_public("2606:4700::1111")
    assert not is_public("::ffff:192.168.0.1") and not is_public("ff02::1")


def test_partner_client_follows_no_redirects() -> None:
    assert partner_client(development=True).follow_redirects is False


def test_an_endless_answer_is_read_only_as_far_as_the_cap() -> None:
    served = 0

    def endless() -> Iterator[bytes]:
        nonlocal served
        while True:
            served += 1
            yield b"x" * 4096

    transport = httpx.MockTransport(lambda r: httpx.Response(500, content=endless()))
    with httpx.Client(transport=transport) as http, http.stream("GET", "https://p.example/") as r:
        assert read_capped(r, 64 * 1024) is None
    assert served <= 64 * 1024 // 4096 + 2
    small = httpx.MockTransport(lambda r: httpx.Response(403, content=b'{"detail": "no"}'))
    with httpx.Client(transport=small) as http, http.stream("GET", "https://p.example/") as r:
        assert read_capped(r, 64 * 1024) == b'{"detail": "no"}'


@pytest.mark.parametrize("value", [-1, 6, "1", True, 1.0, None])
def test_the_proxies_setting_is_a_small_whole_number(value: object) -> None:
    with pytest.raises(SettingsError, match="proxies"):
        proxies_setting(value)
    assert [proxies_setting(n) for n in (0, 1, 5)] == [0, 1, 5]

