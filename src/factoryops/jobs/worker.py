"""The job worker: takes jobs, runs their handler, keeps a heartbeat, records the outcome.

A handler is a function of a :class:`JobContext`. It reports progress (0-100 with a message the
portal shows) and calls :meth:`JobContext.check` at safe points, which raises
:class:`JobCancelled` once someone cancelled the job. A handler's exception fails the attempt;
the queue retries it with backoff while attempts remain.

A worker runs one job at a time in its main loop, which takes every kind it has a handler for,
most urgent (lowest priority number) first. Priority only decides what is taken next, so a long
job (an analytics run of up to an hour) would hold back everything queued behind it. Kinds
given as ``lane_kinds`` (the notification deliveries) therefore also have a lane of their own: a
second loop in its own thread that takes only those kinds, so they go out within a poll interval
while the main loop is busy. Both loops claim through the same conditional update (a job runs
once), send heartbeats for the job they hold, take back dead workers' jobs, and stop together.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from prometheus_client import Counter, Histogram

from factoryops.core import logs
from factoryops.jobs.queue import ClaimedJob, JobQueue

log = logging.getLogger(__name__)

JOBS_DONE = Counter(
    "factoryops_jobs_total",
    "Job attempts finished by this process, by kind and outcome: succeeded, queued (failed, to be retried), "
    "failed (for good), cancelled, lost (taken back from this worker).",
    ["kind", "outcome"],
)
JOB_SECONDS = Histogram(
    "factoryops_job_duration_seconds",
    "Run time of one job attempt in this process, by kind.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0),
)


class JobCancelled(Exception):
    """Raised inside a handler when its job was cancelled."""


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (bad input): the job fails at once, no retry."""


class JobContext:
    def __init__(self, queue: JobQueue, job: ClaimedJob, worker: str) -> None:
        self.queue = queue
        self.job = job
        self.worker = worker
        self._stop = False
        self._lock = threading.Lock()
        self._pending: tuple[int | None, str | None] = (None, None)

    @property
    def factory_id(self) -> str:
        return self.job.factory_id

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    def progress(self, percent: int, message: str = "") -> None:
        with self._lock:
            self._pending = (percent, message)

    def take_progress(self) -> tuple[int | None, str | None]:
        with self._lock:
            pending, self._pending = self._pending, (None, None)
            return pending

    def stop(self) -> None:
        self._stop = True

    def check(self) -> None:
        if self._stop:
            raise JobCancelled()


Handler = Callable[[JobContext], dict[str, Any] | None]


class JobWorker:
    def __init__(
        self,
        queue: JobQueue,
        handlers: dict[str, Handler],
        name: str | None = None,
        poll_seconds: float = 0.5,
        heartbeat_seconds: float = 2.0,
        stale_after: timedelta = timedelta(seconds=30),
        lane_kinds: Collection[str] = (),
    ) -> None:
        self.queue = queue
        self.handlers = handlers
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{id(self) % 10_000}"
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after = stale_after
        # the kinds the lane takes: those of ``lane_kinds`` this worker has a handler for
        self.lane_kinds = sorted(k for k in set(lane_kinds) if k in handlers)
        self._stop = threading.Event()
        self.threads: list[threading.Thread] = []  # the main loop, and the lane's when it has one
        self._lock = threading.Lock()
        self._next_reap = 0.0
        self._running: dict[str, str] = {}  # loop ("main", "lane") -> kind of the job it runs now
        self.processed = 0  # job attempts finished by this worker
        self.failed = 0

    @property
    def running_kind(self) -> str:
        """The kind of the job running now ("" when idle); both, comma-separated, when both loops run one."""
        with self._lock:
            return ", ".join(self._running[loop] for loop in ("main", "lane") if loop in self._running)

    def run_one(self, lane: bool = False) -> bool:
        """Takes and runs one job (of any kind, or with ``lane`` one of ``lane_kinds``); False when there was none."""
        self._reap_if_due()
        job = self.queue.claim(self.name, self.lane_kinds if lane else list(self.handlers))
        if job is None:
            return False
        context = logs.push(factory_id=job.factory_id, job_id=job.id, job_kind=job.kind)
        try:
            self._run_job(job, "lane" if lane else "main")
        finally:
            logs.pop(context)
        return True

    def _reap_if_due(self) -> None:
        """Takes back dead workers' jobs every third of ``stale_after``, from whichever loop is free first."""
        with self._lock:
            if time.monotonic() < self._next_reap:
                return
            self._next_reap = time.monotonic() + max(1.0, self.stale_after.total_seconds() / 3)
        self.queue.reap(self.stale_after)

    def _run_job(self, job: ClaimedJob, loop: str = "main") -> None:
        """Runs a claimed job's handler with its heartbeat and records the outcome."""
        started = time.monotonic()
        with self._lock:
            self._running[loop] = job.kind
        ctx = JobContext(self.queue, job, self.name)
        beating = threading.Event()

        def beat() -> None:
            while not beating.wait(self.heartbeat_seconds):
                percent, message = ctx.take_progress()
                if not self.queue.heartbeat(job.id, self.name, percent, message):
                    ctx.stop()
                    return

        beater = threading.Thread(target=beat, name=f"job-heartbeat-{job.id[:8]}", daemon=True)
        beater.start()
        outcome = "succeeded"
        try:
            result = self.handlers[job.kind](ctx)
            beating.set()
            beater.join()
            percent, message = ctx.take_progress()
            if percent is not None:
                self.queue.heartbeat(job.id, self.name, percent, message)
            self.queue.succeed(job.id, self.name, result or {}, message or "done")
        except JobCancelled:
            beating.set()
            beater.join()
            outcome = "cancelled"
            self.queue.cancelled(job.id, self.name)
        except PermanentJobError as exc:
            beating.set()
            beater.join()
            outcome = self.queue.fail(job.id, self.name, str(exc), final=True)
            log.warning("job %s (%s) failed for good: %s", job.id, job.kind, exc)
        except Exception as exc:  # a failing job must not stop the worker
            beating.set()
            beater.join()
            outcome = self.queue.fail(job.id, self.name, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            log.warning("job %s (%s) attempt %d failed: %s", job.id, job.kind, job.attempts, exc)
        seconds = time.monotonic() - started
        JOBS_DONE.labels(job.kind, outcome).inc()
        JOB_SECONDS.labels(job.kind).observe(seconds)
        log.info(
            "job %s (%s) attempt %d: %s in %.2fs",
            job.id,
            job.kind,
            job.attempts,
            outcome,
            seconds,
            extra={"outcome": outcome, "duration_seconds": round(seconds, 3)},
        )
        with self._lock:
            self.processed += 1
            self.failed += outcome not in ("succeeded", "cancelled")
            self._running.pop(loop, None)

    def _run(self, lane: bool = False) -> None:
        while not self._stop.is_set():
            try:
                if not self.run_one(lane):
                    self._stop.wait(self.poll_seconds)
            except Exception as exc:  # the database may be restarting
                log.warning("job worker %s%s: %s; retrying", self.name, " (lane)" if lane else "", exc)
                self._stop.wait(2.0)

    def start(self) -> None:
        """Starts the main loop, and the lane's loop when the worker takes any of ``lane_kinds``."""
        self.threads = [threading.Thread(target=self._run, name=f"job-worker-{self.name}", daemon=True)]
        if self.lane_kinds:
            self.threads.append(
                threading.Thread(target=self._run, args=(True,), name=f"job-lane-{self.name}", daemon=True)
            )
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stops both loops; each finishes the job it runs first (waiting ``timeout`` seconds in all)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
