"""Backtest: what a rule would have fired over a past period, computed from stored history.

The stored points of the devices in the rule's scope are read through the time-series port
(raw points, in time-bounded chunks per batch of devices) and replayed in time order, device by
device, through the same :class:`CompiledRule` the live engine uses: ``observe``, the schedule,
``decide`` (trigger, cooldown, auto-resolve with the clear condition) and the staleness timers
(a deadline that passes between two values is evaluated at that moment, as the engine's timer
thread does). Nothing is written: the alerts are only counted and listed in the job's result.

Like an engine started at ``start``: the rule's state is first filled from the points of a
lead-in before ``start`` (long enough for its windows, rates and staleness; nothing is evaluated
there), the cooldown knows no earlier alert, and a device that says nothing is counted silent
from ``start`` (or from its registration, if later). Alerts still open at ``end`` have no
``resolved_at``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.core.db import Database, utcnow
from factoryops.devices.models import Device
from factoryops.jobs.models import Job
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import Handler, JobContext
from factoryops.ports.timeseries.base import FactoryScope, TimeseriesStore
from factoryops.rules.definition import RuleDefinition
from factoryops.rules.evaluator import Action, CompiledRule, DeviceState
from factoryops.tenancy.models import Factory

log = logging.getLogger(__name__)

KIND = "rules.backtest"
MAX_PERIOD = timedelta(days=31)
MAX_ALERTS = 1000
DEVICE_BATCH = 25
FIRST_CHUNK = timedelta(hours=6)
MIN_CHUNK = timedelta(minutes=10)
MAX_CHUNK = timedelta(days=7)
TARGET_SAMPLES = 200_000  # points per store query: bounds the memory of one chunk
MAX_LEAD = timedelta(days=1)
RATE_LEAD = timedelta(minutes=15)


def period_problem(start: datetime, end: datetime) -> str | None:
    """Why [start, end) cannot be backtested, or None."""
    if end <= start:
        return f"end ({end.isoformat()}) must be after start ({start.isoformat()})"
    if end - start > MAX_PERIOD:
        return f"the period may be at most {MAX_PERIOD.days} days, not {(end - start) / timedelta(days=1):.1f}"
    return None


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def enqueue(
    s: Session,
    queue: JobQueue,
    definition: RuleDefinition,
    start: datetime,
    end: datetime,
    created_by: str,
    rule_id: str | None = None,
) -> Job:
    """Queues a backtest job in the caller's factory (the period is already validated)."""
    payload: dict[str, Any] = {
        "definition": definition.model_dump(mode="json"),
        "start": as_utc(start).isoformat(),
        "end": as_utc(end).isoformat(),
    }
    if rule_id:
        payload["rule_id"] = rule_id
    return queue.enqueue(s, KIND, payload, created_by=created_by, max_attempts=2)


@dataclass
class BacktestAlert:
    device_id: str
    opened_at: datetime
    resolved_at: datetime | None
    trigger_values: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "opened_at": self.opened_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "trigger_values": self.trigger_values,
        }


class AlertSink:
    """Keeps the newest :data:`MAX_ALERTS` alerts (by opening time) of the whole backtest."""

    def __init__(self, cap: int = MAX_ALERTS) -> None:
        self.cap = cap
        self.items: list[BacktestAlert] = []
        self.truncated = False

    def add(self, alert: BacktestAlert) -> None:
        self.items.append(alert)
        if len(self.items) > 2 * self.cap:
            self._trim()

    def _trim(self) -> None:
        self.items.sort(key=lambda a: (a.opened_at, a.device_id))
        if len(self.items) > self.cap:
            self.truncated = True
            del self.items[: len(self.items) - self.cap]

    def result(self) -> list[dict[str, Any]]:
        self._trim()
        return [a.as_dict() for a in self.items]


