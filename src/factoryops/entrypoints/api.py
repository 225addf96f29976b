"""The HTTP process: REST API under /api/v1, health probes, metrics and the built web portal."""

from __future__ import annotations

import hmac
import logging
import math
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from factoryops import __version__
from factoryops.alerts.api import routers as alert_routers
from factoryops.analytics.api import routers as analytics_routers
from factoryops.core import text
from factoryops.core.access_log import AccessLogMiddleware
from factoryops.core.db import DatabaseUnavailable, UnscopedQueryError, is_unavailable
from factoryops.core.errors import ApiError
from factoryops.core.health import check_all
from factoryops.core.metrics import HTTP_ERRORS, RATE_LIMITED
from factoryops.core.ratelimit import SlidingWindowLimiter, TokenBucketLimiter
from factoryops.core.security import decode_access_token
from factoryops.core.settings import Environment
from factoryops.devices.api import routers as device_routers
from factoryops.devices.broker_api import routers as broker_routers
from factoryops.entrypoints.openapi_errors import document_errors
from factoryops.jobs.api import routers as job_routers
from factoryops.notifications.api import routers as notification_routers
from factoryops.observability.api import routers as observability_routers
from factoryops.reports.api import routers as report_routers
from factoryops.rules.api import routers as rule_routers
from factoryops.telemetry.api import routers as telemetry_routers
from factoryops.tenancy.api import routers as tenancy_routers
from factoryops.tenancy.deps import client_ip
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


# The built portal is one script and one stylesheet from its own origin (no inline script or
# <style>; React's style props go through the CSSOM, which CSP allows); its CSS has data: icons.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's Swagger UI and ReDoc pages load their scripts and styles from a CDN with inline set-up code.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"
)
HSTS = "max-age=31536000"
DOCS_PATHS = (f"{API_PREFIX}/docs", f"{API_PREFIX}/redoc")
# Machine-to-machine hooks of the broker (authenticated by their own secret); one broker address
# answers for every device, so a per-address limit would refuse devices during a reconnect storm.
RATE_LIMIT_EXEMPT = (f"{API_PREFIX}/mqtt/",)
_ERROR_BODY: dict[str, Any] = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
}


def _rate_limit_key(request: Request) -> tuple[str, str]:
    """(kind, key): the token's subject when a valid access token comes along, else the client address."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        try:
            claims = decode_access_token(request.app.state.platform.settings.auth, token.strip())
        except ApiError:
            pass
        else:
            return "user", f"user:{claims.subject_id}"
    return "address", f"address:{client_ip(request)}"


class GuardMiddleware(BaseHTTPMiddleware):
    """Refuses huge bodies before they are read, applies the API rate limit, adds security headers."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = self._refusal(request) or await call_next(request)
        path = request.url.path
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        docs = path.startswith(DOCS_PATHS)
        headers.setdefault("Content-Security-Policy", DOCS_CONTENT_SECURITY_POLICY if docs else CONTENT_SECURITY_POLICY)
        if request.url.scheme == "https":  # TLS here, or at a trusted proxy that said so (X-Forwarded-Proto)
            headers.setdefault("Strict-Transport-Security", HSTS)
        if path.startswith(API_PREFIX):
            headers.setdefault("Cache-Control", "no-store")
        return response

    @staticmethod
    def _refusal(request: Request) -> Response | None:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > MAX_BODY_BYTES
            except ValueError:
                return _error(400, "bad_request", "The Content-Length header is not a number.")
            if too_big:
                return _error(413, "payload_too_large", f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        limiter: TokenBucketLimiter | None = request.app.state.api_limiter
        path = request.url.path
        if limiter is not None and path.startswith(API_PREFIX) and not path.startswith(RATE_LIMIT_EXEMPT):
            kind, key = _rate_limit_key(request)
            wait = limiter.hit(key)
            if wait:
                RATE_LIMITED.labels(kind).inc()
                seconds = math.ceil(wait)
                return _error(
                    429,
                    "too_many_requests",
                    f"Too many requests: at most {limiter.limit} per minute are allowed; retry in {seconds} "
                    f"second{'s' if seconds != 1 else ''}.",
                    headers={"Retry-After": str(seconds)},
                )
        return None


def _validation_message(error: Any) -> str:
    """pydantic's message, except for the free-text patterns, which get words instead of a regex."""
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern in text.MESSAGES:
        return text.MESSAGES[pattern]
    return str(error.get("msg", "")).removeprefix("Value error, ")


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
    per_minute = settings.http.rate_limit_per_minute
    app.state.api_limiter = TokenBucketLimiter(per_minute, 60.0) if per_minute > 0 else None
    app.add_middleware(GuardMiddleware)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(AccessLogMiddleware)  # outermost: times and logs every answer, errors included
    if platform.db is not None:
        from factoryops.observability.collectors import install

        install(platform.db)  # platform-wide gauges (open alerts, job queue) on /metrics

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": _field(e.get("loc", ())), "message": _validation_message(e)} for e in exc.errors()]
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

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        if not is_unavailable(exc):
            return await crash(request, exc)
        log.warning("metadata database unavailable for %s %s: %s", request.method, request.url.path, exc)
        return _error(
            503,
            "database_unavailable",
            "The platform's database is not reachable right now (it may be restarting). Telemetry is kept; "
            "try again in a few seconds.",
            headers={"Retry-After": "5"},
        )

    app.add_exception_handler(DBAPIError, database_down)
    app.add_exception_handler(DatabaseUnavailable, database_down)

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
        *observability_routers,
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

    metrics_token = settings.http.metrics_token.get_secret_value() if settings.http.metrics_token else ""
    metrics_closed = not metrics_token and settings.env == Environment.production

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics",
        description="Platform-wide figures (open alerts of all factories, failed sign-ins, the job queue). "
        "With `FACTORYOPS_HTTP__METRICS_TOKEN` set it asks for `Authorization: Bearer <that token>`; without "
        "it, it is open in development and answers 404 in production.",
        response_class=PlainTextResponse,
        responses={
            401: {"description": "The metrics token is set and the request did not bring it.", **_ERROR_BODY},
            404: {"description": "Production without a metrics token: closed on this port.", **_ERROR_BODY},
        },
    )
    def metrics(request: Request) -> Response:
        if metrics_token:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), metrics_token.encode()):
                return _error(
                    401,
                    "not_authenticated",
                    "/metrics needs the scraper's token: send Authorization: Bearer <FACTORYOPS_HTTP__METRICS_TOKEN>.",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        elif metrics_closed:
            return _error(
                404,
                "metrics_closed",
                "/metrics is closed on the API port in production: set FACTORYOPS_HTTP__METRICS_TOKEN and scrape "
                "with Authorization: Bearer <token> (the telemetry and worker processes serve theirs on "
                "FACTORYOPS_METRICS_PORT); see docs/observability.md.",
            )
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate_openapi(), API_PREFIX)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

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
