"""Which job kinds this installation can run: each domain registers its handlers here."""

from __future__ import annotations

from factoryops.jobs.worker import Handler

_HANDLERS: dict[str, Handler] = {}


def register(kind: str, handler: Handler) -> None:
    """``kind`` is ``<area>.<what>``; the area (analytics, reports, alerts...) decides who may cancel it."""
    _HANDLERS[kind] = handler


def handlers() -> dict[str, Handler]:
    return dict(_HANDLERS)