class DeviceReplay:
    """One device through a compiled rule, as the live engine and its staleness timers see it."""

    def __init__(
        self, rule: CompiledRule, device_id: str, watch_from: datetime, horizon: datetime, sink: AlertSink
    ) -> None:
        self.rule = rule
        self.device_id = device_id
        self.watch_from = watch_from
        self.horizon = horizon  # deadlines fire before this moment only (the end, or now)
        self.sink = sink
        self.state = DeviceState()
        self.open: BacktestAlert | None = None
        self.last_opened: datetime | None = None
        self.deadlines: dict[tuple[str, int], datetime] = {}

    def warm(self, ts: datetime, values: dict[str, float]) -> None:
        """A value before the period: fills windows, rates and last values; nothing is evaluated."""
        self.rule.observe(self.state, ts, values)

    def begin(self) -> None:
        """The engine starts watching: staleness counts from the last value, or from now."""
        for prop, seconds in self.rule.stale_watch:
            if self.state.silent_since(prop) is None:
                self.state.stale_ref[prop] = self.watch_from
            deadline = self.rule.stale_deadline(self.state, prop, seconds)
            if deadline is not None:
                self.deadlines[(prop, seconds)] = deadline

    def feed(self, ts: datetime, values: dict[str, float]) -> None:
        self._timers(until=ts)
        self.rule.observe(self.state, ts, values)
        for prop, seconds in self.rule.stale_watch:
            if prop in values:
                self.deadlines[(prop, seconds)] = ts + timedelta(seconds=seconds)
        if self.rule.in_schedule(ts):
            self._apply(self.rule.decide(self.state, ts, self.open is not None, self.last_opened), ts)

    def finish(self) -> None:
        self._timers(until=self.horizon)

    def _timers(self, until: datetime) -> None:
        while self.deadlines:
            key, at = min(self.deadlines.items(), key=lambda item: item[1])
            if at >= until:
                return
            del self.deadlines[key]
            self._fire(key, at)

    def _fire(self, key: tuple[str, int], now: datetime) -> None:
        """Mirrors RuleEngine._fire: the deadline passed in silence, so evaluate the rule now."""
        prop, seconds = key
        deadline = self.rule.stale_deadline(self.state, prop, seconds)
        if deadline is None:
            return
        if deadline > now:
            self.deadlines[key] = deadline
            return
        if not self.rule.in_schedule(now):
            resume = self.rule.next_active(now)
            if resume is not None:
                self.deadlines[key] = resume
            return
        action = self.rule.decide(self.state, now, self.open is not None, self.last_opened)
        self._apply(action, now)
        if action == "cooldown" and self.last_opened is not None:
            self.deadlines[key] = self.last_opened + timedelta(seconds=self.rule.definition.cooldown_seconds)

    def _apply(self, action: Action, now: datetime) -> None:
        if action == "open":
            self.open = BacktestAlert(self.device_id, now, None, self.rule.trigger_values(self.state))
            self.last_opened = now
            self.sink.add(self.open)
        elif action == "resolve" and self.open is not None:
            self.open.resolved_at = now
            self.open = None


def lead_in(rule: CompiledRule) -> timedelta:
    """How much history before the period fills the rule's state: its longest window or staleness."""
    lead = timedelta(0)
    for c in rule.conditions():
        if c.window is not None:
            lead = max(lead, timedelta(seconds=c.window.seconds))
        if c.stale_seconds is not None:
            lead = max(lead, timedelta(seconds=c.stale_seconds))
        if c.rate is not None:
            lead = max(lead, RATE_LEAD)
    return min(lead, MAX_LEAD)


Progress = Callable[[int, str], None]


