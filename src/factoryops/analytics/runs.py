"""Runs: a model fitted to a dataset (standard), chosen and tuned for it (co-pilot), or applied to it (scoring).

Every run is a job of kind ``analytics.run`` (spec 8.2 steps 4-6): the worker loads the dataset's
snapshot, calls :mod:`factoryops.analytics.ml`, and stores what it produced - the fitted model,
the predictions and the chart data in the object store under
``{factory_id}/analytics/runs/{run_id}/``, and the run's record (model name and version, dataset,
hyperparameters, metrics, status, summary, leaderboard) in the metadata database. A run that fits
a model registers a new :class:`ModelVersion` (versions count per factory and model name), which a
later scoring run can apply to a newer dataset.

Failures (spec 10.4): bad input (a target the dataset lacks, too little data) fails the run at
once with the reason; anything else is retried by the jobs system and, after the last attempt,
marks the run failed with its error. The dataset is never touched, and a failed run can be
retried from the portal.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from factoryops.analytics import ml
from factoryops.analytics.datasets import DatasetService, ExportRequest, read_wide
from factoryops.analytics.models import Dataset, DatasetState, ModelVersion, Run, RunMode, RunState
from factoryops.core.db import Database, utcnow
from factoryops.core.errors import ApiError, not_found
from factoryops.jobs.models import Job, JobState
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import Handler, JobCancelled, JobContext, PermanentJobError
from factoryops.ports.objectstore.base import Key, ObjectStore
from factoryops.ports.timeseries.base import FactoryScope
from factoryops.tenancy.models import Factory

log = logging.getLogger(__name__)

RUN_KIND = "analytics.run"
MAX_RUN_VALUES = 5_000_000  # values a run loads into memory (a wide frame of floats)
FINISHED = (RunState.succeeded, RunState.failed, RunState.cancelled)


@dataclass(frozen=True)
class RunRequest:
    dataset_id: str
    mode: str  # standard | copilot
    task: str
    model: str | None
    target: str | None
    features: list[str] | None
    params: dict[str, Any]
    horizon: int | None
    savings_from: datetime | None
    budget_seconds: float
    name: str


def check_request(dataset: Dataset, req: RunRequest) -> None:
    """What the API can say before the job starts: 422 naming the field."""
    catalogue = ml.MODELS
    if req.task not in catalogue:
        raise ApiError(422, "invalid_task", f"task must be one of {', '.join(catalogue)}")
    if dataset.state != DatasetState.ready:
        raise ApiError(409, "dataset_not_ready", f"The dataset is {dataset.state}; wait until it is ready.")
    if req.mode == "standard":
        if not req.model or req.model not in catalogue[req.task]:
            models = ", ".join(catalogue[req.task])
            raise ApiError(422, "invalid_model", f"model must be one of {models} for {req.task}")
        info = catalogue[req.task][req.model]
        unknown = [p for p in req.params if p not in info.params and p != "label_column"]
        if unknown:
            raise ApiError(422, "invalid_params", f"unknown hyperparameter(s) for {req.model}: {', '.join(unknown)}")
    columns = set(dataset.columns)
    if req.task in ("forecast", "baseline") and not req.target:
        raise ApiError(422, "target_required", f"a {req.task} needs a target column")
    if req.target and req.target not in columns:
        raise ApiError(422, "unknown_target", f"the dataset has no column {req.target!r}")
    missing = [f for f in req.features or [] if f not in columns]
    if missing:
        raise ApiError(422, "unknown_features", f"the dataset has no column(s): {', '.join(missing[:10])}")


def _effective_state(run: Run, job: Job | None) -> str:
    if run.state in FINISHED or job is None:
        return run.state
    if job.state == JobState.running:
        return RunState.running
    if job.state == JobState.queued:
        return RunState.queued
    return run.state


class RunService:
    def __init__(self, db: Database, datasets: DatasetService, objects: ObjectStore | None, cache: Path) -> None:
        self.db = db
        self.datasets = datasets
        self.objects = objects
        self.cache = cache

    # ------------------------------------------------------------------ API side
    def start(self, s: Session, queue: JobQueue, req: RunRequest, created_by: str) -> Run:
        dataset = self.datasets.get(s, req.dataset_id)
        check_request(dataset, req)
        run = Run(
            dataset_id=dataset.id,
            mode=req.mode,
            task=req.task,
            model_name=req.model or "",
            registry_name=req.name or f"{req.task}-{req.target or 'all'}",
            spec={
                "model": req.model,
                "target": req.target,
                "features": req.features,
                "params": req.params,
                "horizon": req.horizon,
                "savings_from": req.savings_from.isoformat() if req.savings_from else None,
                "budget_seconds": req.budget_seconds,
            },
            created_by=created_by,
        )
        s.add(run)
        s.flush()
        self._enqueue(s, queue, run, created_by)
        return run

    def start_scoring(self, s: Session, queue: JobQueue, version_id: str, dataset_id: str, created_by: str) -> Run:
        version = self.version(s, version_id)
        dataset = self.datasets.get(s, dataset_id)
        if dataset.state != DatasetState.ready:
            raise ApiError(409, "dataset_not_ready", f"The dataset is {dataset.state}; wait until it is ready.")
        missing = [c for c in version.columns if c not in set(dataset.columns)]
        if missing:
            raise ApiError(
                422,
                "columns_missing",
                f"the model {version.name} v{version.version} needs column(s) this dataset lacks: "
                + ", ".join(missing[:10]),
            )
        run = Run(
            dataset_id=dataset.id,
            mode=RunMode.scoring,
            task=version.task,
            model_name=version.model_name,
            registry_name=version.name,
            model_version=version.version,
            source_model_id=version.id,
            spec={"target": version.target or None},
            created_by=created_by,
        )
        s.add(run)
        s.flush()
        self._enqueue(s, queue, run, created_by)
        return run

    def _enqueue(self, s: Session, queue: JobQueue, run: Run, created_by: str) -> None:
        job = queue.enqueue(s, RUN_KIND, {"run_id": run.id}, created_by=created_by, max_attempts=3)
        run.job_id = job.id

    def get(self, s: Session, run_id: str) -> Run:
        run = s.get(Run, run_id)
        if run is None:
            raise not_found("run")
        return run

    def version(self, s: Session, version_id: str) -> ModelVersion:
        version = s.get(ModelVersion, version_id)
        if version is None:
            raise not_found("model version")
        return version

    def state_of(self, s: Session, run: Run) -> tuple[str, Job | None]:
        job = s.get(Job, run.job_id) if run.job_id else None
        return _effective_state(run, job), job

    def retry(self, s: Session, queue: JobQueue, run_id: str) -> Run:
        run = self.get(s, run_id)
        state, job = self.state_of(s, run)
        if state not in (RunState.failed, RunState.cancelled) or job is None:
            raise ApiError(
                409, "run_not_retryable", f"Only a failed or cancelled run can be retried; this one is {state}."
            )
        dataset = self.datasets.get(s, run.dataset_id)
        if dataset.state != DatasetState.ready:
            raise ApiError(409, "dataset_not_ready", f"The run's dataset is {dataset.state}.")
        queue.retry(s, job.id)
        run.state = RunState.queued
        run.error = ""
        run.finished_at = None
        return run

    def artifact(self, factory_id: str, run: Run, name: str) -> bytes:
        if self.objects is None or name not in run.artifacts:
            raise not_found("artifact")
        return self.objects.get_bytes(FactoryScope(factory_id), Key.parse(run.artifacts[name]))

    # ------------------------------------------------------------------ worker side
    def _update(self, factory_id: str, run_id: str, **values: Any) -> None:
        with self.db.factory_session(factory_id) as s:
            run = self.get(s, run_id)
            for key, value in values.items():
                setattr(run, key, value)

    def execute(self, ctx: JobContext) -> dict[str, Any]:
        if self.objects is None:
            raise RuntimeError("this process has no object store configured")
        factory_id = ctx.factory_id
        scope = FactoryScope(factory_id)
        run_id = ctx.payload["run_id"]
        with self.db.factory_session(factory_id) as s:
            run = self.get(s, run_id)
            dataset = self.datasets.get(s, run.dataset_id)
            version = self.version(s, run.source_model_id) if run.source_model_id else None
            for row in (run, dataset) + ((version,) if version else ()):
                s.expunge(row)
            # the summary writes times in the plant's zone (the data and predictions stay in UTC)
            timezone = s.execute(select(Factory.timezone).where(Factory.id == factory_id)).scalar_one_or_none()
        timezone = timezone or "UTC"
        self.objects.ping()
        self._update(factory_id, run_id, state=RunState.running, started_at=utcnow(), error="")
        ctx.progress(2, "loading the dataset")
        try:
            path = self.datasets.local_copy(factory_id, dataset, self.cache)
            frame = read_wide(path, ExportRequest.from_json(dataset.request), MAX_RUN_VALUES)
        except ValueError as exc:
            raise PermanentJobError(str(exc)) from exc
        ctx.progress(8, f"{len(frame):,} rows x {len(frame.columns)} columns loaded")

        def progress(percent: int, message: str) -> None:
            ctx.check()
            ctx.progress(8 + int(max(0, min(100, percent)) * 0.84), message)

        spec = run.spec
        try:
            if run.mode == RunMode.scoring:
                assert version is not None
                model = joblib.load(io.BytesIO(self.objects.get_bytes(scope, Key.parse(version.artifact_key))))
                out = ml.apply_model(model, frame, progress, timezone=timezone)
            else:
                run_spec = ml.RunSpec(
                    task=run.task,  # type: ignore[arg-type]
                    model=spec.get("model") if run.mode == RunMode.standard else None,
                    target=spec.get("target"),
                    features=spec.get("features"),
                    params=dict(spec.get("params") or {}),
                    horizon=spec.get("horizon"),
                    savings_from=datetime.fromisoformat(spec["savings_from"]) if spec.get("savings_from") else None,
                )
                if run.mode == RunMode.copilot:
                    budget = float(spec.get("budget_seconds") or 300)
                    out = ml.run_copilot(frame, run_spec, budget, progress, timezone=timezone)
                else:
                    out = ml.run_standard(frame, run_spec, progress, timezone=timezone)
        except ml.AnalyticsInputError as exc:
            raise PermanentJobError(str(exc)) from exc
        ctx.check()
        ctx.progress(93, "storing the results")
        folder = Key("analytics", "runs", run_id)
        artifacts: dict[str, str] = {}
        charts = json.dumps(out.charts, default=str).encode()
        self.objects.put_bytes(scope, folder.child("charts.json"), charts, content_type="application/json")
        artifacts["charts"] = str(folder.child("charts.json"))
        buffer = io.BytesIO()
        out.predictions.to_parquet(buffer)
        self.objects.put_bytes(scope, folder.child("predictions.parquet"), buffer.getvalue())
        artifacts["predictions"] = str(folder.child("predictions.parquet"))
        if out.model is not None and run.mode != RunMode.scoring:
            buffer = io.BytesIO()
            joblib.dump(out.model, buffer)
            self.objects.put_bytes(scope, folder.child("model.joblib"), buffer.getvalue())
            artifacts["model"] = str(folder.child("model.joblib"))
        metrics = {k: _number(v) for k, v in out.metrics.items()}
        hyper = json.loads(json.dumps(out.hyperparameters, default=str))
        with self.db.factory_session(factory_id) as s:
            row = self.get(s, run_id)
            row.model_name = out.model_name
            row.hyperparameters = hyper
            row.metrics = metrics
            row.summary = out.summary
            row.leaderboard = json.loads(json.dumps(out.leaderboard, default=str))
            row.feature_report = json.loads(json.dumps(out.feature_report, default=str))
            row.warnings = [str(w) for w in out.warnings]
            row.artifacts = artifacts
            row.state = RunState.succeeded
            row.finished_at = utcnow()
            if "model" in artifacts:
                row.model_version = self._register(s, row, dataset, out, artifacts["model"], list(frame.columns))
        ctx.progress(100, out.summary[:200] if out.summary else "done")
        return {"run_id": run_id, "metrics": metrics}

    def _register(self, s: Session, run: Run, dataset: Dataset, out: ml.RunOutput, key: str, columns: list[str]) -> int:
        for _ in range(5):
            latest = s.execute(
                select(func.max(ModelVersion.version)).where(ModelVersion.name == run.registry_name)
            ).scalar_one_or_none()
            version = ModelVersion(
                name=run.registry_name,
                version=(latest or 0) + 1,
                run_id=run.id,
                dataset_id=dataset.id,
                task=run.task,
                model_name=out.model_name,
                hyperparameters=run.hyperparameters,
                metrics=run.metrics,
                columns=columns,
                target=run.spec.get("target") or "",
                artifact_key=key,
                created_by=run.created_by,
            )
            try:
                with s.begin_nested():
                    s.add(version)
                return version.version
            except IntegrityError:  # another run of the same name took that number
                continue
        raise RuntimeError(f"could not register a version of {run.registry_name}")

    def on_failure(self, ctx: JobContext, exc: BaseException, final: bool) -> None:
        run_id = ctx.payload["run_id"]
        if isinstance(exc, JobCancelled):
            self._update(ctx.factory_id, run_id, state=RunState.cancelled, finished_at=utcnow())
        elif final:
            self._update(ctx.factory_id, run_id, state=RunState.failed, error=str(exc)[:4000], finished_at=utcnow())
        else:
            self._update(ctx.factory_id, run_id, state=RunState.queued, error=f"retrying: {str(exc)[:1000]}")


def _number(value: Any) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if number == number and abs(number) != float("inf") else None


def handlers(service: RunService) -> dict[str, Handler]:
    def handle(ctx: JobContext) -> dict[str, Any]:
        try:
            return service.execute(ctx)
        except PermanentJobError as exc:
            service.on_failure(ctx, exc, final=True)
            raise
        except JobCancelled as exc:
            service.on_failure(ctx, exc, final=True)
            raise
        except Exception as exc:
            service.on_failure(ctx, exc, final=ctx.job.attempts >= ctx.job.max_attempts)
            raise

    return {RUN_KIND: handle}
