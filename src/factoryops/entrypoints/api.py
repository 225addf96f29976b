"""The HTTP process: REST API under /api/v1, health probes, metrics and the built web portal."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from factoryops import __version__
from factoryops.alerts.api import routers as alert_routers
from factoryops.analytics.api import routers as analytics_routers
from factoryops.core.db import UnscopedQueryError
from factoryops.core.errors import ApiError
from factoryops.core.health import check_all
from factoryops.core.metrics import HTTP_ERRORS
from factoryops.core.ratelimit import SlidingWindowLimiter
from factoryops.devices.api import routers as device_routers
from factoryops.devices.broker_api import routers as broker_routers
from factoryops.jobs.api import routers as job_routers
from factoryops.notifications.api import routers as notification_routers
from factoryops.reports.api import routers as report_routers
from factoryops.rules.api import routers as rule_routers
from factoryops.telemetry.api import routers as telemetry_routers
from factoryops.tenancy.api import routers as tenancy_routers
from factoryops.wiring import Platform

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 1_048_576
WEB_DIR = Path(__file__).resolve().parent.parent / "webui"

_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _error(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    HTTP_ERRORS.labels(str(status), code).inc()
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}}, status_code=status, headers=headers
    )


def _field(loc: Any) -> str:
    return ".".join(str(part) for part in loc)


class GuardMiddleware(BaseHTTPMiddleware):
    """Refuses huge bodies before they are read and adds security headers to every answer."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > MAX_BODY_BYTES
            except ValueError:
                return _error(400, "bad_request", "The Content-Length header is not a number.")
            if too_big:
                return _error(413, "payload_too_large", f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith(API_PREFIX):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def create_app(platform: Platform) -> FastAPI:
    settings = platform.settings
    app = FastAPI(
        title="FactoryOps API",
        version=__version__,
        description="Factory-isolated industrial energy intelligence. Every route except sign-in and the "
        "factory list needs a Bearer access token; every answer is filtered by the token's factory.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=f"{API_PREFIX}/redoc",
    )
    app.state.platform = platform
    app.state.tenancy = platform.tenancy
    app.state.login_limiter = SlidingWindowLimiter(settings.auth.login_rate_per_minute, 60.0)
    app.add_middleware(GuardMiddleware)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "")).removeprefix("Value error, ")}
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return _error(400, "malformed_json", "The request body is not valid JSON.", details)
        first = details[0] if details else {"field": "", "message": ""}
        return _error(422, "validation_error", f"Invalid input at {first['field']}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404:
            message = "No such resource."
        return _error(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(UnscopedQueryError)
    async def unscoped(_: Request, exc: UnscopedQueryError) -> JSONResponse:
        log.error("factory isolation violation refused: %s", exc)
        return _error(500, "isolation_violation", "The server refused a query outside your factory.")

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error (ref %s)", ref)
        return _error(500, "internal_error", f"Something went wrong on our side (reference {ref}).")

    for router in [
        *tenancy_routers,
        *device_routers,
        *analytics_routers,
        *report_routers,
        *telemetry_routers,
        *rule_routers,
        *alert_routers,
        *notification_routers,
        *job_routers,
        *broker_routers,
    ]:
        app.include_router(router, prefix=API_PREFIX)

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"], summary="Every dependency is reachable")
    def readyz() -> JSONResponse:
        checks = check_all(settings, platform.db)
        ready = all(c["status"] == "ok" for c in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
        )

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=PlainTextResponse)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    web_dir = (settings.web_dir or WEB_DIR).resolve()

    @app.get("/{path:path}", include_in_schema=False)
    def web(path: str) -> Response:
        if path.startswith("api/"):
            return _error(404, "not_found", "No such API route.")
        index = web_dir / "index.html"
        if not index.is_file():
            return _error(
                404,
                "web_ui_not_built",
                "The web portal is not built; run `npm ci && npm run build` in web/ (the README's run "
                "command does it).",
            )
        candidate = (web_dir / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(web_dir):
            return FileResponse(candidate)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    return app
