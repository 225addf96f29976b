"""Routes: the delivery log of alert notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.core.pagination import Page, PageParams, page_params, paginate
from factoryops.notifications.models import Delivery
from factoryops.tenancy.deps import factory_db, factory_user
from factoryops.tenancy.service import Principal

notifications = APIRouter(prefix="/notifications", tags=["notifications"])


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    alert_id: str
    event: str
    channel: str
    recipient: str
    state: str
    attempts: int
    error: str
    created_at: datetime
    sent_at: datetime | None


@notifications.get("/deliveries", response_model=Page[DeliveryOut], summary="The notification delivery log")
def list_deliveries(
    state: Literal["pending", "sent", "failed"] | None = Query(None),
    alert_id: str | None = Query(None, max_length=36),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[DeliveryOut]:
    stmt = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id)
    if state:
        stmt = stmt.where(Delivery.state == state)
    if alert_id:
        stmt = stmt.where(Delivery.alert_id == alert_id)
    rows, total = paginate(s, stmt, params)
    return Page(
        items=[DeliveryOut.model_validate(d) for d in rows], total=total, limit=params.limit, offset=params.offset
    )


routers = [notifications]
