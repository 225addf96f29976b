"""Routes of reports: settings (tariff, CO2, shifts), requests, history, download, schedules.

Reading the history needs a factory sign-in; requesting, retrying and downloading need the
reports permission (spec 9: downloadable only by the factory's users with that permission);
settings and schedules are the super admin's.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.core.db import utcnow
from factoryops.core.errors import ApiError, not_found
from factoryops.core.moments import AwareMoment
from factoryops.core.pagination import Page, PageParams, page_params, paginate
from factoryops.core.text import Line
from factoryops.devices.service import require_devices
from factoryops.jobs.queue import JobQueue
from factoryops.ports.objectstore.base import Key, ObjectStoreError
from factoryops.ports.timeseries.base import FactoryScope
from factoryops.reports.content import SECTIONS
from factoryops.reports.models import Report, ReportSchedule, ReportSettings
from factoryops.reports.service import CADENCES, FORMATS, ReportService, factory_zone, next_run, resolve_params
from factoryops.tenancy.deps import factory_db, factory_of, factory_user, require_permission
from factoryops.tenancy.service import Principal
from factoryops.wiring import Platform

reports = APIRouter(prefix="/reports", tags=["reports"])
can_report = require_permission("reports")
Format = Literal["pdf", "xlsx", "json"]
Preset = Literal["yesterday", "last_7_days", "last_week", "this_month", "last_month", "custom"]
Section = Literal["energy", "properties", "alerts", "analytics"]
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def service(request: Request) -> ReportService:
    platform: Platform = request.app.state.platform
    return ReportService(platform.db, platform.timeseries, platform.objects, platform.settings.notifications)


# ---------------------------------------------------------------------- settings
class Band(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Line = Field(..., min_length=1, max_length=40)
    price: float = Field(..., ge=0)
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5, 6], description="0 = Monday")
    start: str = Field(..., description="HH:MM, local time")
    end: str = Field(..., description="HH:MM, local time; before start means across midnight")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not HHMM.match(value):
            raise ValueError("use HH:MM (00:00-23:59)")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if not value or any(d < 0 or d > 6 for d in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday), at least one")
        return sorted(set(value))


class Tariff(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["none", "flat", "time_of_use"] = "none"
    flat_price: float | None = Field(None, ge=0, description="Price per kWh (flat).")
    default_price: float | None = Field(None, ge=0, description="Price per kWh outside every band (time of use).")
    bands: list[Band] = Field(default_factory=list, max_length=20)


class Shift(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Line = Field(..., min_length=1, max_length=40)
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not HHMM.match(value):
            raise ValueError("use HH:MM (00:00-23:59)")
        return value


class ReportSettingsIO(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: str = Field("EUR", min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")
    tariff: Tariff = Field(default_factory=Tariff)
    emission_factor_kg_per_kwh: float | None = Field(None, ge=0, le=5, description="kg CO2 per kWh.")
    shifts: list[Shift] = Field(default_factory=list, max_length=6, description="Empty: 06-14, 14-22, 22-06.")


@reports.get("/settings", response_model=ReportSettingsIO, summary="Tariff, CO2 factor and shifts used by reports")
def get_settings(
    _: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> ReportSettingsIO:
    row = s.execute(select(ReportSettings)).scalar_one_or_none()
    if row is None:
        return ReportSettingsIO()
    return ReportSettingsIO(
        currency=row.currency,
        tariff=Tariff.model_validate(row.tariff or {}),
        emission_factor_kg_per_kwh=row.emission_factor_kg_per_kwh,
        shifts=[Shift.model_validate(x) for x in row.shifts or []],
    )


@reports.put(
    "/settings", response_model=ReportSettingsIO, summary="Set the tariff, CO2 factor and shifts (reports permission)"
)
def put_settings(
    body: ReportSettingsIO,
    principal: Principal = Depends(can_report),
    s: Session = Depends(factory_db, scope="function"),
) -> ReportSettingsIO:
    if body.tariff.kind == "flat" and body.tariff.flat_price is None:
        raise ApiError(422, "invalid_tariff", "a flat tariff needs flat_price")
    if body.tariff.kind == "time_of_use" and (not body.tariff.bands or body.tariff.default_price is None):
        raise ApiError(422, "invalid_tariff", "a time-of-use tariff needs bands and a default_price")
    row = s.execute(select(ReportSettings)).scalar_one_or_none()
    if row is None:
        row = ReportSettings()
        s.add(row)
    row.currency = body.currency
    row.tariff = body.tariff.model_dump()
    row.emission_factor_kg_per_kwh = body.emission_factor_kg_per_kwh
    row.shifts = [x.model_dump() for x in body.shifts]
    row.updated_by = principal.email
    row.updated_at = utcnow()
    return body


# ---------------------------------------------------------------------- reports
class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Line = Field("Energy report", min_length=1, max_length=200)
    format: Format = "pdf"
    preset: Preset = "last_7_days"
    start: AwareMoment | None = Field(None, description="For preset custom.")
    end: AwareMoment | None = Field(None, description="For preset custom.")
    devices: list[str] | None = Field(None, max_length=20_000, description="Omit for every device.")
    sections: list[Section] = Field(default_factory=lambda: list(SECTIONS), min_length=1)  # type: ignore[arg-type]
    properties: list[str] = Field(default_factory=list, max_length=50, description="For the properties section.")


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    title: str
    format: str
    params: dict[str, Any]
    state: str
    progress: int = 0
    message: str = ""
    job_id: str
    schedule_id: str
    content_hash: str
    size_bytes: int
    summary: dict[str, Any]
    error: str
    emailed_to: list[str]
    created_by: str
    created_at: datetime
    finished_at: datetime | None


def _out(s: Session, svc: ReportService, report: Report) -> ReportOut:
    state, job = svc.state_of(s, report)
    data = {name: getattr(report, name) for name in ReportOut.model_fields if hasattr(report, name)}
    progress = 100 if state == "succeeded" else (job.progress if job else 0)
    data.update(state=state, progress=progress, message=job.message if job else "")
    return ReportOut.model_validate(data)


def _check_devices(s: Session, devices: list[str] | None) -> None:
    if devices is not None:
        require_devices(s, devices)


@reports.get("", response_model=Page[ReportOut], summary="The factory's reports, newest first")
def list_reports(
    request: Request,
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[ReportOut]:
    svc = service(request)
    rows, total = paginate(s, select(Report).order_by(Report.created_at.desc(), Report.id), params)
    return Page(items=[_out(s, svc, r) for r in rows], total=total, limit=params.limit, offset=params.offset)


@reports.post("", response_model=ReportOut, status_code=202, summary="Request a report (a job)")
def create_report(
    body: ReportIn,
    request: Request,
    principal: Principal = Depends(can_report),
    s: Session = Depends(factory_db, scope="function"),
) -> ReportOut:
    _check_devices(s, body.devices)
    params = resolve_params(s, factory_of(principal), body.model_dump())
    svc = service(request)
    report = svc.request(s, JobQueue(svc.db), body.title, body.format, params, principal.email)
    s.flush()
    return _out(s, svc, report)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Line = Field(..., min_length=1, max_length=200)
    cadence: Literal["daily", "weekly", "monthly"]
    format: Format = "pdf"
    recipients: list[EmailStr] = Field(..., min_length=1, max_length=50, examples=[["director@plant.example"]])
    devices: list[str] | None = None
    sections: list[Section] = Field(default_factory=lambda: list(SECTIONS), min_length=1)  # type: ignore[arg-type]
    properties: list[str] = Field(default_factory=list, max_length=50)
    enabled: bool = True


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    cadence: str
    format: str
    params: dict[str, Any]
    recipients: list[str]
    enabled: bool
    next_run_at: datetime
    last_run_at: datetime | None
    last_report_id: str
    created_by: str
    created_at: datetime


@reports.get("/schedules", response_model=list[ScheduleOut], summary="Scheduled reports")
def list_schedules(
    _: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> list[ScheduleOut]:
    rows = s.execute(select(ReportSchedule).order_by(ReportSchedule.created_at)).scalars()
    return [ScheduleOut.model_validate(r) for r in rows]


def _schedule_fields(row: ReportSchedule, body: ScheduleIn, s: Session, factory_id: str) -> None:
    row.name = body.name
    row.cadence = body.cadence
    row.format = body.format
    row.recipients = [str(r) for r in body.recipients]
    row.params = {"devices": body.devices, "sections": list(body.sections), "properties": body.properties}
    row.enabled = body.enabled
    row.next_run_at = next_run(body.cadence, factory_zone(s, factory_id), utcnow())


@reports.post(
    "/schedules", response_model=ScheduleOut, status_code=201, summary="Schedule a report (reports permission)"
)
def create_schedule(
    body: ScheduleIn, principal: Principal = Depends(can_report), s: Session = Depends(factory_db, scope="function")
) -> ScheduleOut:
    _check_devices(s, body.devices)
    row = ReportSchedule(created_by=principal.email)
    _schedule_fields(row, body, s, factory_of(principal))
    s.add(row)
    s.flush()
    return ScheduleOut.model_validate(row)


def _schedule(s: Session, schedule_id: str) -> ReportSchedule:
    row = s.get(ReportSchedule, schedule_id)
    if row is None:
        raise not_found("schedule")
    return row


@reports.put("/schedules/{schedule_id}", response_model=ScheduleOut, summary="Change a schedule (reports permission)")
def update_schedule(
    schedule_id: str,
    body: ScheduleIn,
    principal: Principal = Depends(can_report),
    s: Session = Depends(factory_db, scope="function"),
) -> ScheduleOut:
    row = _schedule(s, schedule_id)
    _check_devices(s, body.devices)
    _schedule_fields(row, body, s, factory_of(principal))
    return ScheduleOut.model_validate(row)


@reports.delete("/schedules/{schedule_id}", status_code=204, summary="Delete a schedule (reports permission)")
def delete_schedule(
    schedule_id: str, _: Principal = Depends(can_report), s: Session = Depends(factory_db, scope="function")
) -> Response:
    s.delete(_schedule(s, schedule_id))
    return Response(status_code=204)


@reports.post(
    "/schedules/{schedule_id}/run",
    response_model=ReportOut,
    status_code=202,
    summary="Run a schedule now (reports permission)",
)
def run_schedule_now(
    schedule_id: str,
    request: Request,
    principal: Principal = Depends(can_report),
    s: Session = Depends(factory_db, scope="function"),
) -> ReportOut:
    row = _schedule(s, schedule_id)
    params = resolve_params(s, factory_of(principal), {**row.params, "preset": CADENCES[row.cadence]})
    svc = service(request)
    report = svc.request(s, JobQueue(svc.db), row.name, row.format, params, principal.email, schedule_id=row.id)
    row.last_report_id = report.id
    row.last_run_at = utcnow()
    s.flush()
    return _out(s, svc, report)


@reports.get("/{report_id}", response_model=ReportOut, summary="One report, with its live progress")
def get_report(
    report_id: str,
    request: Request,
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> ReportOut:
    svc = service(request)
    return _out(s, svc, svc.get(s, report_id))


@reports.get(
    "/{report_id}/download",
    summary="The report's file (every user reads; making reports needs the reports permission)",
    response_class=Response,
    responses={200: {"description": "The report's file", "content": {mime: {} for mime, _ in FORMATS.values()}}},
)
def download_report(
    report_id: str,
    request: Request,
    principal: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Response:
    svc = service(request)
    report = svc.get(s, report_id)
    if report.state != "succeeded" or not report.object_key or svc.objects is None:
        raise ApiError(409, "report_not_ready", f"The report is {report.state}, not ready.")
    key = Key.parse(report.object_key)
    try:
        data = svc.objects.get_bytes(FactoryScope(factory_of(principal)), key)
    except ObjectStoreError as exc:
        raise ApiError(503, "object_store_unavailable", f"The object store cannot be reached: {exc}") from exc
    return Response(
        data,
        media_type=FORMATS[report.format][0],
        headers={"Content-Disposition": f'attachment; filename="{key.name}"', "X-Content-SHA256": report.content_hash},
    )


@reports.post("/{report_id}/retry", response_model=ReportOut, summary="Generate a failed report again")
def retry_report(
    report_id: str,
    request: Request,
    _: Principal = Depends(can_report),
    s: Session = Depends(factory_db, scope="function"),
) -> ReportOut:
    svc = service(request)
    report = svc.retry(s, JobQueue(svc.db), report_id)
    s.flush()
    return _out(s, svc, report)


routers = [reports]
