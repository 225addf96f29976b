"""The API's access log and request timing: one line per request, with its request id and factory.

An ASGI middleware (not Starlette's ``BaseHTTPMiddleware``: it keeps streaming answers
streaming). Each request gets a request id - the caller's ``X-Request-ID`` when it is a sane
token, else a new one - sent back in the ``X-Request-ID`` header and put in the log context, so
every line logged while the request runs carries it. The factory of the verified token is added
to the context by the authentication dependency (:func:`factoryops.tenancy.deps.current_principal`).
When the answer is complete one line goes to the ``factoryops.access`` logger with the method,
path (never the query string: it may hold secrets), status and duration. Probes and metric
scrapes that succeed are logged at DEBUG only.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from factoryops.core import logs
from factoryops.core.metrics import HTTP_REQUEST_SECONDS

access_log = logging.getLogger("factoryops.access")

QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex[:16]


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "unmatched"


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        context = logs.push(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self._record(scope, status, seconds)
            logs.pop(context)

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float) -> None:
        method, path = scope.get("method", ""), scope.get("path", "")
        HTTP_REQUEST_SECONDS.labels(method, _route_template(scope), f"{status // 100}xx").observe(seconds)
        level = logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
        }
        access_log.log(level, "%s %s %s %.1fms", method, path, status, seconds * 1000, extra=fields)
