"""gunicorn's own error answers as RFC 9457 problem documents, like every other error.

Some requests never reach the application: gunicorn refuses them while
parsing (a request line longer than ``limit_request_line``: 414; more header
fields than ``limit_request_fields`` or one longer than
``limit_request_field_size``: 431; a malformed request line or header: 400).
It writes those answers itself as a small HTML page, through
``gunicorn.util.write_error``. :func:`install` (called by
deploy/gunicorn.conf.py in each worker) replaces that function with
:func:`write_problem`, which sends the same status as
``application/problem+json``; gunicorn still chooses the status, logs the
refusal and closes the connection. tests/test_gunicorn_errors.py checks the
answers under real gunicorn, so a gunicorn release that stops calling it
fails there.
"""

from __future__ import annotations

import json
import socket

__all__ = ["install", "problem_bytes", "write_problem"]

#: Longest ``detail`` sent: gunicorn's message may quote the refused request line.
MAX_DETAIL = 200


def problem_bytes(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer with a problem document, ``Connection: close``."""
    body: dict[str, object] = {"type": "about:blank", "title": reason, "status": status}
    if message:
        body["detail"] = message[:MAX_DETAIL]
    payload = json.dumps(body, ensure_ascii=True).encode("ascii")
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/problem+json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode("latin-1") + payload


def write_problem(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """What gunicorn calls to answer a request it refused (``gunicorn.util.write_error``)."""
    from gunicorn import util

    util.write_nonblock(sock, problem_bytes(status_int, reason, mesg))


def install() -> None:
    """Make this process's gunicorn answer its own refusals with :func:`write_problem`."""
    from gunicorn import util

    util.write_error = write_problem
