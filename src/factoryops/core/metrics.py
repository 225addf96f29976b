"""Process-wide Prometheus metrics of the core, and the metrics endpoint of the split services.

Every metric of FactoryOps is listed, with its labels and meaning, in docs/observability.md.
Domain metrics live beside the code they measure (telemetry/, rules/, jobs/, notifications/);
the platform-wide gauges read from the database at scrape time are in
:mod:`factoryops.observability.collectors`.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Histogram, Info, start_http_server

from factoryops import __version__

log = logging.getLogger(__name__)

HTTP_ERRORS = Counter(
    "factoryops_http_errors_total", "API requests answered with an error, by status and code.", ["status", "code"]
)
LOGIN_FAILURES = Counter("factoryops_login_failures_total", "Failed sign-ins, by reason.", ["reason"])
RATE_LIMITED = Counter(
    "factoryops_http_rate_limited_total",
    "API requests refused with HTTP 429 by the per-client rate limit, by client kind (user or address).",
    ["client"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "factoryops_http_request_seconds",
    "Time to answer an HTTP request, by method, route template (never the ids in it) and status class.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PROCESS = Info("factoryops_process", "This FactoryOps process: its role (api, telemetry, worker, up) and version.")


def set_process(role: str) -> None:
    PROCESS.info({"process": role, "version": __version__})


def serve_metrics(host: str, port: int) -> None:
    """Serves the default registry on http://host:port/metrics in a background thread."""
    start_http_server(port, addr=host)
    log.info("Prometheus metrics on http://%s:%s/metrics", host, port)
