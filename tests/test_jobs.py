"""The durable job queue and its workers, against the real database (SQLite and MariaDB)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from factoryops.core.db import utcnow
from factoryops.jobs.models import Job
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import JobContext, JobWorker
from support import auth


def _enqueue(platform: Any, factory_id: str, kind: str, n: int = 1, **payload: Any) -> list[str]:
    queue = JobQueue(platform.db)
    with platform.db.factory_session(factory_id) as s:
        return [queue.enqueue(s, kind, {"n": i, **payload}).id for i in range(n)]


def _wait(platform: Any, factory_id: str, ids: list[str], states: set[str], timeout: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    got: dict[str, str] = {}
    while time.monotonic() < deadline:
        with platform.db.factory_session(factory_id) as s:
            got = {j.id: j.state for j in s.query(Job).filter(Job.id.in_(ids))}
        if all(v in states for v in got.values()) and len(got) == len(ids):
            return got
        time.sleep(0.1)
    return got


def test_two_workers_run_each_job_exactly_once(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    runs: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(ctx: JobContext) -> dict[str, Any]:
        with lock:
            runs[ctx.job.id] += 1
        time.sleep(0.01)
        return {"n": ctx.payload["n"]}

    ids = _enqueue(platform, world.id, "test.once", 60)
    workers = [
        JobWorker(JobQueue(platform.db), {"test.once": handler}, name=f"w{i}", poll_seconds=0.05) for i in range(2)
    ]
    for w in workers:
        w.start()
    try:
        states = _wait(platform, world.id, ids, {"succeeded"})
    finally:
        for w in workers:
            w.stop()
    assert set(states.values()) == {"succeeded"}
    assert all(runs[i] == 1 for i in ids), [n for n in runs.values() if n != 1]
    with platform.db.factory_session(world.id) as s:
        by_worker = Counter(j.worker for j in s.query(Job).filter(Job.id.in_(ids)))
    assert set(by_worker) <= {"w0", "w1"}


def test_progress_cancel_failure_retry_and_dead_worker(client: TestClient, make_factory) -> None:
    world = make_factory()
    platform = client.app.state.platform  # type: ignore[attr-defined]
    h = auth(world.super_token)
    started = threading.Event()

    def slow(ctx: JobContext) -> None:
        for i in range(200):
            ctx.progress(i // 2, f"step {i}")
            started.set()
            ctx.check()
            time.sleep(0.05)

    def broken(ctx: JobContext) -> None:
        raise RuntimeError("the model would not converge")

    queue = JobQueue(platform.db, retry_base_seconds=0.05)
    worker = JobWorker(
        queue,
        {"reports.slow": slow, "analytics.broken": broken, "reports.quick": lambda ctx: {"ok": 1}},
        name="wx",
        poll_seconds=0.05,
        heartbeat_seconds=0.2,
        stale_after=timedelta(seconds=1),
    )
    [slow_id] = _enqueue(platform, world.id, "reports.slow")
    worker.start()
    try:
        assert started.wait(10)
        time.sleep(0.6)
        job = client.get(f"/api/v1/jobs/{slow_id}", headers=h).json()
        assert job["state"] == "running" and job["progress"] > 0 and job["message"].startswith("step")
        # an admin without the reports permission may watch it but not cancel it
        assert client.get(f"/api/v1/jobs/{slow_id}", headers=auth(world.admin_plain_token)).status_code == 200
        assert client.post(f"/api/v1/jobs/{slow_id}/cancel", headers=auth(world.admin_plain_token)).status_code == 403
        assert client.post(f"/api/v1/jobs/{slow_id}/cancel", headers=h).status_code == 200
        assert _wait(platform, world.id, [slow_id], {"cancelled"}) == {slow_id: "cancelled"}
        # a failing job is retried with backoff, then marked failed with its error, and can be retried
        [broken_id] = _enqueue(platform, world.id, "analytics.broken")
        assert _wait(platform, world.id, [broken_id], {"failed"}) == {broken_id: "failed"}
        job = client.get(f"/api/v1/jobs/{broken_id}", headers=h).json()
        assert job["attempts"] == 3 and "would not converge" in job["error"]
        assert client.post(f"/api/v1/jobs/{broken_id}/retry", headers=h).json()["state"] == "queued"
        assert client.post(f"/api/v1/jobs/{slow_id}/cancel", headers=h).status_code == 409
        # a job whose worker died is taken up again
        [quick_id] = _enqueue(platform, world.id, "reports.quick")
        worker.stop()
        claimed = queue.claim("ghost-worker", ["reports.quick"])
        assert claimed is not None and claimed.id == quick_id
        with platform.db.unscoped_session() as s:
            s.execute(update(Job).where(Job.id == quick_id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        worker = JobWorker(
            queue,
            {"reports.quick": lambda ctx: {"ok": 1}},
            name="wy",
            poll_seconds=0.05,
            stale_after=timedelta(seconds=1),
        )
        worker.start()
        assert _wait(platform, world.id, [quick_id], {"succeeded"}) == {quick_id: "succeeded"}
        job = client.get(f"/api/v1/jobs/{quick_id}", headers=h).json()
        assert job["attempts"] == 2 and job["result"] == {"ok": 1}
        listed = client.get("/api/v1/jobs?state=succeeded", headers=h).json()
        assert quick_id in [j["id"] for j in listed["items"]]
    finally:
        worker.stop()
