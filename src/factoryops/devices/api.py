"""Routes of the device registry and the property vocabulary."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy.orm import Session

from factoryops.core.pagination import Page, PageParams, page_params
from factoryops.devices import schemas
from factoryops.devices.service import DeviceService, device_out
from factoryops.tenancy.deps import client_ip, factory_db, factory_user, require_permission, super_admin
from factoryops.tenancy.service import Principal

devices = APIRouter(prefix="/devices", tags=["devices"])
properties = APIRouter(prefix="/properties", tags=["properties"])
service = DeviceService()
can_write_devices = require_permission("devices")


@devices.get("", response_model=Page[schemas.DeviceOut], summary="The factory's devices (search, filter, pages)")
def list_devices(
    q: str | None = Query(None, max_length=200, description="Search in id, name, type and location."),
    status: Literal["online", "offline", "never_seen", "disabled"] | None = Query(
        None, description="online: last seen within the device's online window (online_window_seconds)."
    ),
    type: str | None = Query(None, max_length=100, description="Only devices of this type."),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[schemas.DeviceOut]:
    items, total = service.search(s, params, q, status, type)
    return Page(items=items, total=total, limit=params.limit, offset=params.offset)


@devices.get("/summary", response_model=schemas.DeviceSummary, summary="Device counts by status")
def device_summary(
    _: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> schemas.DeviceSummary:
    return service.summary(s)


@devices.post("", response_model=schemas.DeviceCreated, status_code=201, summary="Register a device")
def create_device(
    body: schemas.DeviceCreate,
    request: Request,
    principal: Principal = Depends(can_write_devices),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.DeviceCreated:
    return service.create(s, principal, body, client_ip(request))


@devices.post("/import", response_model=schemas.ImportResult, summary="Register or update devices from CSV")
def import_devices(
    request: Request,
    body: str = Body(
        ...,
        media_type="text/csv",
        description=(
            "CSV with a header line: device_id (required), name, type, location, report_interval_seconds "
            "(how often the device reports; empty: unknown for a new device, unchanged for a known one)."
        ),
        examples=[
            "device_id,name,type,location,report_interval_seconds\n"
            "press-07,Press 7,hydraulic-press,Hall B,\nmeter-12,Meter 12,energy-meter,Hall B,900\n"
        ],
    ),
    principal: Principal = Depends(can_write_devices),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.ImportResult:
    return service.import_csv(s, principal, body, client_ip(request))


@devices.get("/{device_id}", response_model=schemas.DeviceOut, summary="One device")
def get_device(
    device_id: str, _: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> schemas.DeviceOut:
    return device_out(service.get(s, device_id))


@devices.patch("/{device_id}", response_model=schemas.DeviceOut, summary="Change a device's attributes")
def update_device(
    device_id: str,
    body: schemas.DeviceUpdate,
    request: Request,
    principal: Principal = Depends(can_write_devices),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.DeviceOut:
    return service.update(s, principal, device_id, body, client_ip(request))


@devices.post(
    "/{device_id}/rotate-credentials",
    response_model=schemas.DeviceCreated,
    summary="Issue a new MQTT password (shown once)",
)
def rotate_credentials(
    device_id: str,
    request: Request,
    principal: Principal = Depends(can_write_devices),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.DeviceCreated:
    return service.rotate_credentials(s, principal, device_id, client_ip(request))


@devices.get("/{device_id}/properties", response_model=list[schemas.DevicePropertyOut], summary="What a device reports")
def list_device_properties(
    device_id: str, _: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> list[schemas.DevicePropertyOut]:
    return [schemas.DevicePropertyOut.model_validate(p) for p in service.device_properties(s, device_id)]


@properties.get("", response_model=Page[schemas.PropertyOut], summary="The factory's property vocabulary")
def list_properties(
    q: str | None = Query(None, max_length=200),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[schemas.PropertyOut]:
    rows, total = service.list_properties(s, params, q)
    return Page(
        items=[schemas.PropertyOut.model_validate(p) for p in rows],
        total=total,
        limit=params.limit,
        offset=params.offset,
    )


@properties.patch("/{property_name}", response_model=schemas.PropertyOut, summary="Set display name, unit, kind")
def update_property(
    property_name: str,
    body: schemas.PropertyUpdate,
    request: Request,
    principal: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.PropertyOut:
    return schemas.PropertyOut.model_validate(
        service.update_property(s, principal, property_name, body, client_ip(request))
    )


routers = [devices, properties]
