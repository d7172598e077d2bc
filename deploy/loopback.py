"""A WSGI app served over real HTTP on loopback in a background thread.

Used by ``corridor demo`` (a registry and two nodes on one machine) and by
the tests (real servers, real sockets). Not for production: that is gunicorn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import make_server

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class LoopbackServer:
    """Serve a WSGI app on ``127.0.0.1`` (a free port unless ``port`` is given).

    The app may be mounted later: the server binds first (so :attr:`url` is
    known, e.g. to put in a service's config at init) and answers 503 until
    :meth:`mount`.
    """

    def __init__(self, app: WSGIApp | None = None, *, port: int = 0) -> None:
        """Bind and start serving in a daemon thread."""
        self.app = app
        self._server = make_server("127.0.0.1", port, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name=f"loopback-{self._server.server_port}")
        self._thread.start()

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"not mounted yet"]
        return self.app(environ, start_response)

    def mount(self, app: WSGIApp) -> None:
        """Start serving ``app``."""
        self.app = app

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
