"""The rule engine (spec 6): on every telemetry event, the device's active rules, from memory.

For each rule that applies to the device: feed the new values to the rule's state, check the
schedule, evaluate, then TRUE and no open alert and not in cooldown -> open an alert; FALSE (or
the clear condition, for hysteresis) with auto-resolve -> resolve the open alert. No history is
scanned and nothing is polled per event. Compiled rules are refreshed from the database every
``refresh_seconds`` (a cheap query of ids and versions), so a change takes effect in every
telemetry process within seconds. One open alert per rule and device is enforced by the
database's unique key, not by this process's memory.

Per message the cost is the rules that can apply, nothing more: rules are indexed by device,
device type and "whole factory"; the factory's open alerts are held in memory (one query every
``refresh_seconds``, plus this engine's own opens and resolves), and the time of the last alert
per rule and device, for the cooldown, is read once per factory (the last 7 days) and then kept.

Staleness ("no new value for 10 minutes") is driven by timers: one thread and a heap of
deadlines, one per (rule, device, watched property). Every accepted value re-arms the deadline
of the stale conditions on that property; when a deadline passes in silence the engine evaluates
the rule at that moment, through the same decision as an event (cooldown, unique key), and the
next value resolves the alert. When a rule with a stale condition is first seen (at start or
when it is created), every enabled device in its scope is armed from that moment, so a device
that never says anything goes stale too. Before opening, a deadline is checked once against
the registry's last-seen time of the property: with several telemetry processes sharing the
subscription, another process may have received the value.

A rule disabled (or whose definition changed) loses its per-device state and deadlines at the
next load (see ``_forget``); its alerts that nothing can judge any more are resolved by the
change itself (RuleService, DeviceService). So that no alert opens for a rule or device changed
in the seconds before this engine learns of it, an opening reads the rule's version and the
device under a shared lock first and withdraws when either is no longer what was judged.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import Histogram
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from factoryops.alerts.models import Alert, AlertEvent, AlertState
from factoryops.core.db import Database, utcnow
from factoryops.devices.models import Device, DeviceProperty
from factoryops.rules.definition import RuleDefinition
from factoryops.rules.evaluator import CompiledRule, DeviceState
from factoryops.rules.models import Rule
from factoryops.tenancy.models import Factory

log = logging.getLogger(__name__)

EVALUATION_SECONDS = Histogram(
    "factoryops_rule_evaluation_seconds",
    "Time the rule engine takes for one telemetry event whose device has rules: state, decisions, alert writes.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
RETRY_SECONDS = 5.0
SCOPE_RESCAN_SECONDS = 60.0  # how often devices registered since are armed for stale conditions

# A staleness deadline: (factory id, rule id, device id, property, stale_seconds).
TimerKey = tuple[str, str, str, str, int]


@dataclass
class _FactoryRules:
    rules: dict[str, tuple[int, CompiledRule, str]]  # rule id -> (version, compiled, name)
    loaded_at: float
    versions: dict[str, int]  # every enabled rule seen, including one that failed to compile
    timezone: str = "UTC"  # the factory's, which the rules' schedules were compiled in
    # The rules by scope, so that a message meets only the rules that can apply to its device.
    by_device: dict[str, list[tuple[CompiledRule, str]]] = field(default_factory=dict)
    by_type: dict[str, list[tuple[CompiledRule, str]]] = field(default_factory=dict)
    everywhere: list[tuple[CompiledRule, str]] = field(default_factory=list)

    def index(self) -> _FactoryRules:
        for _, compiled, name in self.rules.values():
            scope = compiled.definition.scope
            if scope.kind == "factory":
                self.everywhere.append((compiled, name))
            elif scope.kind == "type":
                self.by_type.setdefault(scope.device_type, []).append((compiled, name))
            else:
                for device_id in set(scope.device_ids):
                    self.by_device.setdefault(device_id, []).append((compiled, name))
        return self

    def for_device(self, device_id: str, device_type: str) -> list[tuple[CompiledRule, str]]:
        return self.by_device.get(device_id, []) + self.by_type.get(device_type, []) + self.everywhere


class _Withdrawn(Exception):
    """The rule or the device changed while an alert was being opened: the opening is rolled back."""


@dataclass
class _OpenAlerts:
    """The factory's open alerts, (rule id, device id) -> alert id, reloaded every refresh_seconds."""

    by_key: dict[tuple[str, str], str]
    loaded_at: float


