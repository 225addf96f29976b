"""A rule compiled for evaluation: no I/O, no history scans - only the state it keeps itself.

The engine keeps one :class:`DeviceState` per (rule, device), feeds it every new value with
:meth:`CompiledRule.observe`, and asks :meth:`CompiledRule.triggered` / :meth:`CompiledRule.cleared`.
Results are three-valued: a condition on a property the device has not reported yet is unknown
(None), which neither triggers nor clears.
"""

from __future__ import annotations

import operator as op
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from factoryops.rules.definition import Condition, Group, Node, RuleDefinition, Schedule, properties_of

Sample = tuple[datetime, float]
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": op.gt,
    ">=": op.ge,
    "<": op.lt,
    "<=": op.le,
    "==": op.eq,
    "!=": op.ne,
}


class DeviceState:
    """What a rule remembers about one device.

    The engine holds one per rule and device (40 rules on 10,000 devices: 400,000 of them), so it
    has slots and creates its dictionaries only when a rule needs them: ``previous`` for rates,
    ``windows`` for windowed aggregates, ``holds_since`` for durations, ``stale_ref`` for staleness.
    """

    __slots__ = ("_holds_since", "_previous", "_stale_ref", "_windows", "last")

    def __init__(self) -> None:
        self.last: dict[str, Sample] = {}
        self._previous: dict[str, Sample] | None = None
        self._windows: dict[tuple[str, int], deque[Sample]] | None = None
        self._holds_since: dict[int, datetime] | None = None
        # Since when silence of a property counts when no value of it was seen here: the moment the
        # engine began watching the device, or the last value another telemetry process received.
        self._stale_ref: dict[str, datetime] | None = None

    @property
    def previous(self) -> dict[str, Sample]:
        if self._previous is None:
            self._previous = {}
        return self._previous

    @property
    def windows(self) -> dict[tuple[str, int], deque[Sample]]:
        if self._windows is None:
            self._windows = {}
        return self._windows

    @property
    def holds_since(self) -> dict[int, datetime]:
        if self._holds_since is None:
            self._holds_since = {}
        return self._holds_since

    @property
    def stale_ref(self) -> dict[str, datetime]:
        if self._stale_ref is None:
            self._stale_ref = {}
        return self._stale_ref

    def silent_since(self, prop: str) -> datetime | None:
        """The latest moment a value of ``prop`` is known to have arrived (or watching began)."""
        seen = self.last.get(prop)
        ref = self._stale_ref.get(prop) if self._stale_ref else None
        if seen is None:
            return ref
        return seen[0] if ref is None or seen[0] >= ref else ref


# What the engine does with a rule at a moment: open an alert, resolve the open one, nothing
# because the rule holds but the cooldown forbids a new alert, or nothing.
Action = Literal["open", "resolve", "cooldown"] | None


def _and(results: list[bool | None]) -> bool | None:
    if any(r is False for r in results):
        return False
    return None if any(r is None for r in results) else True


def _or(results: list[bool | None]) -> bool | None:
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def in_schedule(schedule: Schedule | None, moment: datetime, tz: ZoneInfo) -> bool:
    """Whether ``moment`` falls in the schedule, in the factory's local time.

    A window that ends before it starts runs past midnight; its part after midnight belongs to
    the day it started on (a Friday 22:00-06:00 window covers Saturday 03:00).
    """
    if schedule is None:
        return True
    local = moment.astimezone(tz)
    day = local.weekday()
    if not schedule.windows:
        return day in schedule.days
    now = local.time()
    for window in schedule.windows:
        start, end = time.fromisoformat(window.start), time.fromisoformat(window.end)
        if start < end:
            if day in schedule.days and start <= now < end:
                return True
        elif (day in schedule.days and now >= start) or ((day - 1) % 7 in schedule.days and now < end):
            return True
    return False


