"""The notification lane: every worker also runs a second claim loop that takes only the
notification deliveries, so a long job (an analytics run, a large export) never holds back an
alert's email or WhatsApp message. Real database (SQLite and MariaDB), real workers, a real SMTP
server (aiosmtpd) and a local Twilio stand-in; the long job is a test kind that runs until released.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from channels import Channels, open_channels
from factoryops.core.db import utcnow
from factoryops.entrypoints.services import WorkerService, notification_kinds
from factoryops.jobs.models import Job, JobState
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import JobContext, JobWorker
from factoryops.notifications.service import DIGEST_KIND, KIND, SYSTEM_KIND, Outbox, handlers
from factoryops.rules.engine import RuleEngine
from factoryops.wiring import Platform
from support import auth, setup_rule

BLOCK = "test.block"  # the long job: runs until the test releases it


@pytest.fixture()
def channels() -> Iterator[Channels]:
    with open_channels() as opened:
        yield opened


class LongJob:
    """A handler that holds its worker until :meth:`release` (checking for cancellation meanwhile)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.released = threading.Event()

    def __call__(self, ctx: JobContext) -> dict[str, Any]:
        self.started.set()
        while not self.released.wait(0.05):
            ctx.progress(50, "busy")
            ctx.check()
        return {"released": True}

    def release(self) -> None:
        self.released.set()


def _alerting_rule(client: TestClient, world: Any, email: str, phone: str) -> None:
    setup_rule(
        client,
        world,
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "severity": "critical",
            "cooldown_seconds": 0,
            "notify": {"emails": [email], "whatsapp": [phone]},
        },
    )


def _enqueue(platform: Any, factory_id: str, kind: str) -> str:
    with platform.db.factory_session(factory_id) as s:
        return str(JobQueue(platform.db).enqueue(s, kind, {}).id)


def _jobs(platform: Any, factory_id: str, kind: str) -> list[Job]:
    with platform.db.factory_session(factory_id) as s:
        return list(s.execute(select(Job).where(Job.kind == kind).order_by(Job.created_at)).scalars())


def _state(platform: Any, factory_id: str, job_id: str) -> str:
    with platform.db.factory_session(factory_id) as s:
        return str(s.execute(select(Job.state).where(Job.id == job_id)).scalar_one())


def _until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def _delivered(channels: Channels, email: str, phone: str) -> bool:
    return bool(channels.mails_to(email)) and any(
        r["form"].get("To") == f"whatsapp:{phone}" for r in list(channels.whatsapp)
    )


def test_the_lane_takes_exactly_the_notification_kinds(platform: Platform) -> None:
    kinds = set(notification_kinds())
    assert kinds == {KIND, SYSTEM_KIND, DIGEST_KIND}  # deliveries, reminders, system alerts, digests
    assert kinds == set(handlers(platform.db, platform.settings.notifications))