@dataclass
class Transition:
    kind: str  # opened | resolved
    alert_id: str
    rule_id: str
    device_id: str


class RuleEngine:
    def __init__(
        self,
        db: Database,
        refresh_seconds: float = 2.0,
        on_transition: Callable[[str, Transition], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        tick_seconds: float = 1.0,
        last_value_at: Callable[[str, str, str], datetime | None] | None = None,
    ) -> None:
        """``last_value_at(factory, device, property)``: when the time-series store last got a value.

        The registry's last_seen is written at most once a minute per row, so before a staleness
        timer opens an alert it also asks the store, which holds values another telemetry process
        received up to the writer's batch delay ago.
        """
        self.db = db
        self.last_value_at = last_value_at
        self.refresh_seconds = refresh_seconds
        self.on_transition = on_transition
        self.clock = clock
        self.tick_seconds = tick_seconds
        self._lock = threading.RLock()
        self._factories: dict[str, _FactoryRules] = {}
        self._states: dict[tuple[str, str], DeviceState] = {}
        self._open: dict[str, _OpenAlerts] = {}  # factory -> its open alerts
        self._last_opened: dict[tuple[str, str, str], datetime | None] = {}
        self._last_loaded: set[str] = set()  # factories whose recent alert times are in _last_opened
        self.evaluations = 0
        # staleness timers
        self._deadlines: dict[TimerKey, datetime] = {}
        self._heap: list[tuple[datetime, int, TimerKey]] = []
        self._in_heap: dict[TimerKey, datetime] = {}
        self._seq = itertools.count()
        self._armed: dict[tuple[str, str], int] = {}  # (factory, rule) -> version whose scope is armed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.timer_fired = 0

    # ------------------------------------------------------------------ rules
    def _rules(self, factory_id: str, force: bool = False) -> list[tuple[CompiledRule, str]]:
        now = time.monotonic()
        with self._lock:
            cached = self._factories.get(factory_id)
            if not force and cached is not None and now - cached.loaded_at < self.refresh_seconds:
                return [(c, name) for _, c, name in cached.rules.values()]
        with self.db.factory_session(factory_id) as s:
            versions = dict(s.execute(select(Rule.id, Rule.version).where(Rule.enabled)).all())
            timezone = s.execute(select(Factory.timezone).where(Factory.id == factory_id)).scalar_one_or_none() or "UTC"
            known = cached.rules if cached else {}
            # A new factory time zone moves every schedule's hours: every rule is compiled again.
            moved = cached is not None and cached.timezone != timezone
            changed = [rid for rid, v in versions.items() if moved or rid not in known or known[rid][0] != v]
            fresh = {r.id: r for r in s.execute(select(Rule).where(Rule.id.in_(changed))).scalars()} if changed else {}
        if moved:
            log.info("factory %s: time zone is now %s, its rules are compiled again", factory_id, timezone)
        if cached is not None and not moved and versions == cached.versions:
            # Nothing changed (the common case, every refresh_seconds): the compiled rules and their
            # scope index stand; rebuilding the index of 1,000 rules took ~10 ms on the ingest thread.
            with self._lock:
                cached.loaded_at = now
            return [(c, name) for _, c, name in cached.rules.values()]
        rules: dict[str, tuple[int, CompiledRule, str]] = {}
        redefined: set[str] = set()
        for rule_id, version in versions.items():
            if rule_id in fresh:
                row = fresh[rule_id]
                try:
                    compiled = CompiledRule(rule_id, RuleDefinition.model_validate(row.definition), timezone, version)
                except ValueError as exc:  # a stored rule that no longer validates is skipped, loudly
                    log.error("rule %s of factory %s cannot be compiled: %s", rule_id, factory_id, exc)
                    continue
                rules[rule_id] = (version, compiled, row.name)
                if rule_id in known and known[rule_id][1].definition != compiled.definition:
                    redefined.add(rule_id)
            elif rule_id in known:
                rules[rule_id] = known[rule_id]
        with self._lock:
            self._factories[factory_id] = _FactoryRules(rules, now, versions, timezone).index()
        self._forget(factory_id, set(known) - set(rules), redefined)
        if changed:
            log.info("factory %s: %d rule(s) compiled, %d active", factory_id, len(fresh), len(rules))
        return [(c, name) for _, c, name in rules.values()]

    def _forget(self, factory_id: str, gone: set[str], redefined: set[str]) -> None:
        """Drops what this engine keeps about rules no longer active and rules whose definition changed.

        A rule disabled (or no longer compiling) loses its per-device state and its staleness
        deadlines: enabled again, it starts as a new rule does. A changed definition loses the
        per-device state built for the old conditions (durations, windows, rates; a duration is
        kept by the condition's position in the tree, which now may be another condition), but
        keeps, per property, when a value was last seen, so staleness still counts from it.
        The cooldown's times (when the rule last opened an alert for a device) are kept; the
        disabled rule's open alerts are forgotten (the change resolved them).
        """
        if not gone and not redefined:
            return
        with self._lock:
            for key in [k for k in self._states if k[0] in gone or k[0] in redefined]:
                state = self._states.pop(key)
                if key[0] in redefined:
                    fresh = DeviceState()
                    for prop in {*state.last, *(state._stale_ref or ())}:
                        since = state.silent_since(prop)
                        if since is not None:
                            fresh.stale_ref[prop] = since
                    self._states[key] = fresh
            for timer in [k for k in self._deadlines if k[0] == factory_id and k[1] in gone]:
                del self._deadlines[timer]
                self._in_heap.pop(timer, None)  # its heap entry is skipped when it comes due
            open_alerts = self._open.get(factory_id)
            if open_alerts is not None:  # resolved by the change; one still open is re-read with the rest
                for pair in [p for p in open_alerts.by_key if p[0] in gone]:
                    del open_alerts.by_key[pair]
        log.info(
            "factory %s: state dropped for %d rule(s) no longer active, %d redefined",
            factory_id,
            len(gone),
            len(redefined),
        )

    def _rules_for(self, factory_id: str, device_id: str, device_type: str) -> list[tuple[CompiledRule, str]]:
        """The enabled rules whose scope takes in the device (by index, not by trying every rule)."""
        with self._lock:
            cached = self._factories.get(factory_id)
        if cached is None or time.monotonic() - cached.loaded_at >= self.refresh_seconds:
            self._rules(factory_id)
            with self._lock:
                cached = self._factories.get(factory_id)
        return cached.for_device(device_id, device_type) if cached is not None else []

    def _rule(self, factory_id: str, rule_id: str) -> tuple[CompiledRule, str] | None:
        for rule, name in self._rules(factory_id):
            if rule.rule_id == rule_id:
                return rule, name
        return None

    # ------------------------------------------------------------------ alerts
    def _open_alert(self, factory_id: str, rule_id: str, device_id: str) -> str | None:
        """The open alert of the rule and device, from memory.

        The factory's open alerts are read in one query every ``refresh_seconds`` (so alerts
        acknowledged, resolved or opened elsewhere are seen within seconds); this engine's own
        opens and resolves update the map at once. The database's unique key stays the judge:
        opening one that another process opened meanwhile fails and is then learnt.
        """
        return self._open_map(factory_id).get((rule_id, device_id))

    def _open_map(self, factory_id: str) -> dict[tuple[str, str], str]:
        """(rule id, device id) -> open alert id, re-read when older than ``refresh_seconds``."""
        now = time.monotonic()
        with self._lock:
            cached = self._open.get(factory_id)
        if cached is None or now - cached.loaded_at >= self.refresh_seconds:
            cached = self._load_open(factory_id, now)
        return cached.by_key

    def _load_open(self, factory_id: str, now: float) -> _OpenAlerts:
        with self.db.factory_session(factory_id) as s:
            rows = s.execute(
                select(Alert.rule_id, Alert.device_id, Alert.id, Alert.opened_at).where(Alert.open_key == "open")
            ).all()
        cached = _OpenAlerts({(r, d): i for r, d, i, _ in rows}, now)
        with self._lock:
            self._open[factory_id] = cached
            for rule_id, device_id, _, opened_at in rows:  # opened elsewhere: counts for the cooldown here
                key = (factory_id, rule_id, device_id)
                last = self._last_opened.get(key)
                if last is None or opened_at > last:
                    self._last_opened[key] = opened_at
        return cached

    def _set_open(self, factory_id: str, rule_id: str, device_id: str, alert_id: str | None) -> None:
        with self._lock:
            cached = self._open.get(factory_id)
            if cached is None:
                return
            if alert_id is None:
                cached.by_key.pop((rule_id, device_id), None)
            else:
                cached.by_key[(rule_id, device_id)] = alert_id

    def _last_opened_at(self, factory_id: str, rule_id: str, device_id: str) -> datetime | None:
        """When the rule last opened an alert for the device (for the cooldown).

        The first time a factory is seen, the alerts of the last 7 days (the longest cooldown)
        are read in one grouped query; after that this engine's own opens keep it current.
        """
        self._load_last_opened(factory_id)
        return self._last_opened.get((factory_id, rule_id, device_id))

    def _load_last_opened(self, factory_id: str) -> None:
        if factory_id not in self._last_loaded:
            since = utcnow() - timedelta(days=7, minutes=1)
            with self.db.factory_session(factory_id) as s:
                rows = s.execute(
                    select(Alert.rule_id, Alert.device_id, func.max(Alert.opened_at))
                    .where(Alert.opened_at >= since)
                    .group_by(Alert.rule_id, Alert.device_id)
                ).all()
            with self._lock:
                for rule_id_, device_id_, opened_at in rows:
                    key = (factory_id, rule_id_, device_id_)
                    last = self._last_opened.get(key)
                    if last is None or opened_at > last:
                        self._last_opened[key] = opened_at
                self._last_loaded.add(factory_id)

    def _open_new(
        self, factory_id: str, rule: CompiledRule, name: str, device_id: str, ts: datetime, values: dict[str, float]
    ) -> str | None:
        key = (factory_id, rule.rule_id, device_id)
        try:
            with self.db.factory_session(factory_id) as s:
                if not self._still_current(s, factory_id, rule, device_id):
                    return None
                alert = Alert(
                    rule_id=rule.rule_id,
                    rule_name=name,
                    device_id=device_id,
                    severity=rule.definition.severity,
                    opened_at=ts,
                    trigger_values=values,
                )
                s.add(alert)
                s.flush()
                if s.get_bind().dialect.name == "sqlite" and not self._still_current(s, factory_id, rule, device_id):
                    raise _Withdrawn
                s.add(
                    AlertEvent(
                        alert_id=alert.id, at=ts, kind="opened", actor="rule engine", values=values, announced=False
                    )
                )
                alert_id = alert.id
        except _Withdrawn:
            return None
        except IntegrityError:
            # Another telemetry process opened it a moment ago: that one stands, and is learnt.
            with self.db.factory_session(factory_id) as s:
                other = s.execute(
                    select(Alert.id).where(
                        Alert.rule_id == rule.rule_id, Alert.device_id == device_id, Alert.open_key == "open"
                    )
                ).scalar_one_or_none()
            self._set_open(factory_id, rule.rule_id, device_id, other)
            return None
        self._set_open(factory_id, rule.rule_id, device_id, alert_id)
        with self._lock:
            self._last_opened[key] = ts
        return alert_id

    def _still_current(self, s: Session, factory_id: str, rule: CompiledRule, device_id: str) -> bool:
        """Whether an alert may open: the rule is enabled at the version this engine judged by, and
        the device is enabled and in the rule's scope.

        Rules and devices reach this engine within seconds; meanwhile a person may have disabled or
        narrowed the rule, or disabled or retyped the device, and resolved the alerts nothing can
        judge any more (RuleService/DeviceService). An alert opened now would stay open for ever.
        The rows are read under a shared lock (MariaDB), so a change being saved is waited for and
        a change saved after this finds the alert; on SQLite the caller asks again once it holds
        the write lock. A stale version also makes this engine reload the factory's rules.
        """
        row = s.execute(
            select(Rule.enabled, Rule.version).where(Rule.id == rule.rule_id).with_for_update(read=True)
        ).one_or_none()
        if row is None or not row.enabled or row.version != rule.version:
            with self._lock:
                cached = self._factories.get(factory_id)
                if cached is not None:
                    cached.loaded_at = float("-inf")  # the next event reloads the rules
            return False
        device = s.execute(
            select(Device.enabled, Device.type).where(Device.device_id == device_id).with_for_update(read=True)
        ).one_or_none()
        return device is not None and bool(device.enabled) and rule.applies_to(device_id, device.type)

    def _resolve(
        self, factory_id: str, rule: CompiledRule, device_id: str, alert_id: str, ts: datetime, values: dict[str, float]
    ) -> bool:
        with self.db.factory_session(factory_id) as s:
            done = s.execute(
                update(Alert)
                .where(Alert.id == alert_id, Alert.open_key == "open")
                .values(
                    state=AlertState.resolved,
                    open_key=None,
                    resolved_at=ts,
                    resolved_by="auto-resolve",
                    clear_values=values,
                )
                .execution_options(synchronize_session=False)
            )
            resolved = bool(done.rowcount == 1)  # type: ignore[attr-defined]
            if resolved:
                s.add(
                    AlertEvent(
                        alert_id=alert_id, at=ts, kind="resolved", actor="auto-resolve", values=values, announced=False
                    )
                )
        self._set_open(factory_id, rule.rule_id, device_id, None)
        return resolved

    def _evaluate(
        self, factory_id: str, rule: CompiledRule, name: str, device_id: str, state: DeviceState, now: datetime
    ) -> tuple[Transition | None, str | None]:
        """One decision of ``rule`` for the device at ``now`` (schedule already checked) and its effect."""
        self.evaluations += 1
        open_id = self._open_alert(factory_id, rule.rule_id, device_id)
        last_opened = self._last_opened_at(factory_id, rule.rule_id, device_id)
        with self._lock:
            action = rule.decide(state, now, open_id is not None, last_opened)
            values = rule.trigger_values(state)
        if action == "open":
            alert_id = self._open_new(factory_id, rule, name, device_id, now, values)
            if alert_id:
                return Transition("opened", alert_id, rule.rule_id, device_id), action
        elif (
            action == "resolve"
            and open_id is not None
            and self._resolve(factory_id, rule, device_id, open_id, now, values)
        ):
            return Transition("resolved", open_id, rule.rule_id, device_id), action
        return None, action

    def _announce(self, factory_id: str, transitions: list[Transition]) -> None:
        if self.on_transition:
            for t in transitions:
                self.on_transition(factory_id, t)

    # ------------------------------------------------------------------ the event
    def on_event(
        self, factory_id: str, device_id: str, device_type: str, ts: datetime, values: dict[str, float]
    ) -> list[Transition]:
        rules = self._rules_for(factory_id, device_id, device_type)
        if not rules:
            return []
        with EVALUATION_SECONDS.time():
            return self._decide(factory_id, device_id, ts, values, rules)

    def _decide(
        self,
        factory_id: str,
        device_id: str,
        ts: datetime,
        values: dict[str, float],
        rules: list[tuple[CompiledRule, str]],
    ) -> list[Transition]:
        open_alerts = self._open_map(factory_id)  # current to refresh_seconds (one query per refresh)
        self._load_last_opened(factory_id)  # the cooldown times (one query per factory, once)
        last_opened = self._last_opened
        todo: list[tuple[CompiledRule, str, str, str | None, dict[str, float]]] = []
        states = self._states
        evaluated = 0
        with self._lock:  # one lock per message; decisions from memory, the database after it
            for rule, name in rules:
                if rule.properties.isdisjoint(values):
                    continue
                key = (rule.rule_id, device_id)  # the key of the state and of the open alert
                state = states.get(key)
                if state is None:
                    state = states[key] = DeviceState()
                rule.observe(state, ts, values)
                if rule.stale_watch:
                    for prop, seconds in rule.stale_watch:
                        if prop in values:
                            self._arm((factory_id, key[0], device_id, prop, seconds), ts + timedelta(seconds=seconds))
                if rule.scheduled and not rule.in_schedule(ts):
                    continue
                evaluated += 1
                open_id = open_alerts.get(key)
                if open_id is None:  # the cooldown matters only for an alert that would open
                    action = rule.decide(state, ts, False, last_opened.get((factory_id, key[0], device_id)))
                else:
                    action = rule.decide(state, ts, True, None)
                if action == "open" or action == "resolve":
                    todo.append((rule, name, action, open_id, rule.trigger_values(state)))
            self.evaluations += evaluated
        transitions: list[Transition] = []
        for rule, name, decided, open_id, trigger in todo:
            if decided == "open":
                alert_id = self._open_new(factory_id, rule, name, device_id, ts, trigger)
                if alert_id:
                    transitions.append(Transition("opened", alert_id, rule.rule_id, device_id))
            elif open_id is not None and self._resolve(factory_id, rule, device_id, open_id, ts, trigger):
                transitions.append(Transition("resolved", open_id, rule.rule_id, device_id))
        self._announce(factory_id, transitions)
        return transitions

    # ------------------------------------------------------------------ staleness timers
    def _arm(self, key: TimerKey, deadline: datetime) -> None:
        """Sets the key's deadline (caller holds the lock). The heap keeps one entry per key: a later
        deadline is picked up when the earlier entry comes due, so re-arming on every value costs a
        dict write, not a heap push."""
        self._deadlines[key] = deadline
        queued = self._in_heap.get(key)
        if queued is None or deadline < queued:
            self._in_heap[key] = deadline
            heapq.heappush(self._heap, (deadline, next(self._seq), key))

    def next_deadline(self) -> datetime | None:
        with self._lock:
            return self._heap[0][0] if self._heap else None

    def pending_deadlines(self) -> dict[TimerKey, datetime]:
        with self._lock:
            return dict(self._deadlines)

    def _due(self, now: datetime) -> list[TimerKey]:
        due: list[TimerKey] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                at, _, key = heapq.heappop(self._heap)
                if self._in_heap.get(key) != at:
                    continue  # superseded by an earlier entry of the same key
                del self._in_heap[key]
                deadline = self._deadlines.get(key)
                if deadline is None:
                    continue
                if deadline > now:  # re-armed by a value since this entry was queued
                    self._in_heap[key] = deadline
                    heapq.heappush(self._heap, (deadline, next(self._seq), key))
                    continue
                del self._deadlines[key]
                due.append(key)
        return due

    def check_deadlines(self, now: datetime | None = None) -> list[Transition]:
        """Evaluates every rule whose staleness deadline has passed; the timer thread calls this."""
        now = now or self.clock()
        by_factory: dict[str, list[Transition]] = {}
        for key in self._due(now):
            try:
                transition = self._fire(key, now)
            except Exception:  # the database may be restarting: look again shortly
                log.exception("staleness check %s failed; retrying in %ss", key, RETRY_SECONDS)
                with self._lock:
                    if key not in self._deadlines:
                        self._arm(key, now + timedelta(seconds=RETRY_SECONDS))
                continue
            if transition is not None:
                by_factory.setdefault(key[0], []).append(transition)
        for factory_id, transitions in by_factory.items():
            self._announce(factory_id, transitions)
        return [t for ts in by_factory.values() for t in ts]

    def _fire(self, key: TimerKey, now: datetime) -> Transition | None:
        factory_id, rule_id, device_id, prop, seconds = key
        found = self._rule(factory_id, rule_id)
        if found is None or (prop, seconds) not in found[0].stale_watch:
            return None  # the rule was disabled or changed since the deadline was armed
        rule, name = found
        # The registry's view across processes: is the device still there, and when did another
        # telemetry process last receive this property? One read per deadline, not per message.
        with self.db.factory_session(factory_id) as s:
            device = s.execute(select(Device.type, Device.enabled).where(Device.device_id == device_id)).one_or_none()
            seen_elsewhere = s.execute(
                select(DeviceProperty.last_seen).where(
                    DeviceProperty.device_id == device_id, DeviceProperty.property_name == prop
                )
            ).scalar_one_or_none()
        if device is None or not device.enabled or not rule.applies_to(device_id, device.type):
            return None
        if self.last_value_at is not None:
            try:
                stored = self.last_value_at(factory_id, device_id, prop)
            except Exception as exc:  # the store may be down: the registry's view has to do
                log.warning("staleness check %s: the time-series store did not answer: %s", key, exc)
                stored = None
            if stored is not None and (seen_elsewhere is None or stored > seen_elsewhere):
                seen_elsewhere = stored
        with self._lock:
            state = self._states.setdefault((rule_id, device_id), DeviceState())
            if seen_elsewhere is not None and (prop not in state.stale_ref or state.stale_ref[prop] < seen_elsewhere):
                state.stale_ref[prop] = seen_elsewhere
            deadline = rule.stale_deadline(state, prop, seconds)
            if deadline is None:
                return None
            if deadline > now:  # a value arrived in the meantime (here or in another process)
                self._arm(key, deadline)
                return None
        self.timer_fired += 1
        if not rule.in_schedule(now):
            # Outside the schedule nothing happens; look again when the schedule starts.
            resume = rule.next_active(now)
            if resume is not None:
                with self._lock:
                    self._arm(key, resume)
            return None
        transition, action = self._evaluate(factory_id, rule, name, device_id, state, now)
        if action == "cooldown":
            last = self._last_opened.get((factory_id, rule_id, device_id))
            if last is not None:  # still silent when the cooldown ends: that moment may open one
                with self._lock:
                    self._arm(key, last + timedelta(seconds=rule.definition.cooldown_seconds))
        return transition

    def refresh_all(self, rescan: bool = False) -> None:
        """Loads the rules of every factory that has enabled ones (one query of ids and versions
        for the whole platform), and arms the scope of rules with stale conditions not armed yet.
        ``rescan`` also arms devices registered since (the timer thread does it every minute)."""
        with self.db.unscoped_session() as s:  # platform-wide: ids and versions of enabled rules only
            rows = s.execute(select(Rule.factory_id, Rule.id, Rule.version).where(Rule.enabled)).all()
        wanted: dict[str, dict[str, int]] = {}
        for factory_id, rule_id, version in rows:
            wanted.setdefault(factory_id, {})[rule_id] = version
        for factory_id in set(wanted) | set(self._factories):
            with self._lock:
                cached = self._factories.get(factory_id)
                have = cached.versions if cached else None
            try:
                self.watch_factory(factory_id, reload=have != wanted.get(factory_id, {}), rescan=rescan)
            except Exception:
                log.exception("could not refresh the rules of factory %s", factory_id)

    def watch_factory(self, factory_id: str, reload: bool = True, rescan: bool = False) -> None:
        """(Re)loads one factory's rules and arms the staleness timers of its devices in scope."""
        if reload:
            self._rules(factory_id, force=True)
        self._arm_scopes(factory_id, rescan)

    def _arm_scopes(self, factory_id: str, rescan: bool = False) -> None:
        """Arms every device in the scope of a new or changed rule with stale conditions, counting
        silence from its last value here or from now; a rescan arms devices never watched yet."""
        with self._lock:
            cached = self._factories.get(factory_id)
            active = cached.rules if cached else {}
            rules = list(active.items())
            for gone in [k for k in self._armed if k[0] == factory_id and k[1] not in active]:
                del self._armed[gone]
        todo = [
            (rule_id, self._armed.get((factory_id, rule_id)) != version, version, compiled)
            for rule_id, (version, compiled, _) in rules
            if compiled.stale_watch and (rescan or self._armed.get((factory_id, rule_id)) != version)
        ]
        if not todo:
            return
        with self.db.factory_session(factory_id) as s:
            devices = s.execute(select(Device.device_id, Device.type).where(Device.enabled)).all()
        now = self.clock()
        armed = 0
        for rule_id, changed, version, compiled in todo:
            with self._lock:
                for device_id, device_type in devices:
                    if not compiled.applies_to(device_id, device_type):
                        continue
                    if not changed and (rule_id, device_id) in self._states:
                        continue  # watched already: its values (or its first arming) set the deadline
                    state = self._states.setdefault((rule_id, device_id), DeviceState())
                    for prop, seconds in compiled.stale_watch:
                        key = (factory_id, rule_id, device_id, prop, seconds)
                        if key in self._deadlines:
                            continue
                        if state.silent_since(prop) is None:
                            state.stale_ref[prop] = now
                        deadline = compiled.stale_deadline(state, prop, seconds)
                        if deadline is not None:
                            self._arm(key, deadline)
                            armed += 1
                self._armed[(factory_id, rule_id)] = version
        if armed:
            log.info("factory %s: %d staleness timer(s) armed", factory_id, armed)

    def _run(self) -> None:
        next_refresh = 0.0
        next_rescan = time.monotonic() + SCOPE_RESCAN_SECONDS
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + max(self.refresh_seconds, 0.5)
                    rescan = time.monotonic() >= next_rescan
                    if rescan:
                        next_rescan = time.monotonic() + SCOPE_RESCAN_SECONDS
                    self.refresh_all(rescan)
                self.check_deadlines()
            except Exception as exc:  # the database may be restarting: keep the timers, try again
                log.warning("rule engine timers: %s; retrying", exc)
            wait = self.tick_seconds
            upcoming = self.next_deadline()
            if upcoming is not None:
                wait = min(wait, max((upcoming - self.clock()).total_seconds(), 0.0))
            self._stop.wait(max(wait, 0.01))

    def start(self) -> None:
        """Starts the staleness timer thread (the telemetry service does this)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rule-timers", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
