"""Routes: the delivery log, the signed-in user's notification preferences, and system alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factoryops.core.db import utcnow
from factoryops.core.pagination import Page, PageParams, page_params, paginate
from factoryops.notifications.models import Delivery, NotificationPreference, SystemAlert
from factoryops.rules.definition import E164, TIME_RE
from factoryops.tenancy.deps import factory_db, factory_user, platform_root, tenancy
from factoryops.tenancy.models import Factory
from factoryops.tenancy.service import Principal

notifications = APIRouter(prefix="/notifications", tags=["notifications"])
me = APIRouter(prefix="/me", tags=["notifications"])
system = APIRouter(prefix="/system-alerts", tags=["system alerts"])
root = APIRouter(prefix="/root", tags=["system alerts"])


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    alert_id: str = Field(..., description="The alert; for event 'system', the system alert.")
    event: str = Field(..., description="opened, resolved, reminder, digest or system.")
    channel: str
    recipient: str
    state: str = Field(..., description="queued, sent, failed or suppressed (flood cap).")
    attempts: int
    error: str
    created_at: datetime
    sent_at: datetime | None


@notifications.get("/deliveries", response_model=Page[DeliveryOut], summary="The notification delivery log")
def list_deliveries(
    state: Literal["queued", "sent", "failed", "suppressed"] | None = Query(None),
    event: Literal["opened", "resolved", "reminder", "digest", "system"] | None = Query(None),
    alert_id: str | None = Query(None, max_length=36),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[DeliveryOut]:
    stmt = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id)
    if state:
        stmt = stmt.where(Delivery.state == state)
    if event:
        stmt = stmt.where(Delivery.event == event)
    if alert_id:
        stmt = stmt.where(Delivery.alert_id == alert_id)
    rows, total = paginate(s, stmt, params)
    return Page(
        items=[DeliveryOut.model_validate(d) for d in rows], total=total, limit=params.limit, offset=params.offset
    )


# ---------------------------------------------------------------------- preferences
class QuietHours(BaseModel):
    start: str = Field(..., description="HH:MM in the factory's time zone.", examples=["22:00"])
    end: str = Field(..., description="HH:MM; earlier than start means the quiet hours run past midnight.")

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        if not TIME_RE.match(value):
            raise ValueError(f"must be HH:MM (00:00-23:59), not {value!r}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: the quiet hours would be empty")
        return self


class NotificationPreferences(BaseModel):
    email: bool = Field(True, description="Email to the account's address.")
    whatsapp: bool = Field(False, description="WhatsApp to whatsapp_number.")
    whatsapp_number: str | None = Field(
        None, description="E.164, e.g. +4915112345678; needed when whatsapp is on.", validate_default=True
    )
    min_severity: Literal["info", "warning", "critical"] = Field(
        "info", description="Alerts below this severity are not sent to you."
    )
    quiet_hours: QuietHours | None = Field(
        None, description="No notifications in this window except critical ones; the rest come when it ends."
    )

    @field_validator("whatsapp_number")
    @classmethod
    def _number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            value = value.strip() or None
        if value is not None and not E164.match(value):
            raise ValueError(f"the number must be E.164 like +4915112345678, not {value!r}")
        if value is None and info.data.get("whatsapp"):
            raise ValueError("WhatsApp is on: give the number to send to")
        return value


def _out(row: NotificationPreference | None) -> NotificationPreferences:
    if row is None:
        return NotificationPreferences()
    quiet = QuietHours(start=row.quiet_start, end=row.quiet_end) if row.quiet_start and row.quiet_end else None
    return NotificationPreferences.model_construct(
        email=row.email,
        whatsapp=row.whatsapp,
        whatsapp_number=row.whatsapp_number,
        min_severity=row.min_severity,  # type: ignore[arg-type]
        quiet_hours=quiet,
    )


def _mine(s: Session, principal: Principal) -> NotificationPreference | None:
    return s.execute(
        select(NotificationPreference).where(NotificationPreference.user_id == principal.id)
    ).scalar_one_or_none()


@me.get("/notification-preferences", response_model=NotificationPreferences, summary="My notification preferences")
def get_preferences(
    principal: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> NotificationPreferences:
    return _out(_mine(s, principal))


@me.put(
    "/notification-preferences", response_model=NotificationPreferences, summary="Change my notification preferences"
)
def put_preferences(
    body: NotificationPreferences,
    principal: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> NotificationPreferences:
    row = _mine(s, principal)
    if row is None:
        row = NotificationPreference(user_id=principal.id)
        s.add(row)
    row.email = body.email
    row.whatsapp = body.whatsapp
    row.whatsapp_number = body.whatsapp_number
    row.min_severity = body.min_severity
    row.quiet_start = body.quiet_hours.start if body.quiet_hours else None
    row.quiet_end = body.quiet_hours.end if body.quiet_hours else None
    row.updated_at = utcnow()
    s.flush()
    return _out(row)


# ---------------------------------------------------------------------- system alerts
class SystemAlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    kind: Literal["timeseries_down", "registration_failing", "channel_failing", "objectstore_down", "property_limit"]
    message: str
    state: Literal["open", "resolved"]
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    occurrences: int


class RootSystemAlertOut(SystemAlertOut):
    factory_id: str
    factory_name: str


@system.get("", response_model=Page[SystemAlertOut], summary="The factory's system-health alerts (every user reads)")
def list_system_alerts(
    state: Literal["open", "resolved"] | None = Query(None),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[SystemAlertOut]:
    stmt = select(SystemAlert).order_by(SystemAlert.opened_at.desc(), SystemAlert.id)
    if state:
        stmt = stmt.where(SystemAlert.state == state)
    rows, total = paginate(s, stmt, params)
    return Page(
        items=[SystemAlertOut.model_validate(a) for a in rows], total=total, limit=params.limit, offset=params.offset
    )


@root.get(
    "/system-alerts", response_model=Page[RootSystemAlertOut], summary="System-health alerts of every factory (root)"
)
def list_all_system_alerts(
    request: Request,
    state: Literal["open", "resolved"] | None = Query(None),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(platform_root),
) -> Page[RootSystemAlertOut]:
    with tenancy(request).db.unscoped_session() as s:  # the platform root sees every factory's system alerts
        stmt = select(SystemAlert, Factory.name).join(Factory, Factory.id == SystemAlert.factory_id)
        count = select(func.count(SystemAlert.id))
        if state:
            stmt = stmt.where(SystemAlert.state == state)
            count = count.where(SystemAlert.state == state)
        total = s.execute(count).scalar_one()
        rows = s.execute(
            stmt.order_by(SystemAlert.opened_at.desc(), SystemAlert.id).limit(params.limit).offset(params.offset)
        ).all()
        items = [
            RootSystemAlertOut(
                **SystemAlertOut.model_validate(alert).model_dump(), factory_id=alert.factory_id, factory_name=name
            )
            for alert, name in rows
        ]
    return Page(items=items, total=int(total), limit=params.limit, offset=params.offset)


routers = [notifications, me, system, root]
