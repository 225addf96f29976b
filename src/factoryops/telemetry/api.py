"""Routes: latest values, history over a range, a live stream of a device, the reject log, the retention."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.core.db import utcnow
from factoryops.core.errors import ApiError
from factoryops.core.moments import Moment
from factoryops.core.pagination import Page, PageParams, page_params, paginate
from factoryops.devices.models import Property
from factoryops.devices.service import DeviceService
from factoryops.ports.timeseries.base import FactoryScope, Resolution, TimeseriesError, TimeseriesStore
from factoryops.telemetry import retention, schemas
from factoryops.telemetry.models import RejectCount, TelemetryReject, TelemetryRetention
from factoryops.tenancy.deps import client_ip, factory_db, factory_of, factory_user, reauthenticate, super_admin
from factoryops.tenancy.service import Principal, audit

telemetry = APIRouter(tags=["telemetry"])
devices = DeviceService()
MAX_HISTORY_POINTS = 200_000
# How often a live stream checks again that its caller may still read it (token, session, user).
RECHECK_SECONDS = 3.0
# Why a live stream ended early, by the code of the 401 a new request would get.
END_REASONS = {"token_expired": "token_expired", "session_expired": "session_revoked"}


def store_of(request: Request) -> TimeseriesStore:
    store: TimeseriesStore | None = request.app.state.platform.timeseries
    if store is None:
        raise ApiError(503, "timeseries_unavailable", "The time-series store is not configured in this process.")
    return store


def _scope(principal: Principal) -> FactoryScope:
    return FactoryScope(factory_of(principal))


def _unavailable(exc: TimeseriesError) -> ApiError:
    return ApiError(503, "timeseries_unavailable", f"The time-series store cannot answer right now: {exc}")


def _latest(s: Session, store: TimeseriesStore, principal: Principal, device_id: str) -> schemas.DeviceLatest:
    devices.get(s, device_id)  # 404 for a device of another factory, or none
    try:
        latest = store.latest(_scope(principal), [device_id])
    except TimeseriesError as exc:
        raise _unavailable(exc) from exc
    meta = {
        p.name: p for p in s.execute(select(Property).where(Property.name.in_([k.property for k in latest]))).scalars()
    }
    values = [
        schemas.LatestValue(
            property=key.property,
            ts=sample.ts,
            value=sample.value,
            unit=meta[key.property].unit if key.property in meta else "",
            display_name=meta[key.property].display_name if key.property in meta else "",
        )
        for key, sample in sorted(latest.items())
    ]
    return schemas.DeviceLatest(device_id=device_id, values=values)


@telemetry.get("/devices/{device_id}/latest", response_model=schemas.DeviceLatest, summary="Latest values")
def latest_values(
    device_id: str,
    request: Request,
    principal: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.DeviceLatest:
    return _latest(s, store_of(request), principal, device_id)


@telemetry.get(
    "/devices/{device_id}/live",
    summary="Live values of a device (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`values` events, one per change. The caller is checked again every few seconds: "
            "once the access token has expired, or the session was revoked (sign-out elsewhere, password "
            'reset, the user or factory disabled), a last `end` event (`{"reason": "token_expired"}`, '
            '`"session_revoked"` or `"invalid_token"`, with a `message`) closes the stream.',
        }
    },
)
async def live_values(
    device_id: str,
    request: Request,
    seconds: int = Query(3600, ge=1, le=86_400, description="Close the stream after this long."),
    principal: Principal = Depends(factory_user),
) -> StreamingResponse:
    store = store_of(request)
    db = request.app.state.platform.db
    assert principal.factory_id is not None
    factory_id = principal.factory_id

    def read() -> schemas.DeviceLatest:
        with db.factory_session(factory_id) as s:
            return _latest(s, store, principal, device_id)

    def ended() -> bytes | None:
        """The stream's last event once its caller may no longer read it, else None."""
        try:
            reauthenticate(request)
        except ApiError as exc:
            reason = END_REASONS.get(exc.code, exc.code)
            return f"event: end\ndata: {json.dumps({'reason': reason, 'message': exc.message})}\n\n".encode()
        return None

    first = await asyncio.to_thread(read)  # a 404 or 503 answers before the stream starts

    async def events() -> AsyncIterator[bytes]:
        last: dict[str, tuple[datetime, float]] = {}
        current = first
        clock = asyncio.get_running_loop()
        deadline = clock.time() + seconds
        recheck_at = clock.time() + RECHECK_SECONDS
        while True:
            if clock.time() >= recheck_at:
                end = await asyncio.to_thread(ended)
                if end is not None:
                    yield end
                    return
                recheck_at = clock.time() + RECHECK_SECONDS
            changed = [v for v in current.values if last.get(v.property) != (v.ts, v.value)]
            if changed:
                for v in changed:
                    last[v.property] = (v.ts, v.value)
                body = json.dumps({"device_id": device_id, "values": [v.model_dump(mode="json") for v in changed]})
                yield f"event: values\ndata: {body}\n\n".encode()
            else:
                yield b": keep-alive\n\n"
            if clock.time() >= deadline or await request.is_disconnected():
                return
            await asyncio.sleep(0.25)
            try:
                current = await asyncio.to_thread(read)
            except ApiError as exc:
                yield f"event: error\ndata: {json.dumps(exc.body())}\n\n".encode()
                await asyncio.sleep(1.0)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@telemetry.get("/telemetry/history", response_model=schemas.HistoryOut, summary="History of properties over a range")
