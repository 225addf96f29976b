"""Process-wide Prometheus counters for errors users cause and what the platform rejects."""

from __future__ import annotations

from prometheus_client import Counter

HTTP_ERRORS = Counter(
    "factoryops_http_errors_total", "API requests answered with an error, by status and code.", ["status", "code"]
)
LOGIN_FAILURES = Counter("factoryops_login_failures_total", "Failed sign-ins, by reason.", ["reason"])
