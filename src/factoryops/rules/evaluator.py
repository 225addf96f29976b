"""A rule compiled for evaluation: no I/O, no history scans - only the state it keeps itself.

The engine keeps one :class:`DeviceState` per (rule, device), feeds it every new value with
:meth:`CompiledRule.observe`, and asks :meth:`CompiledRule.triggered` / :meth:`CompiledRule.cleared`.
Results are three-valued: a condition on a property the device has not reported yet is unknown
(None), which neither triggers nor clears.
"""

from __future__ import annotations

import operator as op
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import Literal
from zoneinfo import ZoneInfo

from factoryops.rules.definition import Condition, Group, Node, RuleDefinition, Schedule, properties_of

Sample = tuple[datetime, float]
Verdict = bool | None
Check = Callable[["DeviceState", datetime], Verdict]
Measure = Callable[["DeviceState", datetime], float | None]


class Window:
    """The samples of one property inside one window length, oldest first: times and values apart,
    so that the aggregate is one builtin ``sum``/``min``/``max`` over floats."""

    __slots__ = ("times", "values")

    def __init__(self) -> None:
        self.times: deque[datetime] = deque()
        self.values: deque[float] = deque()

    def add(self, ts: datetime, value: float) -> None:
        times = self.times
        if not times or ts >= times[-1]:
            times.append(ts)
            self.values.append(value)
            return
        at = bisect_right(times, ts)  # a late sample (out of order): keep the times sorted
        times.insert(at, ts)
        self.values.insert(at, value)

    def drop_until(self, cutoff: datetime) -> None:
        """Forgets the samples at or before ``cutoff``."""
        times, values = self.times, self.values
        while times and times[0] <= cutoff:
            times.popleft()
            values.popleft()


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
    ``windows`` for windowed aggregates (per property and window length: the times and the values
    inside it, oldest first), ``holds_since`` for durations, ``stale_ref`` for staleness.
    """

    __slots__ = ("_holds_since", "_previous", "_stale_ref", "_windows", "last")

    def __init__(self) -> None:
        self.last: dict[str, Sample] = {}
        self._previous: dict[str, Sample] | None = None
        self._windows: dict[tuple[str, int], Window] | None = None
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
    def windows(self) -> dict[tuple[str, int], Window]:
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


def in_schedule(schedule: Schedule | None, moment: datetime, tz: ZoneInfo) -> bool:
    """Whether ``moment`` falls in the schedule, in the factory's local time.

    A window that ends before it starts runs past midnight; its part after midnight belongs to
    the day it started on (a Friday 22:00-06:00 window covers Saturday 03:00).
    """
    if schedule is None:
        return True
    return _ParsedSchedule(schedule).holds(_local_time(moment, tz))


# The last moment turned into each zone's local time: every rule of a factory asks about the same
# moment (the message's), so the conversion is made once per message, not once per rule.
_LOCAL: dict[ZoneInfo, tuple[datetime, datetime]] = {}


def _local_time(moment: datetime, tz: ZoneInfo) -> datetime:
    cached = _LOCAL.get(tz)
    if cached is not None and cached[0] is moment:
        return cached[1]
    local = moment.astimezone(tz)
    _LOCAL[tz] = (moment, local)
    return local


class _ParsedSchedule:
    """A schedule with its days as a set and its windows as times, parsed once."""

    __slots__ = ("days", "windows")

    def __init__(self, schedule: Schedule) -> None:
        self.days = frozenset(schedule.days)
        self.windows = [(time.fromisoformat(w.start), time.fromisoformat(w.end)) for w in schedule.windows]

    def holds(self, local: datetime) -> bool:
        day = local.weekday()
        days = self.days
        if not self.windows:
            return day in days
        now = local.time()
        for start, end in self.windows:
            if start < end:
                if day in days and start <= now < end:
                    return True
            elif (day in days and now >= start) or ((day - 1) % 7 in days and now < end):
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
    """A rule made ready for evaluation: its trigger and clear trees compiled to closures once, so a
    message costs a few dictionary reads and comparisons per condition (``bench/rule_eval.py``)."""

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
        conditions = self._conditions()
        windows: dict[str, set[int]] = {}
        for c in conditions:
            if c.window is not None:
                windows.setdefault(c.property, set()).add(c.window.seconds)
        rates = {c.property for c in conditions if c.rate is not None}
        # what observe() does with each property: keep the previous value (rates), feed windows
        self._plan = [
            (
                name,
                name in rates,
                tuple(((name, sec), timedelta(seconds=sec)) for sec in sorted(windows.get(name, ()))),
            )
            for name in sorted(self.properties)
        ]
        scope = definition.scope
        self._device_ids = frozenset(scope.device_ids)
        self.scheduled = definition.schedule is not None  # without a schedule: always active
        self._schedule = _ParsedSchedule(definition.schedule) if definition.schedule is not None else None
        self.stale_checks = [c for c in conditions if c.operator == "stale"]
        # (property, stale_seconds) of every 'stale' condition: what the staleness timers watch.
        self.stale_watch: list[tuple[str, int]] = sorted(
            {(c.property, c.stale_seconds) for c in self.stale_checks if c.stale_seconds is not None}
        )
        self._cooldown = timedelta(seconds=definition.cooldown_seconds)
        self._auto_resolve = definition.auto_resolve
        self._trigger = self._compile(definition.condition)
        self._clear = self._compile(definition.clear) if definition.clear is not None else None

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

    def applies_to(self, device_id: str, device_type: str) -> bool:
        scope = self.definition.scope
        if scope.kind == "factory":
            return True
        if scope.kind == "type":
            return device_type == scope.device_type
        return device_id in self._device_ids

    def in_schedule(self, moment: datetime) -> bool:
        schedule = self._schedule
        return schedule is None or schedule.holds(_local_time(moment, self.tz))

    # ------------------------------------------------------------------ state
    def observe(self, state: DeviceState, ts: datetime, values: dict[str, float]) -> None:
        last = state.last
        for name, keeps_previous, windows in self._plan:
            value = values.get(name)
            if value is None:
                continue
            if state._stale_ref:
                state._stale_ref.pop(name, None)  # a value supersedes the moment silence was counted from
            if keeps_previous:
                before = last.get(name)
                if before is not None:
                    state.previous[name] = before
            last[name] = (ts, value)
            if windows:
                kept = state.windows
                for key, length in windows:
                    window = kept.get(key)
                    if window is None:
                        window = kept[key] = Window()
                    window.add(ts, value)
                    window.drop_until(ts - length)

    # ------------------------------------------------------------------ compiling
    def _compile(self, node: Node) -> Check:
        """The node as a function of (state, now): True, False, or None (unknown). Every child of a
        group is evaluated, as durations ('for_seconds') keep their state on each evaluation."""
        if isinstance(node, Condition):
            return self._compile_condition(node)
        children = tuple(self._compile(child) for child in node.conditions)
        if node.op == "and":

            def all_of(state: DeviceState, now: datetime) -> Verdict:
                result: Verdict = True
                for check in children:
                    verdict = check(state, now)
                    if verdict is False:
                        result = False
                    elif verdict is None and result is True:
                        result = None
                return result

            return all_of

        def any_of(state: DeviceState, now: datetime) -> Verdict:
            result: Verdict = False
            for check in children:
                verdict = check(state, now)
                if verdict is True:
                    result = True
                elif verdict is None and result is False:
                    result = None
            return result

        return any_of

    def _compile_measure(self, c: Condition) -> Measure:
        """What a condition compares: the last value, a windowed aggregate, or a rate."""
        prop = c.property
        if c.window is not None:
            key = (prop, c.window.seconds)
            length = timedelta(seconds=c.window.seconds)
            aggregate: Callable[[deque[float]], float] = (
                (lambda values: sum(values) / len(values))
                if c.window.fn == "mean"
                else (min if c.window.fn == "min" else max)
            )

            def windowed(state: DeviceState, now: datetime) -> float | None:
                if prop not in state.last:
                    return None
                window = state._windows.get(key) if state._windows else None
                if window is None or not window.times:
                    return None
                # Samples at or before now - length are out (observe() drops them as time moves on; a
                # timer may ask about a later moment than the last sample, and must not drop them).
                cutoff = now - length
                if window.times[0] > cutoff:
                    return aggregate(window.values)
                first = bisect_right(window.times, cutoff)
                if first == len(window.times):
                    return None
                return aggregate(deque(islice(window.values, first, None)))

            return windowed
        if c.rate is not None:
            per = c.rate.per_seconds

            def rate(state: DeviceState, now: datetime) -> float | None:
                last = state.last.get(prop)
                before = state._previous.get(prop) if last is not None and state._previous else None
                if last is None or before is None:
                    return None
                elapsed = (last[0] - before[0]).total_seconds()
                return None if elapsed <= 0 else (last[1] - before[1]) / elapsed * per

            return rate

        def latest(state: DeviceState, now: datetime) -> float | None:
            last = state.last.get(prop)
            return None if last is None else last[1]

        return latest

    def _compile_condition(self, c: Condition) -> Check:
        prop = c.property
        if c.operator == "stale":
            assert c.stale_seconds is not None
            stale_seconds = c.stale_seconds

            def stale(state: DeviceState, now: datetime) -> Verdict:
                since = state.silent_since(prop)
                return None if since is None else (now - since).total_seconds() >= stale_seconds

            return stale
        assert c.value is not None
        measure = self._compile_measure(c)
        low = c.value
        if c.operator in ("between", "outside"):
            assert c.value2 is not None
            high = c.value2
            test: Callable[[float], bool] = (
                (lambda x: low <= x <= high) if c.operator == "between" else (lambda x: x < low or x > high)
            )
        else:
            compare = _COMPARE[c.operator]

            def test(x: float) -> bool:
                return compare(x, low)

        if not c.for_seconds:
            if c.window is None and c.rate is None:  # the common case, inlined: the last value against a number

                def on_last(state: DeviceState, now: datetime) -> Verdict:
                    last = state.last.get(prop)
                    return None if last is None else test(last[1])

                return on_last

            def measured(state: DeviceState, now: datetime) -> Verdict:
                x = measure(state, now)
                return None if x is None else test(x)

            return measured
        key = self._ids[id(c)]
        hold = c.for_seconds

        def held(state: DeviceState, now: datetime) -> Verdict:
            x = measure(state, now)
            if x is None:
                return None
            if not test(x):
                if state._holds_since:
                    state._holds_since.pop(key, None)
                return False
            since = state.holds_since.setdefault(key, state.last[prop][0])
            return (now - since).total_seconds() >= hold

        return held

    # ------------------------------------------------------------------ evaluation
    def triggered(self, state: DeviceState, now: datetime) -> bool | None:
        return self._trigger(state, now)

    def cleared(self, state: DeviceState, now: datetime) -> bool:
        """Whether an open alert may resolve: the clear condition holds, or (without one) the trigger is false."""
        if self._clear is not None:
            return self._clear(state, now) is True
        return self._trigger(state, now) is False

    def decide(self, state: DeviceState, now: datetime, is_open: bool, last_opened: datetime | None) -> Action:
        """The engine's decision at ``now`` (the schedule already checked), shared by the live engine,
        its staleness timers and the backtest, so that all three behave alike.

        The trigger holds, no alert is open and the last one opened at least ``cooldown_seconds``
        ago: open. An alert is open, auto-resolve is on and the rule has cleared (the clear
        condition holds, or without one the trigger is false): resolve.
        """
        verdict = self._trigger(state, now)
        if verdict is True and not is_open:
            if last_opened is not None and now - last_opened < self._cooldown:
                return "cooldown"
            return "open"
        if is_open and self._auto_resolve:
            # the trigger was evaluated at this moment already: without a clear tree, its verdict decides
            cleared = self._clear(state, now) is True if self._clear is not None else verdict is False
            if cleared:
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