def history(
    request: Request,
    device_id: list[str] = Query(..., min_length=1, max_length=50, description="Device ids (repeat the parameter)."),
    property: list[str] | None = Query(None, max_length=50, description="Properties (repeat); all when omitted."),
    start: Moment | None = Query(None, description="Start (ISO 8601); default: 24 hours before end."),
    end: Moment | None = Query(None, description="End (ISO 8601, exclusive); default: now."),
    aggregate: Literal["mean", "min", "max", "sum", "count"] | None = Query(None),
    interval_seconds: int | None = Query(None, ge=1, le=31 * 86_400, description="Window size of an aggregate."),
    max_points: int | None = Query(None, ge=1, le=10_000, description="Point budget per series (with aggregate)."),
    principal: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.HistoryOut:
    end = end or utcnow()
    start = start or end - timedelta(hours=24)
    for value, name in ((start, "start"), (end, "end")):
        if value.tzinfo is None:
            raise ApiError(
                422,
                "validation_error",
                f"{name} needs a time zone (e.g. 2026-01-31T00:00:00Z).",
                details=[{"field": f"query.{name}", "message": "naive datetime"}],
            )
    for device in device_id:
        devices.get(s, device)
    if aggregate is not None and interval_seconds is None and max_points is None:
        max_points = 500
    try:
        result = store_of(request).query(
            _scope(principal),
            device_id,
            property,
            start,
            end,
            aggregate=aggregate,
            interval=timedelta(seconds=interval_seconds) if interval_seconds else None,
            max_points=max_points,
        )
    except ValueError as exc:
        raise ApiError(422, "bad_query", str(exc)) from exc
    except TimeseriesError as exc:
        raise _unavailable(exc) from exc
    total = sum(len(v) for v in result.series.values())
    if total > MAX_HISTORY_POINTS:
        raise ApiError(
            422,
            "too_many_points",
            f"The range holds {total} raw points; ask for an aggregate with max_points, or a shorter range.",
        )
    return schemas.HistoryOut(
        resolution=result.resolution.value,
        aggregate=result.aggregate,
        interval_seconds=int(result.interval.total_seconds()) if result.interval else None,
        start=result.start,
        end=result.end,
        series=[
            schemas.SeriesOut(device_id=k.device_id, property=k.property, points=[(p.ts, p.value) for p in v])
            for k, v in sorted(result.series.items())
        ],
    )


@telemetry.get("/telemetry/rejects", response_model=Page[schemas.RejectOut], summary="Latest rejected telemetry")
def list_rejects(
    device_id: str | None = Query(None, max_length=64),
    reason: str | None = Query(None, max_length=32),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[schemas.RejectOut]:
    stmt = select(TelemetryReject).order_by(TelemetryReject.at.desc(), TelemetryReject.id)
    if device_id:
        stmt = stmt.where(TelemetryReject.device_id == device_id)
    if reason:
        stmt = stmt.where(TelemetryReject.reason == reason)
    rows, total = paginate(s, stmt, params)
    return Page(
        items=[schemas.RejectOut.model_validate(r) for r in rows], total=total, limit=params.limit, offset=params.offset
    )


@telemetry.get(
    "/telemetry/reject-counts",
    response_model=Page[schemas.RejectCountOut],
    summary="Rejected telemetry counted per device and reason",
)
def list_reject_counts(
    params: PageParams = Depends(page_params),
    _: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[schemas.RejectCountOut]:
    stmt = select(RejectCount).order_by(RejectCount.count.desc(), RejectCount.id)
    rows, total = paginate(s, stmt, params)
    return Page(
        items=[schemas.RejectCountOut.model_validate(r) for r in rows],
        total=total,
        limit=params.limit,
        offset=params.offset,
    )


def _retention_out(row: TelemetryRetention | None, platform: retention.Days) -> schemas.RetentionOut:
    own = retention.own_days(row)
    kept = retention.effective_days(own, platform)
    raw, minute, hour = Resolution.RAW, Resolution.MINUTE, Resolution.HOUR
    return schemas.RetentionOut(
        raw_days=kept[raw],
        rollup_1m_days=kept[minute],
        rollup_1h_days=kept[hour],
        own_raw_days=own[raw],
        own_rollup_1m_days=own[minute],
        own_rollup_1h_days=own[hour],
        platform_raw_days=platform[raw],
        platform_rollup_1m_days=platform[minute],
        platform_rollup_1h_days=platform[hour],
        own=kept != platform,
        updated_by=row.updated_by if row else "",
        updated_at=row.updated_at if row else None,
        swept_at=row.swept_at if row else None,
    )


def _platform_days(request: Request) -> retention.Days:
    return retention.platform_days(request.app.state.platform.settings.timeseries)


@telemetry.get(
    "/telemetry/retention",
    response_model=schemas.RetentionOut,
    summary="How long this factory's telemetry is kept, and the platform's maximum",
)
def get_retention(
    request: Request,
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RetentionOut:
    return _retention_out(retention.load(s), _platform_days(request))


@telemetry.put(
    "/telemetry/retention",
    response_model=schemas.RetentionOut,
    summary="Keep this factory's telemetry less long than the platform does (super admin)",
)
def set_retention(
    body: schemas.RetentionUpdate,
    request: Request,
    principal: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RetentionOut:
    platform = _platform_days(request)
    given = (body.raw_days, body.rollup_1m_days, body.rollup_1h_days)
    own = dict.fromkeys(Resolution) if body.reset else dict(zip(Resolution, given, strict=True))
    problems = retention.check(own, platform)
    if problems:
        first = problems[0]["message"]
        raise ApiError(422, "bad_retention", f"{first[0].upper()}{first[1:]}.", details=problems)
    row = retention.load(s)
    before = retention.own_days(row)
    if row is None or before != own:
        row = retention.save(s, own, principal.email)
        audit(
            s,
            "retention_changed",
            principal,
            "factory",
            factory_of(principal),
            client_ip(request),
            before={retention.FIELDS[r]: before[r] for r in Resolution},
            after={retention.FIELDS[r]: own[r] for r in Resolution},
            platform={retention.FIELDS[r]: platform[r] for r in Resolution},
        )
        s.commit()  # saved before the store hears of it; if the store cannot take it now, the sweep retries
        store: TimeseriesStore | None = request.app.state.platform.timeseries
        if store is not None:
            retention.hand_to_store(store, factory_of(principal), own, platform)
    return _retention_out(row, platform)


routers = [telemetry]
