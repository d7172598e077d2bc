"""Node URLs cannot point inward: the registry refuses what would aim partners' nodes at
their own networks (each URL observed accepted before is a case here)."""

from __future__ import annotations

import pytest

from registry.members import InvalidRequest, check_node_url

OBSERVED = [
    ("https://169.254.169.254/latest/meta-data", "IP address"),  # cloud metadata
    ("https://10.0.0.1:22", "port 22"),
    ("https://[::ffff:127.0.0.1]", "IP address"),
    ("https://2130706433", "IP address"),  # 127.0.0.1 as one integer
    ("https://localhost:80@evil.example", "user info"),
]
MORE = [
    ("https://10.0.0.1", "IP address"),
    ("https://0x7f.1", "IP address"),
    ("https://0177.0.0.1", "IP address"),
    ("https://127.1", "IP address"),
    ("https://[fe80::1]", "IP address"),
    ("https://100.64.0.1", "IP address"),  # CGNAT
    ("https://user@node.park.example.org", "user info"),
    ("https://node.park.org?x=1", "query or fragment"),
    ("https://node.park.org/#top", "query or fragment"),
    ("https://node.park.org:80", "port 80"),
    ("https://node.park.org:8443", "port 8443"),
    ("https://node.park.org:99999", "port is not a number"),
    ("https://Node.Park.org", "lower case"),
    ("https://node.park.org.", "trailing dot"),
    ("https://leopards", "fully qualified"),
    ("https://node..park.org", "letters, digits"),
    ("https://-node.park.org", "letters, digits"),
    ("https://node_1.park.org", "letters, digits"),
    ("https://узел.парк.рф", "punycode"),
    ("https://node.park.org/ path", "spaces"),
    ("https://localhost", "private or reserved"),
    ("https://ru.localhost", "private or reserved"),
    ("https://printer.local", "private or reserved"),
    ("https://db.internal", "private or reserved"),
    ("http://node.park.org", "must be https"),
    ("ftp://node.park.org", "must be https"),
    ("https://" + "a" * 2100 + ".org", "at most 2048"),
]


@pytest.mark.parametrize(("url", "reason"), OBSERVED + MORE)
def test_an_inward_or_odd_node_url_is_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match="refused: .*" + reason.replace("?", r"\?")):
        check_node_url(url, development=False)


@pytest.mark.parametrize("url", [url for url, _ in OBSERVED])
def test_development_mode_does_not_open_the_observed_urls_either(url: str) -> None:
    with pytest.raises(InvalidRequest):
        check_node_url(url, development=True)


@pytest.mark.parametrize(("url", "canonical"), [
    ("https://node.amur-leopard.ru", "https://node.amur-leopard.ru"),
    ("https://node.amur-leopard.ru:443/corridor/", "https://node.amur-leopard.ru/corridor"),
    ("https://xn--e1aybc.xn--p1ai", "https://xn--e1aybc.xn--p1ai"),  # punycode is canonical
])
def test_a_public_https_name_is_accepted(url: str, canonical: str) -> None:
    assert check_node_url(url, development=False) == canonical


@pytest.mark.parametrize("url", ["http://127.0.0.1:8401", "http://localhost:8401",
                                 "https://127.0.0.1:8443", "http://[::1]:8401"])
def test_development_mode_accepts_loopback(url: str) -> None:
    assert check_node_url(url, development=True) == url
    with pytest.raises(InvalidRequest):
        check_node_url(url, development=False)
