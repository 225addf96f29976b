"""The durable job queue over the jobs table.

Enqueueing happens in the caller's factory-scoped session (the job belongs to that factory).
Workers take work of every factory: claiming, heartbeats and completion go through the
explicit ``unscoped_session`` escape hatch and touch only the job they hold. Several workers
can run at once on MySQL/MariaDB: a claim locks the candidate row with ``FOR UPDATE SKIP
LOCKED`` and then moves it to ``running`` only if it is still ``queued``, so no job runs twice.
On SQLite (one worker) the same conditional update is enough. A job whose worker stops
sending heartbeats is taken up again by :meth:`JobQueue.reap`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from factoryops.core.db import Database, utcnow
from factoryops.core.errors import ApiError, not_found
from factoryops.jobs.models import FINISHED, Job, JobState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    factory_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


def retry_delay(attempts: int, base_seconds: float = 5.0) -> timedelta:
    """Exponential backoff between attempts: 5 s, 20 s, 80 s, ... at most 30 minutes."""
    return timedelta(seconds=min(base_seconds * 4 ** max(0, attempts - 1), 1800))


class JobQueue:
    def __init__(self, db: Database, retry_base_seconds: float = 5.0) -> None:
        self.db = db
        self.retry_base_seconds = retry_base_seconds

    # ------------------------------------------------------------------ producers (factory-scoped)
    def enqueue(
        self,
        s: Session,
        kind: str,
        payload: dict[str, Any] | None = None,
        created_by: str = "",
        priority: int = 100,
        max_attempts: int = 3,
        run_after: datetime | None = None,
    ) -> Job:
        job = Job(
            kind=kind,
            payload=payload or {},
            created_by=created_by,
            priority=priority,
            max_attempts=max_attempts,
            run_after=run_after or utcnow(),
            state=JobState.queued,
        )
        s.add(job)
        s.flush()
        return job

    def get(self, s: Session, job_id: str) -> Job:
        job = s.get(Job, job_id)
        if job is None:
            raise not_found("job")
        return job

    def cancel(self, s: Session, job_id: str) -> Job:
        job = self.get(s, job_id)
        if job.state in FINISHED:
            raise ApiError(409, "job_finished", f"The job is already {job.state}.")
        if job.state == JobState.queued:
            job.state = JobState.cancelled
            job.finished_at = utcnow()
            job.message = "cancelled before it started"
        else:
            job.cancel_requested = True  # the worker stops at its next heartbeat
            job.message = "cancelling"
        return job

    def retry(self, s: Session, job_id: str) -> Job:
        job = self.get(s, job_id)
        if job.state not in (JobState.failed, JobState.cancelled):
            raise ApiError(
                409, "job_not_retryable", f"Only failed or cancelled jobs can be retried; this one is {job.state}."
            )
        job.state = JobState.queued
        job.attempts = 0
        job.error = ""
        job.progress = 0
        job.message = "queued again"
        job.cancel_requested = False
        job.run_after = utcnow()
        job.finished_at = None
        return job

    # ------------------------------------------------------------------ workers (every factory)
    def claim(self, worker: str, kinds: list[str]) -> ClaimedJob | None:
        if not kinds:
            return None
        now = utcnow()
        with self.db.unscoped_session() as s:  # a worker serves every factory
            candidate = s.execute(
                select(Job.id)
                .where(Job.state == JobState.queued, Job.run_after <= now, Job.kind.in_(kinds))
                .order_by(Job.priority, Job.run_after, Job.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if candidate is None:
                return None
            taken = s.execute(
                update(Job)
                .where(Job.id == candidate, Job.state == JobState.queued)
                .values(
                    state=JobState.running,
                    worker=worker,
                    started_at=now,
                    heartbeat_at=now,
                    attempts=Job.attempts + 1,
                    message="started",
                )
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None
            job = s.execute(select(Job).where(Job.id == candidate)).scalar_one()
            return ClaimedJob(job.id, job.factory_id, job.kind, dict(job.payload), job.attempts, job.max_attempts)

    def _update_held(self, job_id: str, worker: str, **values: Any) -> bool:
        with self.db.unscoped_session() as s:  # the worker's own job only
            result = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker == worker, Job.state == JobState.running)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def heartbeat(self, job_id: str, worker: str, progress: int | None = None, message: str | None = None) -> bool:
        """Keeps the job; returns False when it was cancelled or taken away (the worker must stop)."""
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if progress is not None:
            values["progress"] = max(0, min(100, int(progress)))
        if message is not None:
            values["message"] = message[:300]
        held = self._update_held(job_id, worker, **values)
        if not held:
            return False
        with self.db.unscoped_session() as s:
            return not s.execute(select(Job.cancel_requested).where(Job.id == job_id)).scalar_one()

    def succeed(self, job_id: str, worker: str, result: dict[str, Any] | None = None, message: str = "done") -> bool:
        return self._update_held(
            job_id,
            worker,
            state=JobState.succeeded,
            progress=100,
            message=message[:300],
            result=result or {},
            finished_at=utcnow(),
        )

    def cancelled(self, job_id: str, worker: str) -> bool:
        return self._update_held(job_id, worker, state=JobState.cancelled, message="cancelled", finished_at=utcnow())

    def fail(self, job_id: str, worker: str, error: str, final: bool = False) -> str:
        """Records a failure: queued again after a backoff while attempts remain (and not ``final``), else failed."""
        with self.db.unscoped_session() as s:  # the worker's own job only
            job = s.execute(
                select(Job).where(Job.id == job_id, Job.worker == worker, Job.state == JobState.running)
            ).scalar_one_or_none()
            if job is None:
                return "lost"
            job.error = error[-4000:]
            if job.attempts < job.max_attempts and not final:
                job.state = JobState.queued
                job.run_after = utcnow() + retry_delay(job.attempts, self.retry_base_seconds)
                job.message = f"attempt {job.attempts} failed; retrying"
                job.worker = ""
            else:
                job.state = JobState.failed
                job.message = f"failed after {job.attempts} attempt(s)"
                job.finished_at = utcnow()
            return str(job.state)

    def reap(self, stale_after: timedelta) -> int:
        """Takes back running jobs whose worker stopped sending heartbeats; returns how many."""
        cutoff = utcnow() - stale_after
        count = 0
        with self.db.unscoped_session() as s:  # dead workers' jobs of every factory
            stale = (
                s.execute(
                    select(Job)
                    .where(Job.state == JobState.running, Job.heartbeat_at < cutoff)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            for job in stale:
                log.warning("job %s (%s) lost its worker %s; taking it back", job.id, job.kind, job.worker)
                if job.attempts < job.max_attempts:
                    job.state = JobState.queued
                    job.run_after = utcnow()
                    job.message = f"worker {job.worker} stopped; queued again"
                else:
                    job.state = JobState.failed
                    job.error = f"worker {job.worker} stopped during the last attempt"
                    job.finished_at = utcnow()
                job.worker = ""
                count += 1
        return count
