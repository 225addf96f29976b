"""Routes: the factory's jobs, their live progress, cancel and retry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.core.errors import ApiError
from factoryops.core.pagination import Page, PageParams, page_params, paginate
from factoryops.jobs.models import Job
from factoryops.jobs.queue import JobQueue
from factoryops.tenancy.deps import client_ip, factory_db, factory_user
from factoryops.tenancy.models import ALL_PERMISSIONS
from factoryops.tenancy.service import Principal, audit

jobs = APIRouter(prefix="/jobs", tags=["jobs"])


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    kind: str
    state: str
    progress: int
    message: str
    error: str
    attempts: int
    max_attempts: int
    result: dict[str, Any]
    created_by: str
    created_at: datetime
    run_after: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _queue(request: Request) -> JobQueue:
    return JobQueue(request.app.state.platform.db)


def _may_manage(principal: Principal, job: Job) -> None:
    """Cancel and retry need the permission of the job's area (``analytics.run`` -> analytics)."""
    area = job.kind.split(".", 1)[0]
    needed = area if area in ALL_PERMISSIONS else None
    if (needed is None and not principal.is_super_admin) or (needed is not None and not principal.can(needed)):
        raise ApiError(403, "forbidden", f"Managing {job.kind} jobs needs the '{needed or 'super admin'}' permission.")


@jobs.get("", response_model=Page[JobOut], summary="The factory's jobs")
def list_jobs(
    state: str | None = Query(None, max_length=16),
    kind: str | None = Query(None, max_length=64),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[JobOut]:
    stmt = select(Job).order_by(Job.created_at.desc(), Job.id)
    if state:
        stmt = stmt.where(Job.state == state)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    rows, total = paginate(s, stmt, params)
    return Page(items=[JobOut.model_validate(j) for j in rows], total=total, limit=params.limit, offset=params.offset)


@jobs.get("/{job_id}", response_model=JobOut, summary="One job, with its progress")
def get_job(
    job_id: str,
    request: Request,
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> JobOut:
    return JobOut.model_validate(_queue(request).get(s, job_id))


@jobs.post("/{job_id}/cancel", response_model=JobOut, summary="Cancel a queued or running job")
def cancel_job(
    job_id: str,
    request: Request,
    principal: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> JobOut:
    queue = _queue(request)
    _may_manage(principal, queue.get(s, job_id))
    job = queue.cancel(s, job_id)
    audit(s, "job_cancelled", principal, "job", job.id, client_ip(request), kind=job.kind)
    return JobOut.model_validate(job)


@jobs.post("/{job_id}/retry", response_model=JobOut, summary="Run a failed or cancelled job again")
def retry_job(
    job_id: str,
    request: Request,
    principal: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> JobOut:
    queue = _queue(request)
    _may_manage(principal, queue.get(s, job_id))
    job = queue.retry(s, job_id)
    audit(s, "job_retried", principal, "job", job.id, client_ip(request), kind=job.kind)
    return JobOut.model_validate(job)


routers = [jobs]
