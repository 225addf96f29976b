"""Rule definitions and their evaluation: pure logic, no services (the clock is passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from factoryops.rules.definition import RuleDefinition
from factoryops.rules.evaluator import CompiledRule, DeviceState

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # a Friday


def rule(condition: dict[str, Any], **extra: Any) -> CompiledRule:
    definition = RuleDefinition.model_validate({"scope": {"kind": "factory"}, "condition": condition, **extra})
    return CompiledRule("r1", definition, extra.pop("tz", "UTC") if "tz" in extra else "UTC")


def feed(r: CompiledRule, state: DeviceState, seconds: float, **values: float) -> bool | None:
    now = T0 + timedelta(seconds=seconds)
    r.observe(state, now, values)
    return r.triggered(state, now)


def test_thresholds_ranges_and_groups() -> None:
    r = rule(
        {
            "op": "or",
            "conditions": [
                {"property": "power_kw", "operator": ">", "value": 100},
                {
                    "op": "and",
                    "conditions": [
                        {"property": "voltage", "operator": "outside", "value": 220, "value2": 240},
                        {"property": "running", "operator": "==", "value": 1},
                    ],
                },
            ],
        }
    )
    s = DeviceState()
    assert feed(r, s, 0, power_kw=50) is None  # voltage and running not known yet
    assert feed(r, s, 1, voltage=230, running=1) is False
    assert feed(r, s, 2, voltage=245) is True
    assert feed(r, s, 3, running=0) is False
    assert feed(r, s, 4, power_kw=101) is True
    between = rule({"property": "t", "operator": "between", "value": 10, "value2": 20})
    s = DeviceState()
    assert [feed(between, s, i, t=v) for i, v in enumerate([9.9, 10, 20, 20.1])] == [False, True, True, False]


def test_duration_rate_and_window() -> None:
    held = rule({"property": "p", "operator": ">", "value": 10, "for_seconds": 300})
    s = DeviceState()
    assert feed(held, s, 0, p=11) is False
    assert feed(held, s, 200, p=12) is False
    assert feed(held, s, 300, p=13) is True
    assert feed(held, s, 301, p=5) is False
    assert feed(held, s, 400, p=11) is False  # the clock starts again
    rising = rule({"property": "temp", "operator": ">", "value": 10, "rate": {"per_seconds": 60}})
    s = DeviceState()
    assert feed(rising, s, 0, temp=20) is None
    assert feed(rising, s, 30, temp=24) is False  # 8 per minute
    assert feed(rising, s, 60, temp=30) is True  # 12 per minute
    mean = rule({"property": "kw", "operator": ">", "value": 50, "window": {"fn": "mean", "seconds": 900}})
    s = DeviceState()
    assert feed(mean, s, 0, kw=100) is True
    assert feed(mean, s, 300, kw=0) is False  # mean 50, not above
    assert feed(mean, s, 600, kw=80) is True  # mean 60
    # at 1200 the window is (300, 1200]: the 0 at 300 has left, mean(80, 40) = 60
    assert feed(mean, s, 1200, kw=40) is True
    assert feed(mean, s, 2200, kw=10) is False  # only the 10 is left


def test_window_values_leave_exactly_at_the_window_edge() -> None:
    mx = rule({"property": "kw", "operator": ">=", "value": 100, "window": {"fn": "max", "seconds": 60}})
    s = DeviceState()
    assert feed(mx, s, 0, kw=100) is True
    assert feed(mx, s, 59, kw=1) is True
    assert feed(mx, s, 60, kw=1) is False  # the 100 at t=0 is exactly 60 s old: out


def test_staleness() -> None:
    r = rule({"property": "heartbeat", "operator": "stale", "stale_seconds": 600})
    s = DeviceState()
    assert r.triggered(s, T0) is None
    r.observe(s, T0, {"heartbeat": 1})
    assert r.triggered(s, T0 + timedelta(seconds=599)) is False
    assert r.triggered(s, T0 + timedelta(seconds=600)) is True
    assert r.stale_checks and r.stale_checks[0].stale_seconds == 600


def test_hysteresis_clear_condition() -> None:
    r = rule(
        {"property": "temp", "operator": ">", "value": 80}, clear={"property": "temp", "operator": "<", "value": 70}
    )
    s = DeviceState()
    assert feed(r, s, 0, temp=85) is True
    assert feed(r, s, 1, temp=75) is False and r.cleared(s, T0) is False  # below trigger, above clear
    assert feed(r, s, 2, temp=69) is False and r.cleared(s, T0) is True
    plain = rule({"property": "temp", "operator": ">", "value": 80})
    s = DeviceState()
    feed(plain, s, 0, temp=85)
    assert plain.cleared(s, T0) is False
    feed(plain, s, 1, temp=79)
    assert plain.cleared(s, T0) is True


def test_schedule_in_the_factory_time_zone_across_midnight() -> None:
    # Friday 22:00 to 06:00, in Seoul (UTC+9): Friday 13:00 UTC is 22:00 in Seoul.
    definition = RuleDefinition.model_validate(
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "p", "operator": ">", "value": 0},
            "schedule": {"days": [4], "windows": [{"start": "22:00", "end": "06:00"}]},
        }
    )
    r = CompiledRule("r", definition, "Asia/Seoul")
    friday_1259_utc = datetime(2026, 11, 27, 12, 59, tzinfo=UTC)  # 21:59 Friday in Seoul
    assert r.in_schedule(friday_1259_utc) is False
    assert r.in_schedule(friday_1259_utc + timedelta(minutes=1)) is True  # 22:00 Friday
    assert r.in_schedule(friday_1259_utc + timedelta(hours=8)) is True  # 05:59 Saturday: Friday's window
    assert r.in_schedule(friday_1259_utc + timedelta(hours=8, minutes=1)) is False  # 06:00 Saturday
    assert r.in_schedule(friday_1259_utc + timedelta(days=1, minutes=1)) is False  # 22:00 Saturday
    always = CompiledRule(
        "r",
        RuleDefinition.model_validate(
            {"scope": {"kind": "factory"}, "condition": {"property": "p", "operator": ">", "value": 0}}
        ),
    )
    assert always.in_schedule(friday_1259_utc)


def test_scopes() -> None:
    def scoped(scope: dict[str, Any]) -> CompiledRule:
        return CompiledRule(
            "r",
            RuleDefinition.model_validate(
                {"scope": scope, "condition": {"property": "p", "operator": ">", "value": 0}}
            ),
        )

    assert scoped({"kind": "device", "device_ids": ["a"]}).applies_to("a", "press")
    assert not scoped({"kind": "device", "device_ids": ["a"]}).applies_to("b", "press")
    assert scoped({"kind": "devices", "device_ids": ["a", "b"]}).applies_to("b", "oven")
    assert scoped({"kind": "type", "device_type": "oven"}).applies_to("z", "oven")
    assert not scoped({"kind": "type", "device_type": "oven"}).applies_to("z", "press")
    assert scoped({"kind": "factory"}).applies_to("anything", "")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"condition": {"op": "and", "conditions": []}}, ("condition", "group", "conditions")),
        ({"condition": {"property": "x", "operator": "between", "value": 5, "value2": 1}}, ("condition", "condition")),
        ({"condition": {"property": "x", "operator": ">"}}, ("condition", "condition")),
        ({"condition": {"property": "x", "operator": "stale"}}, ("condition", "condition")),
        ({"schedule": {"days": [], "windows": []}}, ("schedule", "days")),
        ({"schedule": {"windows": [{"start": "25:00", "end": "06:00"}]}}, ("schedule", "windows", 0)),
        ({"schedule": {"windows": [{"start": "06:00", "end": "06:00"}]}}, ("schedule", "windows", 0)),
        ({"scope": {"kind": "device", "device_ids": []}}, ("scope",)),
        ({"cooldown_seconds": -1}, ("cooldown_seconds",)),
    ],
)
def test_bad_rules_name_the_field(body: dict[str, Any], where: tuple[Any, ...]) -> None:
    base: dict[str, Any] = {"scope": {"kind": "factory"}, "condition": {"property": "p", "operator": ">", "value": 1}}
    with pytest.raises(ValidationError) as info:
        RuleDefinition.model_validate({**base, **body})
    locs = [e["loc"] for e in info.value.errors()]
    assert any(loc[: len(where)] == where for loc in locs), locs
