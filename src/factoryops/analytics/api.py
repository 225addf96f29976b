"""Routes of analytics: datasets, runs, the model registry. Writes need the analytics permission.

Starting work (an export, a run, a scoring run) first checks that the object store answers: when
it does not, analytics refuses to start with a 503 and a system-health alert the factory's super
admins see (spec 10.5), while telemetry and rules carry on (they never touch the object store).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.analytics import ml, schemas
from factoryops.analytics.datasets import DatasetService, ExportRequest, preview, resolve_request
from factoryops.analytics.models import Dataset, ModelVersion, Run
from factoryops.analytics.runs import RunRequest, RunService
from factoryops.core.errors import ApiError, not_found
from factoryops.core.pagination import Page, PageParams, page_params, paginate
from factoryops.jobs.queue import JobQueue
from factoryops.notifications import system_alerts
from factoryops.ports.objectstore.base import Key, ObjectStoreError
from factoryops.ports.timeseries.base import FactoryScope
from factoryops.tenancy.deps import factory_db, factory_of, factory_user, require_permission
from factoryops.tenancy.service import Principal
from factoryops.wiring import Platform

log = logging.getLogger(__name__)
analytics = APIRouter(prefix="/analytics", tags=["analytics"])
can_run = require_permission("analytics")
UNAVAILABLE = (
    "Analytics is paused: the object store that keeps datasets and models cannot be reached. "
    "Telemetry and rules are not affected. Try again once it is back; the platform's administrators "
    "see the cause in the system alerts."
)
PING_TTL = 5.0  # seconds the API trusts what it last learnt of the object store
_ping_lock = threading.Lock()
_ping_cache: dict[int, tuple[float, str | None]] = {}


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def services(platform: Platform) -> tuple[DatasetService, RunService]:
    datasets = DatasetService(platform.db, platform.timeseries, platform.objects)
    cache = platform.settings.data_dir / "cache" / "datasets"
    return datasets, RunService(platform.db, datasets, platform.objects, cache)


def object_store_problem(platform: Platform) -> str | None:
    """Why the object store cannot be used now, or None (remembered for a few seconds)."""
    if platform.objects is None:
        return "no object store is configured"
    key = id(platform.objects)
    now = time.monotonic()
    with _ping_lock:
        cached = _ping_cache.get(key)
    if cached is not None and now - cached[0] < PING_TTL:
        return cached[1]
    problem: str | None = None
    try:
        platform.objects.ping()
    except ObjectStoreError as exc:
        problem = str(exc)[:300] or type(exc).__name__
    with _ping_lock:
        _ping_cache[key] = (now, problem)
    return problem


def _unavailable(exc: Exception) -> ApiError:
    log.warning("object store unreachable while serving analytics: %s", exc)
    return ApiError(503, "object_store_unavailable", UNAVAILABLE)


def require_object_store(platform: Platform, factory_id: str) -> None:
    problem = object_store_problem(platform)
    if problem is None:
        system_alerts.resolve(factory_id, "objectstore_down")
        return
    # The cause (an address, a path) is for the administrators' system alert, not for every user.
    system_alerts.report(factory_id, "objectstore_down", f"The object store cannot be reached: {problem}")
    raise ApiError(503, "object_store_unavailable", UNAVAILABLE)


# ---------------------------------------------------------------------- status and catalogue
@analytics.get("/status", response_model=schemas.AnalyticsStatus, summary="Can analytics start work now?")
def status(request: Request, principal: Principal = Depends(factory_user)) -> schemas.AnalyticsStatus:
    problem = object_store_problem(_platform(request))
    if problem is None:
        return schemas.AnalyticsStatus(available=True, message="")
    return schemas.AnalyticsStatus(available=False, message=UNAVAILABLE)


@analytics.get("/catalogue", response_model=list[schemas.ModelInfoOut], summary="Analysis types and their models")
def catalogue(_: Principal = Depends(factory_user)) -> list[schemas.ModelInfoOut]:
    out = []
    for task, models in ml.MODELS.items():
        for name, info in models.items():
            params = [
                schemas.ParamOut(
                    name=pname,
                    type=str(getattr(p, "type", "")),
                    default=getattr(p, "default", None),
                    low=getattr(p, "low", None),
                    high=getattr(p, "high", None),
                    choices=list(getattr(p, "choices", None) or []) or None,
                    help=str(getattr(p, "help", "")),
                )
                for pname, p in info.params.items()
            ]
            out.append(
                schemas.ModelInfoOut(
                    name=name, task=task, title=info.title, description=info.description, params=params
                )
            )
    return out


# ---------------------------------------------------------------------- datasets
@analytics.get("/datasets", response_model=Page[schemas.DatasetOut], summary="The factory's datasets, newest first")
def list_datasets(
    q: str | None = Query(None, max_length=200),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[schemas.DatasetOut]:
    stmt = select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id)
    if q:
        stmt = stmt.where(Dataset.name.contains(q, autoescape=True))
    rows, total = paginate(s, stmt, params)
    return Page(
        items=[schemas.DatasetOut.model_validate(r) for r in rows],
        total=total,
        limit=params.limit,
        offset=params.offset,
    )


@analytics.post(
    "/datasets",
    response_model=schemas.DatasetRequested,
    status_code=202,
    summary="Export telemetry into an immutable dataset (a job), or reuse the snapshot of the same request",
)
def create_dataset(
    body: schemas.DatasetCreate,
    request: Request,
    principal: Principal = Depends(can_run),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.DatasetRequested:
    platform = _platform(request)
    export_request = resolve_request(
        s, body.device_ids, body.properties, body.start, body.end, body.resolution, body.aggregate
    )
    require_object_store(platform, factory_of(principal))
    datasets = services(platform)[0]
    dataset, started = datasets.request(s, JobQueue(platform.db), body.name, export_request, principal.email)
    s.flush()
    return schemas.DatasetRequested(dataset=schemas.DatasetOut.model_validate(dataset), reused=not started)


@analytics.get("/datasets/{dataset_id}", response_model=schemas.DatasetOut, summary="One dataset")
def get_dataset(
    dataset_id: str,
    request: Request,
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.DatasetOut:
    datasets = services(_platform(request))[0]
    return schemas.DatasetOut.model_validate(datasets.get(s, dataset_id))


@analytics.get(
    "/datasets/{dataset_id}/preview",
    response_model=schemas.DatasetPreview,
    summary="The first rows of a dataset (wide form) and its manifest",
)
def preview_dataset(
    dataset_id: str,
    request: Request,
    rows: int = Query(50, ge=1, le=500),
    principal: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.DatasetPreview:
    import json

    platform = _platform(request)
    datasets, runs = services(platform)
    dataset = datasets.get(s, dataset_id)
    factory_id = factory_of(principal)
    try:
        path = datasets.local_copy(factory_id, dataset, runs.cache)
        manifest = json.loads(platform.objects.get_bytes(FactoryScope(factory_id), Key.parse(dataset.manifest_key)))  # type: ignore[union-attr]
    except ObjectStoreError as exc:
        raise _unavailable(exc) from exc
    shown = preview(path, ExportRequest.from_json(dataset.request), rows)
    return schemas.DatasetPreview(columns=shown["columns"], rows=shown["rows"], manifest=manifest)


@analytics.get(
    "/datasets/{dataset_id}/download",
    summary="The dataset's Parquet file (or its manifest with ?part=manifest)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The snapshot's file, streamed",
            "content": {"application/vnd.apache.parquet": {}, "application/json": {}},
        }
    },
)
def download_dataset(
    dataset_id: str,
    request: Request,
    part: Literal["data", "manifest"] = Query("data"),
    principal: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> StreamingResponse:
    platform = _platform(request)
    datasets = services(platform)[0]
    dataset = datasets.get(s, dataset_id)
    if dataset.state != "ready" or platform.objects is None:
        raise ApiError(409, "dataset_not_ready", f"The dataset is {dataset.state}, not ready.")
    scope = FactoryScope(factory_of(principal))
    key = Key.parse(dataset.object_key if part == "data" else dataset.manifest_key)
    try:
        platform.objects.stat(scope, key)
    except ObjectStoreError as exc:
        raise _unavailable(exc) from exc
    objects = platform.objects
    suffix = "parquet" if part == "data" else "manifest.json"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset.name)[:80] or "dataset"

    def body() -> Iterator[bytes]:
        yield from objects.iter_chunks(scope, key)

    return StreamingResponse(
        body(),
        media_type="application/vnd.apache.parquet" if part == "data" else "application/json",
        headers={"Content-Disposition": f'attachment; filename="{safe}.{suffix}"'},
    )


# ---------------------------------------------------------------------- runs
def _run_out(s: Session, runs: RunService, run: Run) -> schemas.RunOut:
    state, job = runs.state_of(s, run)
    data: dict[str, Any] = {name: getattr(run, name) for name in schemas.RunOut.model_fields if hasattr(run, name)}
    data.update(
        state=state,
        progress=100 if state == "succeeded" else (job.progress if job is not None else 0),
        message=job.message if job is not None else "",
        artifacts=sorted(run.artifacts),
    )
    return schemas.RunOut.model_validate(data)


@analytics.get("/runs", response_model=Page[schemas.RunOut], summary="The factory's runs, newest first")
def list_runs(
    request: Request,
    dataset_id: str | None = Query(None, max_length=36),
    task: schemas.TaskName | None = Query(None),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[schemas.RunOut]:
    runs = services(_platform(request))[1]
    stmt = select(Run).order_by(Run.created_at.desc(), Run.id)
    if dataset_id:
        stmt = stmt.where(Run.dataset_id == dataset_id)
    if task:
        stmt = stmt.where(Run.task == task)
    rows, total = paginate(s, stmt, params)
    return Page(items=[_run_out(s, runs, r) for r in rows], total=total, limit=params.limit, offset=params.offset)


@analytics.post("/runs", response_model=schemas.RunOut, status_code=202, summary="Start a standard or co-pilot run")
def create_run(
    body: schemas.RunCreate,
    request: Request,
    principal: Principal = Depends(can_run),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RunOut:
    platform = _platform(request)
    runs = services(platform)[1]
    req = RunRequest(
        dataset_id=body.dataset_id,
        mode=body.mode,
        task=body.task,
        model=body.model,
        target=body.target,
        features=body.features,
        params=body.params,
        horizon=body.horizon,
        savings_from=body.savings_from,
        budget_seconds=body.budget_seconds,
        name=body.name,
    )
    runs.datasets.get(s, body.dataset_id)  # 404 before anything else
    require_object_store(platform, factory_of(principal))
    run = runs.start(s, JobQueue(platform.db), req, principal.email)
    s.flush()
    return _run_out(s, runs, run)


@analytics.get("/runs/{run_id}", response_model=schemas.RunOut, summary="One run, with its live progress")
def get_run(
    run_id: str,
    request: Request,
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RunOut:
    runs = services(_platform(request))[1]
    return _run_out(s, runs, runs.get(s, run_id))


@analytics.get("/runs/{run_id}/charts", summary="The chart data of a finished run")
def run_charts(
    run_id: str,
    request: Request,
    principal: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Response:
    runs = services(_platform(request))[1]
    run = runs.get(s, run_id)
    try:
        body = runs.artifact(factory_of(principal), run, "charts")
    except ObjectStoreError as exc:
        raise _unavailable(exc) from exc
    return Response(body, media_type="application/json")


@analytics.get(
    "/runs/{run_id}/predictions",
    summary="A finished run's predictions (CSV or Parquet)",
    response_class=Response,
    responses={
        200: {
            "description": "The predictions as CSV, or as Parquet with ?format=parquet",
            "content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
        }
    },
)
def run_predictions(
    run_id: str,
    request: Request,
    format: Literal["csv", "parquet"] = Query("csv"),
    principal: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Response:
    import pandas as pd

    runs = services(_platform(request))[1]
    run = runs.get(s, run_id)
    try:
        body = runs.artifact(factory_of(principal), run, "predictions")
    except ObjectStoreError as exc:
        raise _unavailable(exc) from exc
    name = f"run-{run.id[:8]}-predictions"
    if format == "parquet":
        return Response(
            body,
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{name}.parquet"'},
        )
    csv = pd.read_parquet(io.BytesIO(body)).to_csv()
    return Response(csv, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@analytics.post("/runs/{run_id}/retry", response_model=schemas.RunOut, summary="Run a failed or cancelled run again")
def retry_run(
    run_id: str,
    request: Request,
    principal: Principal = Depends(can_run),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RunOut:
    platform = _platform(request)
    runs = services(platform)[1]
    runs.get(s, run_id)
    require_object_store(platform, factory_of(principal))
    run = runs.retry(s, JobQueue(platform.db), run_id)
    s.flush()
    return _run_out(s, runs, run)


@analytics.post("/runs/{run_id}/cancel", response_model=schemas.RunOut, summary="Cancel a queued or running run")
def cancel_run(
    run_id: str,
    request: Request,
    _: Principal = Depends(can_run),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RunOut:
    platform = _platform(request)
    runs = services(platform)[1]
    run = runs.get(s, run_id)
    if not run.job_id:
        raise not_found("run")
    JobQueue(platform.db).cancel(s, run.job_id)
    s.flush()
    return _run_out(s, runs, run)


# ---------------------------------------------------------------------- model registry
@analytics.get(
    "/model-versions", response_model=Page[schemas.ModelVersionOut], summary="Saved model versions, newest first"
)
def list_model_versions(
    name: str | None = Query(None, max_length=200),
    task: schemas.TaskName | None = Query(None),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[schemas.ModelVersionOut]:
    stmt = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id)
    if name:
        stmt = stmt.where(ModelVersion.name == name)
    if task:
        stmt = stmt.where(ModelVersion.task == task)
    rows, total = paginate(s, stmt, params)
    return Page(
        items=[schemas.ModelVersionOut.model_validate(r) for r in rows],
        total=total,
        limit=params.limit,
        offset=params.offset,
    )


@analytics.get("/model-versions/{version_id}", response_model=schemas.ModelVersionOut, summary="One model version")
def get_model_version(
    version_id: str,
    request: Request,
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.ModelVersionOut:
    runs = services(_platform(request))[1]
    return schemas.ModelVersionOut.model_validate(runs.version(s, version_id))


@analytics.post(
    "/model-versions/{version_id}/score",
    response_model=schemas.RunOut,
    status_code=202,
    summary="Apply a saved model version to a dataset (a scoring run)",
)
def score_with_model(
    version_id: str,
    body: schemas.ScoreIn,
    request: Request,
    principal: Principal = Depends(can_run),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RunOut:
    platform = _platform(request)
    runs = services(platform)[1]
    runs.version(s, version_id)
    runs.datasets.get(s, body.dataset_id)
    require_object_store(platform, factory_of(principal))
    run = runs.start_scoring(s, JobQueue(platform.db), version_id, body.dataset_id, principal.email)
    s.flush()
    return _run_out(s, runs, run)


routers = [analytics]
