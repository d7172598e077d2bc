"""gunicorn entry point of bench/api_bench.py: the node, and a bare Flask app at ``/bare``.

The bare endpoint answers a JSON object of the size of ``/whoami``'s, with
nothing between gunicorn and the view: no token, no database, no hooks. Both
run in the same workers, so the ratio between them is the cost of the node's
own work (token check against the trust list, problem handling, metrics).
"""

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from node.wsgi import app as node_app

bare = Flask("bare")


@bare.get("/")
def hello() -> dict[str, object]:
    """A fixed answer the size of ``/whoami``'s."""
    return {"member_id": "ru-lotl", "node": "cn-ntlnp", "scope": ["node:read"],
            "trust_list_version": 3}


app = DispatcherMiddleware(node_app, {"/bare": bare})
