"""gunicorn's own refusals, before the app sees the request, are problem documents too.

A node under real gunicorn (deploy/gunicorn.conf.py) is sent, over a raw
socket, what gunicorn refuses while parsing: a request line over
``limit_request_line`` (414), more header fields than ``limit_request_fields``
or one over ``limit_request_field_size`` (431), and a malformed request line
(400). Each answer must be ``application/problem+json`` with its status, and
the node must go on answering.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from corridor.gunicorn_errors import problem_bytes
from tests.conftest import Federation
from tests.test_gunicorn import Gunicorn


@pytest.fixture
def node(federation: Federation, tmp_path: Path) -> Iterator[Gunicorn]:
    server = federation.servers["cn-ntlnp"]
    server.stop()
    served = Gunicorn("node", "CORRIDOR_NODE_DIR", federation.nodes["cn-ntlnp"], server.url,
                      tmp_path / "gunicorn.log")
    try:
        yield served
    finally:
        served.stop()


def send(url: str, data: bytes) -> tuple[str, dict[str, str], bytes]:
    """Write ``data`` to the server and read its whole answer (it closes the connection)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(data)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in
               (line.partition(":") for line in lines)}
    return status, headers, body


@pytest.mark.slow
@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /livez HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-Field-%d: v\r\n" % i for i in range(60)) + b"\r\n", 431),
    (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n", 431),
    (b"\x01\x02 nonsense\r\n\r\n", 400),
], ids=["414-request-line", "431-too-many-fields", "431-field-too-long", "400-malformed"])
def test_gunicorn_refuses_with_a_problem_document(node: Gunicorn, request_bytes: bytes,
                                                  status: int) -> None:
    status_line, headers, body = send(node.url, request_bytes)
    assert status_line.startswith(f"HTTP/1.1 {status} "), (status_line, body[:200])
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["content-length"]) == len(body)
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["type"] == "about:blank"
    assert httpx.get(f"{node.url}/livez").status_code == 200  # and the node goes on


def test_a_problem_answer_is_well_formed_http() -> None:
    answer = problem_bytes(431, "Request Header Fields Too Large", "x" * 1000 + '"\r\n')
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert b"Content-Length: %d" % len(body) in head
    detail = json.loads(body)["detail"]
    assert len(detail) == 200 and "\r" not in body.decode()  # quoted, capped, one body