def test_a_long_job_does_not_hold_back_alert_notifications(
    client: TestClient, make_factory, channels: Channels
) -> None:
    """The worker service as `factoryops worker` and `factoryops up` build it (lane on by default)."""
    world = make_factory(with_admins=False)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    email, phone = "lane-ops@plant.example", "+4915100000101"
    _alerting_rule(client, world, email, phone)
    long_job = LongJob()
    service = WorkerService(
        platform.db,
        heartbeat_seconds=0.2,
        job_handlers={**handlers(platform.db, channels.settings), BLOCK: long_job},
        notifications=channels.settings,
    )
    assert service.jobs.lane_kinds == sorted(notification_kinds())
    block_id = _enqueue(platform, world.id, BLOCK)
    engine = RuleEngine(platform.db, on_transition=Outbox(platform.db, channels.settings).on_transition)
    service.start()
    try:
        assert long_job.started.wait(15), "the worker never took the long job"
        assert str(service.stats()["running_job_kind"]).startswith(BLOCK)  # in the main loop
        began = time.monotonic()
        engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 140.0})  # a critical alert opens
        assert _until(lambda: _delivered(channels, email, phone), 10), "the alert was not delivered"
        latency = time.monotonic() - began
        print(f"\nalert delivered {latency:.2f} s after it opened, while the long job ran")
        assert latency < 5.0
        # the long job is still running in the main loop: the delivery did not wait for it
        assert _state(platform, world.id, block_id) == JobState.running
        assert "[CRITICAL]" in channels.mails_to(email)[0]
        # the message is out a moment before its job is marked done
        assert _until(lambda: {j.state for j in _jobs(platform, world.id, KIND)} == {JobState.succeeded}, 5)
        jobs = _jobs(platform, world.id, KIND)
        assert len(jobs) == 2
        assert {j.worker for j in jobs} == {service.jobs.name} and {j.attempts for j in jobs} == {1}
        log = client.get("/api/v1/notifications/deliveries", headers=auth(world.super_token)).json()
        assert {d["state"] for d in log["items"]} == {"sent"} and log["total"] == 2
        # the long job still finishes
        long_job.release()
        assert _until(lambda: _state(platform, world.id, block_id) == JobState.succeeded, 15)
        assert _until(lambda: service.stats()["running_job_kind"] is None, 5)
    finally:
        long_job.release()
        service.stop()
    # a graceful stop ends both loops
    assert len(service.jobs.threads) == 2
    assert not any(t.is_alive() for t in service.jobs.threads)


def test_without_the_lane_the_long_job_holds_notifications_back(
    client: TestClient, make_factory, channels: Channels
) -> None:
    """The control: one loop alone keeps a notification queued behind the long job."""
    world = make_factory(with_admins=False)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    email, phone = "no-lane-ops@plant.example", "+4915100000102"
    _alerting_rule(client, world, email, phone)
    long_job = LongJob()
    worker = JobWorker(
        JobQueue(platform.db),
        {**handlers(platform.db, channels.settings), BLOCK: long_job},
        name="no-lane",
        poll_seconds=0.05,
    )
    assert worker.lane_kinds == []
    block_id = _enqueue(platform, world.id, BLOCK)
    engine = RuleEngine(platform.db, on_transition=Outbox(platform.db, channels.settings).on_transition)
    worker.start()
    try:
        assert long_job.started.wait(15)
        engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 140.0})
        time.sleep(2.0)
        assert not channels.mails_to(email)
        assert {j.state for j in _jobs(platform, world.id, KIND)} == {JobState.queued}
        long_job.release()
        assert _until(lambda: _delivered(channels, email, phone), 15)
        assert _state(platform, world.id, block_id) == JobState.succeeded
    finally:
        long_job.release()
        worker.stop()
    assert len(worker.threads) == 1 and not worker.threads[0].is_alive()


