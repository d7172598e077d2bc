"""Prometheus metrics at ``GET /metrics``, for both services (prometheus_client).

Two kinds of figures:

* **per request**, counted in the process that answered: requests by method,
  route (the URL rule, ``/agreements/<string:agreement_id>/package``, never the
  path, so ids do not multiply the series), and status; the time to the
  response's first byte; refusals (4xx) by status and by the reason the
  client was told (a problem document's ``title``, an OAuth2 ``error``);
* **read at scrape time** from the database, the same whichever worker
  answers: the exchange log's size and entries by type (packages served are
  ``corridor_log_entries{type="package.served"}``), and the trust list's
  version, age and time left.

Under gunicorn each worker is a process with its own counters. When
``PROMETHEUS_MULTIPROC_DIR`` names a directory (deploy/gunicorn.conf.py sets
one), prometheus_client keeps every worker's counters in files there and a
scrape adds them up, so any worker's answer covers all of them. The variable
must be set before prometheus_client is first imported: the client chooses
where values live at import.

Who may scrape: only clients whose address is in the service's
``metrics_from`` networks (loopback by default; ``[]`` turns the endpoint
off). Anyone else gets 404, as for a route that does not exist. With
``proxies = 0`` a request that carries ``X-Forwarded-For`` came through a
proxy the service does not know of, so its loopback address proves nothing:
it is refused too.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from time import perf_counter
from typing import Any, Protocol

from flask import Flask, Response, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from corridor.errors import NotFound

__all__ = [
    "MULTIPROC_VARIABLE",
    "HeldTrustList",
    "ServiceMetrics",
    "log_families",
    "metrics_blueprint",
    "trust_list_families",
]

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: Longest refusal reason kept as a label value (titles are short; this bounds a surprise).
MAX_REASON = 80
#: Seconds: from a token-checked metadata answer (milliseconds) to a package's first byte.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


class HeldTrustList(Protocol):
    """The trust list a service holds (node) or last signed (registry)."""

    @property
    def version(self) -> int: ...
    @property
    def issued_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...


def trust_list_families(facts: HeldTrustList | None, now: datetime) -> Iterator[Metric]:
    """``corridor_trust_list_version``, ``..._age_seconds`` and ``..._expires_in_seconds``
    (negative once expired); nothing when there is no list yet."""
    if facts is None:
        return
    yield GaugeMetricFamily("corridor_trust_list_version", "Version of the trust list held.",
                            value=facts.version)
    yield GaugeMetricFamily("corridor_trust_list_age_seconds",
                            "Seconds since the trust list held was issued.",
                            value=(now - facts.issued_at).total_seconds())
    yield GaugeMetricFamily("corridor_trust_list_expires_in_seconds",
                            "Seconds until the trust list held expires (negative: expired).",
                            value=(facts.expires_at - now).total_seconds())


def log_families(size: int, by_type: dict[str, int]) -> Iterator[Metric]:
    """``corridor_log_size`` and ``corridor_log_entries{type}`` of the exchange log."""
    yield GaugeMetricFamily("corridor_log_size", "Entries in the exchange log (its tree size).",
                            value=size)
    entries = GaugeMetricFamily("corridor_log_entries", "Exchange-log entries by type "
                                "(package.served: packages served).", labels=["type"])
    for type_, count in sorted(by_type.items()):
        entries.add_metric([type_], count)
    yield entries


class _Families(Collector):
    """A collector made of callables that yield families at scrape time."""

    def __init__(self, *parts: Callable[[], Iterable[Metric]]) -> None:
        self._parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self._parts:
            yield from part()


class ServiceMetrics:
    """One app's request counters and its scrape-time figures.

    ``facts`` yields the service's own families (log, trust list) when a
    scrape comes; it runs inside the request, so it may use the database.
    """

    def __init__(self, service: str, facts: Callable[[], Iterable[Metric]],
                 allow: Networks, proxies: int) -> None:
        self.service = service
        self.allow = tuple(allow)
        self.proxies = proxies
        self.facts = facts
        self.registry = CollectorRegistry()
        self.requests = Counter("corridor_http_requests", "HTTP requests answered.",
                                ["method", "route", "status"], registry=self.registry)
        self.duration = Histogram("corridor_http_request_duration_seconds",
                                  "Seconds to the response's first byte (a streamed "
                                  "package's time to stream is not in it).",
                                  ["route"], registry=self.registry, buckets=BUCKETS)
        self.refusals = Counter("corridor_refusals", "Requests refused (4xx), by status and "
                                "by the reason the client was told.",
                                ["status", "reason"], registry=self.registry)

    def init_app(self, app: Flask) -> None:
        """Count every request of ``app``; ``/metrics`` is :func:`metrics_blueprint`'s."""
        app.extensions["corridor_metrics"] = self
        app.before_request(self._start)
        app.after_request(self._count)

    def _start(self) -> None:
        g.corridor_started = perf_counter()

    def _count(self, response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "(no route)"
        status = response.status_code
        self.requests.labels(request.method, route, str(status)).inc()
        started = g.get("corridor_started")
        if started is not None:
            self.duration.labels(route).observe(perf_counter() - started)
        if 400 <= status < 500:
            self.refusals.labels(str(status), refusal_reason(response)).inc()
        return response

    def may_scrape(self) -> bool:
        """Whether this request's client is one that may read the metrics."""
        if not self.proxies and "X-Forwarded-For" in request.headers:
            return False
        try:
            address = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            return False
        return any(address in network for network in self.allow)

    def exposition(self) -> bytes:
        """The text format of every family: the requests of all workers, then the facts."""
        directory = os.environ.get(MULTIPROC_VARIABLE)
        if directory:
            counted = CollectorRegistry()
            MultiProcessCollector(counted, path=directory)  # type: ignore[no-untyped-call]
        else:
            counted = self.registry
        return generate_latest(_Families(counted.collect, self.facts))


def refusal_reason(response: Response) -> str:
    """What the client was told: a problem's ``title`` (and its OAuth2 ``error``, if any),
    else the status phrase. Refusals are small and never streamed: reading the body is cheap."""
    reason = ""
    if response.is_json and not response.is_streamed:
        try:
            body: Any = json.loads(response.get_data())
        except ValueError:
            body = None
        if isinstance(body, dict):
            parts = [body.get("title"), body.get("error")]
            reason = ": ".join(p for p in parts if isinstance(p, str) and p)
    return (reason or response.status.partition(" ")[2] or str(response.status_code))[:MAX_REASON]


def metrics_blueprint() -> Blueprint:
    """``GET /metrics``: the Prometheus text format, for the allowed networks only."""
    blp = Blueprint("metrics", __name__, description="Prometheus metrics, for the networks in "
                                                     "the service's metrics_from setting.")

    @blp.route("/metrics")
    class Metrics(MethodView):
        """The service's metrics."""

        @blp.response(200, {"type": "string"}, content_type=CONTENT_TYPE_LATEST,
                      description="Prometheus text exposition format.")
        @blp.alt_response(404, "NOT_FOUND")  # to a client outside metrics_from
        def get(self) -> Response:
            """Counters of this service's requests and refusals, its log and trust list."""
            metrics: ServiceMetrics = current_app.extensions["corridor_metrics"]
            if not metrics.may_scrape():
                raise NotFound("no such page")
            return Response(metrics.exposition(), mimetype=None,
                            content_type=CONTENT_TYPE_LATEST)

    return blp
