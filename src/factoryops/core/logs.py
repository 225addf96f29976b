"""Logging set-up of every process, and the log context: what a line concerns.

``FACTORYOPS_LOG_FORMAT=text`` (the default) writes lines for people; ``json`` writes one JSON
object per line for log collectors::

    {"ts": "2026-12-01T10:00:00.123Z", "level": "WARNING", "logger": "factoryops.telemetry.rejects",
     "message": "...", "process": "telemetry", "factory_id": "...", "device_id": "meter-1"}

The factory, device, job, alert or request a line concerns comes from the *log context*, a
context variable set where the unit of work starts: the ingest pipeline per message, the job
worker per job, the API per request (:func:`push` / :func:`pop`). Code further down adds what
it learns (:func:`annotate`, e.g. the factory of the verified token). ``extra={...}`` fields of
a log call land in the JSON object too; an exception becomes an ``exc`` field with its traceback.

The context holds one dict per unit of work and :func:`annotate` changes it in place: FastAPI
runs dependencies and routes in worker threads with a *copy* of the context, and a copy still
points at the same dict, so the factory a dependency learns reaches the access-log line.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import traceback
from collections.abc import Callable
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

CONTEXT_FIELDS = ("request_id", "factory_id", "device_id", "job_id", "job_kind", "alert_id")
_context: ContextVar[dict[str, Any] | None] = ContextVar("factoryops_log_context", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra={...}``.
_RECORD_FIELDS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


def push(**fields: Any) -> Token[dict[str, Any] | None]:
    """Starts a unit of work (a message, a job, a request): a fresh context with ``fields``."""
    return _context.set({k: v for k, v in fields.items() if v not in (None, "")})


def pop(token: Token[dict[str, Any] | None]) -> None:
    """Ends the unit of work started by :func:`push`: the context before it is back."""
    _context.reset(token)


def annotate(**fields: Any) -> None:
    """Adds what was learnt about the current unit of work (no-op outside one)."""
    current = _context.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v not in (None, "")})


def unit_of_work(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorates the function that handles one unit of work: each call runs in a fresh context
    (filled in by :func:`annotate`) that ends with the call."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = push()
        try:
            return fn(*args, **kwargs)
        finally:
            pop(token)

    return wrapper


def current() -> dict[str, Any]:
    """A copy of the current context (for tests and hand-offs to other threads)."""
    return dict(_context.get() or {})


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, process, context, extras, exc."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": self.process,
        }
        entry.update(_context.get() or {})
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str, fmt: str, process: str) -> None:
    """Sets up the root logger of a process: ``fmt`` is ``text`` or ``json``; ``process`` names it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process) if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # Python warnings (a library's UserWarning, a DeprecationWarning) go through logging too, so a
    # JSON log stays one JSON object per line; they land on the ``py.warnings`` logger.
    logging.captureWarnings(True)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # One line per HTTP request to InfluxDB or S3 would drown the service's own lines (and cost CPU).
    for noisy in ("httpx", "httpcore", "botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