def next_in_schedule(schedule: Schedule | None, moment: datetime, tz: ZoneInfo) -> datetime | None:
    """The first moment at or after ``moment`` that falls in the schedule (None: not within 8 days).

    A schedule only changes at the start of a window or at local midnight, so those are the
    candidates; each is checked with :func:`in_schedule` (which also settles DST gaps).
    """
    if in_schedule(schedule, moment, tz):
        return moment
    assert schedule is not None
    local_day = moment.astimezone(tz).date()
    starts = [time(0, 0)] + [time.fromisoformat(w.start) for w in schedule.windows]
    candidates: list[datetime] = []
    for offset in range(9):
        day = local_day + timedelta(days=offset)
        for start in starts:
            candidate = _local(day, start, tz)
            if candidate > moment and in_schedule(schedule, candidate, tz):
                candidates.append(candidate)
        if candidates:
            return min(candidates)
    return None


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz)


class CompiledRule:
    def __init__(self, rule_id: str, definition: RuleDefinition, timezone: str = "UTC", version: int = 0) -> None:
        self.rule_id = rule_id
        self.version = version  # the rule's stored version (the engine's; 0 for a backtest's definition)
        self.definition = definition
        self.tz = ZoneInfo(timezone)
        self.properties = properties_of(definition.condition) | (
            properties_of(definition.clear) if definition.clear else set()
        )
        self._ids: dict[int, int] = {}
        self._number(definition.condition)
        if definition.clear is not None:
            self._number(definition.clear)
        self._windows = self._collect_windows()
        self._rate_properties = frozenset(c.property for c in self._conditions() if c.rate is not None)
        scope = definition.scope
        self._device_ids = frozenset(scope.device_ids)
        self.scheduled = definition.schedule is not None  # without a schedule: always active
        self.stale_checks = [c for c in self._conditions() if c.operator == "stale"]
        # (property, stale_seconds) of every 'stale' condition: what the staleness timers watch.
        self.stale_watch: list[tuple[str, int]] = sorted(
            {(c.property, c.stale_seconds) for c in self.stale_checks if c.stale_seconds is not None}
        )

    # ------------------------------------------------------------------ structure
    def _number(self, node: Node) -> None:
        self._ids[id(node)] = len(self._ids)
        if isinstance(node, Group):
            for child in node.conditions:
                self._number(child)

    def _conditions(self) -> list[Condition]:
        out: list[Condition] = []

        def walk(node: Node) -> None:
            if isinstance(node, Condition):
                out.append(node)
            else:
                for child in node.conditions:
                    walk(child)

        walk(self.definition.condition)
        if self.definition.clear is not None:
            walk(self.definition.clear)
        return out

    def conditions(self) -> list[Condition]:
        """Every condition of the trigger and the clear tree."""
        return self._conditions()

    def _collect_windows(self) -> dict[str, int]:
        longest: dict[str, int] = {}
        for c in self._conditions():
            if c.window is not None:
                longest[c.property] = max(longest.get(c.property, 0), c.window.seconds)
        return longest

    def applies_to(self, device_id: str, device_type: str) -> bool:
        scope = self.definition.scope
        if scope.kind == "factory":
            return True
        if scope.kind == "type":
            return device_type == scope.device_type
        return device_id in self._device_ids

    def in_schedule(self, moment: datetime) -> bool:
        return in_schedule(self.definition.schedule, moment, self.tz)

    # ------------------------------------------------------------------ state
    def observe(self, state: DeviceState, ts: datetime, values: dict[str, float]) -> None:
        for name in self.properties:
            if name not in values:
                continue
            value = values[name]
            if state._stale_ref:
                state._stale_ref.pop(name, None)  # a value supersedes the moment silence was counted from
            if name in self._rate_properties and name in state.last:
                state.previous[name] = state.last[name]
            state.last[name] = (ts, value)
            seconds = self._windows.get(name)
            if seconds:
                window = state.windows.setdefault((name, seconds), deque())
                window.append((ts, value))
                cutoff = ts - timedelta(seconds=seconds)
                while window and window[0][0] <= cutoff:
                    window.popleft()

    # ------------------------------------------------------------------ evaluation
    def _measure(self, c: Condition, state: DeviceState, now: datetime) -> float | None:
        if c.property not in state.last:
            return None
        if c.window is not None:
            window = state.windows.get((c.property, self._windows[c.property]), deque())
            cutoff = now - timedelta(seconds=c.window.seconds)
            values = [v for t, v in window if t > cutoff]
            if not values:
                return None
            if c.window.fn == "mean":
                return sum(values) / len(values)
            return min(values) if c.window.fn == "min" else max(values)
        if c.rate is not None:
            if c.property not in state.previous:
                return None
            (t1, v1), (t0, v0) = state.last[c.property], state.previous[c.property]
            elapsed = (t1 - t0).total_seconds()
            return None if elapsed <= 0 else (v1 - v0) / elapsed * c.rate.per_seconds
        return state.last[c.property][1]

    def _condition(self, c: Condition, state: DeviceState, now: datetime) -> bool | None:
        if c.operator == "stale":
            since = state.silent_since(c.property)
            if since is None:
                return None
            assert c.stale_seconds is not None
            return (now - since).total_seconds() >= c.stale_seconds
        x = self._measure(c, state, now)
        if x is None:
            return None
        assert c.value is not None
        if c.operator == "between":
            assert c.value2 is not None
            holds = c.value <= x <= c.value2
        elif c.operator == "outside":
            assert c.value2 is not None
            holds = x < c.value or x > c.value2
        else:
            holds = _COMPARE[c.operator](x, c.value)
        if not c.for_seconds:
            return holds
        key = self._ids[id(c)]
        if not holds:
            state.holds_since.pop(key, None)
            return False
        since = state.holds_since.setdefault(key, state.last[c.property][0])
        return (now - since).total_seconds() >= c.for_seconds

    def _node(self, node: Node, state: DeviceState, now: datetime) -> bool | None:
        if isinstance(node, Condition):
            return self._condition(node, state, now)
        results = [self._node(child, state, now) for child in node.conditions]
        return _and(results) if node.op == "and" else _or(results)

    def triggered(self, state: DeviceState, now: datetime) -> bool | None:
        return self._node(self.definition.condition, state, now)

    def cleared(self, state: DeviceState, now: datetime) -> bool:
        """Whether an open alert may resolve: the clear condition holds, or (without one) the trigger is false."""
        if self.definition.clear is not None:
            return self._node(self.definition.clear, state, now) is True
        return self.triggered(state, now) is False

    def decide(self, state: DeviceState, now: datetime, is_open: bool, last_opened: datetime | None) -> Action:
        """The engine's decision at ``now`` (the schedule already checked), shared by the live engine,
        its staleness timers and the backtest, so that all three behave alike.

        The trigger holds, no alert is open and the last one opened at least ``cooldown_seconds``
        ago: open. An alert is open, auto-resolve is on and the rule has cleared (the clear
        condition holds, or without one the trigger is false): resolve.
        """
        verdict = self.triggered(state, now)
        if verdict is True and not is_open:
            cooldown = timedelta(seconds=self.definition.cooldown_seconds)
            if last_opened is not None and now - last_opened < cooldown:
                return "cooldown"
            return "open"
        if is_open and self.definition.auto_resolve and self.cleared(state, now):
            return "resolve"
        return None

    def trigger_values(self, state: DeviceState) -> dict[str, float]:
        """The last value of each of the rule's properties, as kept on the alert."""
        return {p: state.last[p][1] for p in sorted(self.properties) if p in state.last}

    def stale_deadline(self, state: DeviceState, prop: str, seconds: int) -> datetime | None:
        """When ``prop`` will have been silent for ``seconds`` (None: nothing to count from)."""
        since = state.silent_since(prop)
        return None if since is None else since + timedelta(seconds=seconds)

    def next_active(self, moment: datetime) -> datetime | None:
        return next_in_schedule(self.definition.schedule, moment, self.tz)
