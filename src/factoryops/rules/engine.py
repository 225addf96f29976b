"""The rule engine (spec 6): on every telemetry event, the device's active rules, from memory.

For each rule that applies to the device: feed the new values to the rule's state, check the
schedule, evaluate, then TRUE and no open alert and not in cooldown -> open an alert; FALSE (or
the clear condition, for hysteresis) with auto-resolve -> resolve the open alert. No history is
scanned and nothing is polled per event. Compiled rules are refreshed from the database every
``refresh_seconds`` (a cheap query of ids and versions), so a change takes effect in every
telemetry process within seconds. One open alert per rule and device is enforced by the
database's unique key, not by this process's memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from factoryops.alerts.models import Alert, AlertEvent, AlertState
from factoryops.core.db import Database
from factoryops.rules.definition import RuleDefinition
from factoryops.rules.evaluator import CompiledRule, DeviceState
from factoryops.rules.models import Rule
from factoryops.tenancy.models import Factory

log = logging.getLogger(__name__)

OPEN_CACHE_SECONDS = 5.0


@dataclass
class _FactoryRules:
    rules: dict[str, tuple[int, CompiledRule, str]]  # rule id -> (version, compiled, name)
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
    ) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self.on_transition = on_transition
        self._lock = threading.RLock()
        self._factories: dict[str, _FactoryRules] = {}
        self._states: dict[tuple[str, str], DeviceState] = {}
        self._open: dict[tuple[str, str, str], tuple[str | None, float]] = {}  # -> (alert id, checked at)
        self._last_opened: dict[tuple[str, str, str], datetime | None] = {}
        self.evaluations = 0

    # ------------------------------------------------------------------ rules
    def _rules(self, factory_id: str) -> list[tuple[CompiledRule, str]]:
        now = time.monotonic()
        with self._lock:
            cached = self._factories.get(factory_id)
            if cached is not None and now - cached.loaded_at < self.refresh_seconds:
                return [(c, name) for _, c, name in cached.rules.values()]
        with self.db.factory_session(factory_id) as s:
            versions = dict(s.execute(select(Rule.id, Rule.version).where(Rule.enabled)).all())
            known = cached.rules if cached else {}
            changed = [rid for rid, v in versions.items() if rid not in known or known[rid][0] != v]
            timezone = s.execute(select(Factory.timezone).where(Factory.id == factory_id)).scalar_one_or_none()
            fresh = {r.id: r for r in s.execute(select(Rule).where(Rule.id.in_(changed))).scalars()} if changed else {}
        rules: dict[str, tuple[int, CompiledRule, str]] = {}
        for rule_id, version in versions.items():
            if rule_id in fresh:
                row = fresh[rule_id]
                try:
                    compiled = CompiledRule(rule_id, RuleDefinition.model_validate(row.definition), timezone or "UTC")
                except ValueError as exc:  # a stored rule that no longer validates is skipped, loudly
                    log.error("rule %s of factory %s cannot be compiled: %s", rule_id, factory_id, exc)
                    continue
                rules[rule_id] = (version, compiled, row.name)
            elif rule_id in known:
                rules[rule_id] = known[rule_id]
        with self._lock:
            self._factories[factory_id] = _FactoryRules(rules, now)
        if changed:
            log.info("factory %s: %d rule(s) compiled, %d active", factory_id, len(fresh), len(rules))
        return [(c, name) for _, c, name in rules.values()]

    # ------------------------------------------------------------------ alerts
    def _open_alert(self, factory_id: str, rule_id: str, device_id: str) -> str | None:
        key = (factory_id, rule_id, device_id)
        cached = self._open.get(key)
        if cached is not None and time.monotonic() - cached[1] < OPEN_CACHE_SECONDS:
            return cached[0]
        with self.db.factory_session(factory_id) as s:
            alert_id = s.execute(
                select(Alert.id).where(Alert.rule_id == rule_id, Alert.device_id == device_id, Alert.open_key == "open")
            ).scalar_one_or_none()
            if key not in self._last_opened:
                self._last_opened[key] = s.execute(
                    select(func.max(Alert.opened_at)).where(Alert.rule_id == rule_id, Alert.device_id == device_id)
                ).scalar_one_or_none()
        self._open[key] = (alert_id, time.monotonic())
        return alert_id

    def _open_new(
        self, factory_id: str, rule: CompiledRule, name: str, device_id: str, ts: datetime, state: DeviceState
    ) -> str | None:
        key = (factory_id, rule.rule_id, device_id)
        last = self._last_opened.get(key)
        cooldown = timedelta(seconds=rule.definition.cooldown_seconds)
        if last is not None and ts - last < cooldown:
            return None
        values = {p: state.last[p][1] for p in rule.properties if p in state.last}
        try:
            with self.db.factory_session(factory_id) as s:
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
                s.add(AlertEvent(alert_id=alert.id, at=ts, kind="opened", actor="rule engine", values=values))
                alert_id = alert.id
        except IntegrityError:
            # Another telemetry process opened it a moment ago: that one stands.
            self._open.pop(key, None)
            return None
        self._open[key] = (alert_id, time.monotonic())
        self._last_opened[key] = ts
        return alert_id

    def _resolve(
        self, factory_id: str, rule: CompiledRule, device_id: str, alert_id: str, ts: datetime, state: DeviceState
    ) -> bool:
        values = {p: state.last[p][1] for p in rule.properties if p in state.last}
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
                s.add(AlertEvent(alert_id=alert_id, at=ts, kind="resolved", actor="auto-resolve", values=values))
        self._open[(factory_id, rule.rule_id, device_id)] = (None, time.monotonic())
        return resolved

    # ------------------------------------------------------------------ the event
    def on_event(
        self, factory_id: str, device_id: str, device_type: str, ts: datetime, values: dict[str, float]
    ) -> list[Transition]:
        transitions: list[Transition] = []
        for rule, name in self._rules(factory_id):
            if not rule.applies_to(device_id, device_type) or not (rule.properties & values.keys()):
                continue
            with self._lock:
                state = self._states.setdefault((rule.rule_id, device_id), DeviceState())
                rule.observe(state, ts, values)
            if not rule.in_schedule(ts):
                continue
            self.evaluations += 1
            verdict = rule.triggered(state, ts)
            open_id = self._open_alert(factory_id, rule.rule_id, device_id)
            if verdict is True and open_id is None:
                alert_id = self._open_new(factory_id, rule, name, device_id, ts, state)
                if alert_id:
                    transitions.append(Transition("opened", alert_id, rule.rule_id, device_id))
            elif (
                open_id is not None
                and rule.definition.auto_resolve
                and rule.cleared(state, ts)
                and self._resolve(factory_id, rule, device_id, open_id, ts, state)
            ):
                transitions.append(Transition("resolved", open_id, rule.rule_id, device_id))
        if self.on_transition:
            for t in transitions:
                self.on_transition(factory_id, t)
        return transitions