def test_a_dead_workers_notification_is_rescued_by_a_busy_workers_lane(
    client: TestClient, make_factory, channels: Channels
) -> None:
    """A worker killed while it held a delivery: the lane of a worker busy with a long job takes it back."""
    world = make_factory(with_admins=False)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    email, phone = "rescue-ops@plant.example", "+4915100000103"
    _alerting_rule(client, world, email, phone)
    engine = RuleEngine(platform.db, on_transition=Outbox(platform.db, channels.settings).on_transition)
    engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 140.0})
    # a worker took both deliveries and was killed before sending them (its heartbeats are fresh yet)
    with platform.db.unscoped_session() as s:
        taken = s.execute(
            update(Job)
            .where(Job.factory_id == world.id, Job.kind == KIND, Job.state == JobState.queued)
            .values(
                state=JobState.running,
                worker="killed-worker",
                attempts=Job.attempts + 1,
                started_at=utcnow(),
                heartbeat_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        assert taken.rowcount == 2  # type: ignore[attr-defined]
    long_job = LongJob()
    worker = JobWorker(
        JobQueue(platform.db),
        {**handlers(platform.db, channels.settings), BLOCK: long_job},
        name="lane-rescuer",
        poll_seconds=0.05,
        heartbeat_seconds=0.2,
        stale_after=timedelta(seconds=1),
        lane_kinds=notification_kinds(),
    )
    block_id = _enqueue(platform, world.id, BLOCK)
    worker.start()
    try:
        assert long_job.started.wait(15)
        assert worker.running_kind.startswith(BLOCK)  # the main loop is busy from here on
        with platform.db.unscoped_session() as s:  # the killed worker's heartbeats stopped long ago
            s.execute(
                update(Job)
                .where(Job.factory_id == world.id, Job.kind == KIND)
                .values(heartbeat_at=utcnow() - timedelta(minutes=5))
            )
        began = time.monotonic()
        assert _until(lambda: _delivered(channels, email, phone), 15), "the lost delivery was not rescued"
        print(f"\nlost delivery rescued and sent {time.monotonic() - began:.2f} s after its worker went stale")
        assert _until(lambda: {j.state for j in _jobs(platform, world.id, KIND)} == {JobState.succeeded}, 5)
        jobs = _jobs(platform, world.id, KIND)
        assert {j.worker for j in jobs} == {"lane-rescuer"} and {j.attempts for j in jobs} == {2}
        assert len(channels.mails_to(email)) == 1  # sent once, by the rescuer
        assert _state(platform, world.id, block_id) == JobState.running
        long_job.release()
        assert _until(lambda: _state(platform, world.id, block_id) == JobState.succeeded, 15)
    finally:
        long_job.release()
        worker.stop()
    assert not any(t.is_alive() for t in worker.threads)


def test_two_workers_with_lanes_run_each_job_exactly_once(client: TestClient, make_factory) -> None:
    """Four claim loops at once (two workers, each with its lane): every job runs once, lanes take only their kinds."""
    world = make_factory(with_admins=False)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    runs: Counter[str] = Counter()
    ran_on: dict[str, list[str]] = {}
    lock = threading.Lock()

    def handler(ctx: JobContext) -> None:
        with lock:
            runs[ctx.job.id] += 1
            ran_on.setdefault(threading.current_thread().name, []).append(ctx.job.kind)
        time.sleep(0.02)

    queue = JobQueue(platform.db)
    with platform.db.factory_session(world.id) as s:  # the bulk first: the main loops take it first
        bulk = [queue.enqueue(s, "test.bulk", {"n": i}).id for i in range(40)]
    with platform.db.factory_session(world.id) as s:
        urgent = [queue.enqueue(s, "test.urgent", {"n": i}).id for i in range(40)]
    workers = [
        JobWorker(
            queue,
            {"test.bulk": handler, "test.urgent": handler},
            name=f"lw{i}",
            poll_seconds=0.05,
            lane_kinds=["test.urgent", "test.not-handled-here"],
        )
        for i in range(2)
    ]
    assert workers[0].lane_kinds == ["test.urgent"]
    for w in workers:
        w.start()
    try:
        assert _until(
            lambda: (
                {j.state for j in _jobs(platform, world.id, "test.bulk") + _jobs(platform, world.id, "test.urgent")}
                == {JobState.succeeded}
            ),
            60,
        )
    finally:
        for w in workers:
            w.stop()
    assert all(runs[i] == 1 for i in bulk + urgent), [n for n in runs.values() if n != 1]
    assert sum(w.processed for w in workers) == 80 and sum(w.failed for w in workers) == 0
    lanes = {name: kinds for name, kinds in ran_on.items() if name.startswith("job-lane-")}
    assert lanes, ran_on.keys()  # the lanes took part
    assert {kind for kinds in lanes.values() for kind in kinds} == {"test.urgent"}
    assert not any(t.is_alive() for w in workers for t in w.threads)
