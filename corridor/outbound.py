"""Connections to partner nodes that cannot be turned inward.

A node URL in the trust list was checked when its member joined (no IP
literals, no site-local names; see ``registry.membership.members.check_node_url``), but
the name is the member's own DNS: it can later resolve to ``10.0.0.5`` or
``127.0.0.1`` and make every partner's node send requests into its own
network (server-side request forgery by DNS rebinding).

:class:`PublicOnlyTransport` resolves the host once per request, refuses it
unless *every* address it resolves to is globally routable, and connects to
that very address — TLS still checks the certificate against the name (SNI
and hostname verification use the original host), so the pinned address
cannot be swapped between the check and the connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

import httpx

Resolver = Callable[[str, int], Sequence[str]]


class InwardAddress(httpx.TransportError):
    """The host resolves to an address that is not globally routable."""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection (system resolver)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise httpx.ConnectError(f"cannot resolve {host}: {e.strerror}") from e
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    """Whether ``address`` is globally routable (IPv4-mapped IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class PublicOnlyTransport(httpx.BaseTransport):
    """An HTTP transport that connects only to globally routable addresses.

    :param resolver: host, port → addresses; the system resolver by default
        (tests pass a fake one: DNS is the IO boundary).
    """

    def __init__(self, *, resolver: Resolver = resolve,
                 inner: httpx.BaseTransport | None = None) -> None:
        """Wrap ``inner`` (a plain :class:`httpx.HTTPTransport` by default)."""
        self._resolve = resolver
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Resolve, refuse inward addresses, and send ``request`` to the pinned address."""
        host = request.url.raw_host.decode("ascii")
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        addresses = self._resolve(host, port)
        inward = [a for a in addresses if not is_public(a)]
        if not addresses or inward:
            raise InwardAddress(
                f"{host} resolves to {', '.join(inward) or 'no address'}: not a public "
                "address, so Corridor will not connect to it (a node URL must reach the "
                "partner over the internet)", request=request)
        address = addresses[0]
        pinned = f"[{address}]" if ":" in address else address
        request.url = request.url.copy_with(host=pinned)
        request.extensions = {**request.extensions, "sni_hostname": host}
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Close the wrapped transport's connections."""
        self._inner.close()


def read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The body of a streamed ``response``, or ``None`` if it is longer than ``limit`` bytes.

    An answer from another machine is read only as far as it could be one
    (an error document, a token): a peer that streams gigabytes gets cut off.
    """
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def partner_client(*, development: bool, timeout: float = 60) -> httpx.Client:
    """An HTTP client for partner nodes' URLs from the trust list.

    Outside development (a node whose own URL is plain HTTP on loopback), it
    connects only to public addresses; it never follows redirects.
    """
    transport = None if development else PublicOnlyTransport()
    return httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
