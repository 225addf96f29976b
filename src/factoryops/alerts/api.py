"""Routes of alerts: list with filters and counts, one alert with its timeline, acknowledge and
resolve (one or many), gated by the alerts permission."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factoryops.alerts import service
from factoryops.alerts.models import Alert, AlertEvent, AlertState
from factoryops.core.errors import ApiError, not_found
from factoryops.core.moments import Moment
from factoryops.core.pagination import Page, PageParams, page_params, paginate
from factoryops.core.text import Text
from factoryops.tenancy.deps import client_ip, factory_db, factory_user, require_permission
from factoryops.tenancy.service import Principal, audit

alerts = APIRouter(prefix="/alerts", tags=["alerts"])
can_handle_alerts = require_permission("alerts")


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    rule_id: str
    rule_name: str
    device_id: str
    severity: str
    state: str
    trigger_values: dict[str, Any]
    clear_values: dict[str, Any]
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str
    resolved_at: datetime | None
    resolved_by: str
    resolution_note: str


class AlertEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    kind: str
    actor: str
    note: str
    values: dict[str, Any]


class AlertDetail(AlertOut):
    timeline: list[AlertEventOut]


class AlertCounts(BaseModel):
    by_state: dict[str, int]
    open_by_severity: dict[str, int]


class AlertAction(BaseModel):
    note: Text = Field("", max_length=2000)


class BulkAction(BaseModel):
    ids: list[str] = Field(..., min_length=1, max_length=500)
    action: Literal["acknowledge", "resolve"]
    note: Text = Field("", max_length=2000)


class BulkResult(BaseModel):
    changed: list[str]
    unchanged: list[dict[str, str]]


@alerts.get("", response_model=Page[AlertOut], summary="The factory's alerts, filtered")
def list_alerts(
    state: Literal["open", "acknowledged", "resolved", "unresolved"] | None = Query(None),
    severity: Literal["info", "warning", "critical"] | None = Query(None),
    device_id: str | None = Query(None, max_length=64),
    rule_id: str | None = Query(None, max_length=36),
    since: Moment | None = Query(None, description="Opened at or after (ISO 8601)."),
    until: Moment | None = Query(None, description="Opened before (ISO 8601)."),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[AlertOut]:
    stmt = select(Alert).order_by(Alert.opened_at.desc(), Alert.id)
    if state == "unresolved":
        stmt = stmt.where(Alert.state != AlertState.resolved)
    elif state:
        stmt = stmt.where(Alert.state == state)
    for column, value in ((Alert.severity, severity), (Alert.device_id, device_id), (Alert.rule_id, rule_id)):
        if value:
            stmt = stmt.where(column == value)
    if since:
        stmt = stmt.where(Alert.opened_at >= since)
    if until:
        stmt = stmt.where(Alert.opened_at < until)
    rows, total = paginate(s, stmt, params)
    return Page(items=[AlertOut.model_validate(a) for a in rows], total=total, limit=params.limit, offset=params.offset)


@alerts.get("/counts", response_model=AlertCounts, summary="How many alerts per state, and open ones per severity")
def alert_counts(
    _: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> AlertCounts:
    by_state = {str(k): int(v) for k, v in s.execute(select(Alert.state, func.count(Alert.id)).group_by(Alert.state))}
    open_by_severity = {
        str(k): int(v)
        for k, v in s.execute(
            select(Alert.severity, func.count(Alert.id))
            .where(Alert.state != AlertState.resolved)
            .group_by(Alert.severity)
        )
    }
    return AlertCounts(by_state=by_state, open_by_severity=open_by_severity)


def _get(s: Session, alert_id: str) -> Alert:
    alert = s.get(Alert, alert_id)
    if alert is None:
        raise not_found("alert")
    return alert


def _detail(s: Session, alert: Alert) -> AlertDetail:
    events = s.execute(select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.at)).scalars()
    return AlertDetail(
        **AlertOut.model_validate(alert).model_dump(), timeline=[AlertEventOut.model_validate(e) for e in events]
    )


@alerts.get("/{alert_id}", response_model=AlertDetail, summary="One alert with its timeline")
def get_alert(
    alert_id: str, _: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> AlertDetail:
    return _detail(s, _get(s, alert_id))


def _apply(s: Session, alert: Alert, action: str, principal: Principal, note: str) -> str | None:
    """Moves one alert on behalf of the person; returns why not when it cannot move."""
    return service.apply(s, alert, action, principal.email, note)


@alerts.post("/{alert_id}/acknowledge", response_model=AlertDetail, summary="Acknowledge an alert")
def acknowledge(
    alert_id: str,
    body: AlertAction,
    request: Request,
    principal: Principal = Depends(can_handle_alerts),
    s: Session = Depends(factory_db, scope="function"),
) -> AlertDetail:
    alert = _get(s, alert_id)
    problem = _apply(s, alert, "acknowledge", principal, body.note)
    if problem:
        raise ApiError(409, "alert_state", f"The alert is {problem}.")
    audit(s, "alert_acknowledged", principal, "alert", alert.id, client_ip(request))
    s.flush()
    return _detail(s, alert)


@alerts.post("/{alert_id}/resolve", response_model=AlertDetail, summary="Resolve an alert, with a note")
def resolve(
    alert_id: str,
    body: AlertAction,
    request: Request,
    principal: Principal = Depends(can_handle_alerts),
    s: Session = Depends(factory_db, scope="function"),
) -> AlertDetail:
    alert = _get(s, alert_id)
    problem = _apply(s, alert, "resolve", principal, body.note)
    if problem:
        raise ApiError(409, "alert_state", f"The alert is {problem}.")
    audit(s, "alert_resolved", principal, "alert", alert.id, client_ip(request), note=body.note)
    s.flush()
    return _detail(s, alert)


@alerts.post("/bulk", response_model=BulkResult, summary="Acknowledge or resolve many alerts")
def bulk(
    body: BulkAction,
    request: Request,
    principal: Principal = Depends(can_handle_alerts),
    s: Session = Depends(factory_db, scope="function"),
) -> BulkResult:
    found = {a.id: a for a in s.execute(select(Alert).where(Alert.id.in_(body.ids))).scalars()}
    changed: list[str] = []
    unchanged: list[dict[str, str]] = []
    for alert_id in dict.fromkeys(body.ids):
        alert = found.get(alert_id)
        problem = "not found" if alert is None else _apply(s, alert, body.action, principal, body.note)
        if problem:
            unchanged.append({"id": alert_id, "reason": problem})
        else:
            changed.append(alert_id)
    if changed:
        audit(s, f"alerts_bulk_{body.action}", principal, "alert", "", client_ip(request), ids=changed)
    return BulkResult(changed=changed, unchanged=unchanged)


routers = [alerts]