class Backtester:
    def __init__(self, db: Database, store: TimeseriesStore | None) -> None:
        self.db = db
        self.store = store

    def handle(self, ctx: JobContext) -> dict[str, Any]:
        payload = ctx.payload
        definition = RuleDefinition.model_validate(payload["definition"])
        start = as_utc(datetime.fromisoformat(payload["start"]))
        end = as_utc(datetime.fromisoformat(payload["end"]))
        return self.run(ctx.factory_id, definition, start, end, progress=ctx.progress, check=ctx.check)

    def run(
        self,
        factory_id: str,
        definition: RuleDefinition,
        start: datetime,
        end: datetime,
        progress: Progress | None = None,
        check: Callable[[], None] | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        problem = period_problem(start, end)
        if problem:
            raise ValueError(problem)
        if self.store is None:
            raise RuntimeError("no time-series store is configured")
        with self.db.factory_session(factory_id) as s:
            timezone = s.execute(select(Factory.timezone).where(Factory.id == factory_id)).scalar_one_or_none()
            rows = s.execute(
                select(Device.device_id, Device.type, Device.created_at)
                .where(Device.enabled)
                .order_by(Device.device_id)
            ).all()
        rule = CompiledRule("backtest", definition, timezone or "UTC")
        devices = [(d, created) for d, kind, created in rows if rule.applies_to(d, kind)]
        horizon = min(end, now or utcnow())
        sink = AlertSink()
        points = 0
        batches = [devices[i : i + DEVICE_BATCH] for i in range(0, len(devices), DEVICE_BATCH)]
        for number, batch in enumerate(batches):
            label = f"devices {number * DEVICE_BATCH + 1}-{number * DEVICE_BATCH + len(batch)} of {len(devices)}"

            def report(done: datetime, label: str = label, number: int = number) -> None:
                if progress is not None:
                    share = max(0.0, min(1.0, (done - start) / (end - start)))
                    progress(min(99, int(100 * (number + share) / len(batches))), f"{label}, {done:%Y-%m-%d %H:%M}")

            replays = {
                device_id: DeviceReplay(rule, device_id, max(start, created or start), horizon, sink)
                for device_id, created in batch
            }
            points += self._replay(factory_id, rule, replays, start, end, report, check)
            for replay in replays.values():
                replay.finish()
            if progress is not None:
                progress(min(99, int(100 * (number + 1) / len(batches))), f"{label} done")
        if progress is not None:
            progress(100, f"{len(devices)} device(s), {points} point(s), {len(sink.items)} alert(s)")
        return {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "devices": len(devices),
            "points": points,
            "alerts": sink.result(),
            "truncated": sink.truncated,
        }

    def _replay(
        self,
        factory_id: str,
        rule: CompiledRule,
        replays: dict[str, DeviceReplay],
        start: datetime,
        end: datetime,
        report: Callable[[datetime], None],
        check: Callable[[], None] | None,
    ) -> int:
        """Reads the batch's history in chunks and feeds it in time order; returns the points in the period."""
        assert self.store is not None
        scope = FactoryScope(factory_id)
        device_ids = sorted(replays)
        properties = sorted(rule.properties)
        points = 0
        chunk = FIRST_CHUNK
        cursor = start - lead_in(rule)
        begun = cursor >= start
        if begun:
            for replay in replays.values():
                replay.begin()
        while cursor < end:
            if check is not None:
                check()
            # The lead-in ends exactly at `start`, so no chunk spans both.
            upto = min(cursor + chunk, start if not begun else end, end)
            result = self.store.query(scope, device_ids, properties, cursor, upto)
            events: dict[str, dict[datetime, dict[str, float]]] = {}
            count = 0
            for key, samples in result.series.items():
                per_device = events.setdefault(key.device_id, {})
                for sample in samples:
                    per_device.setdefault(sample.ts, {})[key.property] = sample.value
                count += len(samples)
            for device_id, by_time in events.items():
                target = replays.get(device_id)
                if target is None:
                    continue
                for ts in sorted(by_time):
                    if begun:
                        target.feed(ts, by_time[ts])
                    else:
                        target.warm(ts, by_time[ts])
            if begun:
                points += count
            cursor = upto
            if not begun and cursor >= start:
                begun = True
                for replay in replays.values():
                    replay.begin()
            if count > TARGET_SAMPLES:
                chunk = max(chunk / 2, MIN_CHUNK)
            elif count < TARGET_SAMPLES // 8:
                chunk = min(chunk * 2, MAX_CHUNK)
            if begun:
                report(cursor)
        return points


def handlers(db: Database, store: TimeseriesStore | None) -> dict[str, Handler]:
    return {KIND: Backtester(db, store).handle}
