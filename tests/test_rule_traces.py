"""The rule evaluator decides as it always did: recorded traces of random rules on random data.

``tests/data/rule_traces.json`` holds, for 240 random rules (every operator, windows of every
function and several lengths, rates, durations, staleness, AND/OR groups nested two deep, clear
conditions, schedules across midnight, cooldowns), a digest of every decision the evaluator made
on a random stream of values that crosses their thresholds: out-of-order and missing values, gaps,
and evaluations between messages as the staleness timers make them. The traces were recorded with
the interpreted evaluator before it was compiled to closures for speed; any change of behaviour
names the rule, its definition and the first step that differs.

    .venv/bin/python tests/test_rule_traces.py --record   # after an intended change of behaviour
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from factoryops.rules.definition import RuleDefinition
from factoryops.rules.evaluator import CompiledRule, DeviceState

pytestmark = pytest.mark.nodb

TRACES = Path(__file__).parent / "data" / "rule_traces.json"
RULES = 240
STEPS = 400
PROPS = {"temp": (20.0, 100.0), "power": (0.0, 200.0), "pf": (0.6, 1.0), "count": (0.0, 1000.0)}


def _condition(rng: random.Random) -> dict[str, Any]:
    prop = rng.choice(list(PROPS))
    lo, hi = PROPS[prop]
    span = hi - lo
    kind = rng.choice(["plain", "plain", "hold", "window", "rate", "range", "stale"])
    if kind == "stale":
        return {"property": prop, "operator": "stale", "stale_seconds": rng.choice([60, 300, 900])}
    if kind == "range":
        a = round(rng.uniform(lo, hi - span / 4), 2)
        return {
            "property": prop,
            "operator": rng.choice(["between", "outside"]),
            "value": a,
            "value2": round(a + rng.uniform(span / 10, span / 3), 2),
            "for_seconds": rng.choice([0, 0, 30, 120]),
        }
    cond: dict[str, Any] = {
        "property": prop,
        "operator": rng.choice([">", ">=", "<", "<=", "==", "!="]),
        "value": round(rng.uniform(lo + span / 5, hi - span / 5), 0 if prop == "count" else 2),
    }
    if kind == "hold":
        cond["for_seconds"] = rng.choice([30, 60, 300])
    elif kind == "window":
        cond["window"] = {"fn": rng.choice(["mean", "min", "max"]), "seconds": rng.choice([60, 300, 900])}
        cond["for_seconds"] = rng.choice([0, 0, 60])
    elif kind == "rate":
        cond["rate"] = {"per_seconds": rng.choice([1, 60, 3600])}
        cond["value"] = round(rng.uniform(-span / 50, span / 50), 3)
    return cond


def _node(rng: random.Random, depth: int) -> dict[str, Any]:
    if depth < 2 and rng.random() < 0.35:
        return {
            "op": rng.choice(["and", "or"]),
            "conditions": [_node(rng, depth + 1) for _ in range(rng.randint(2, 3))],
        }
    return _condition(rng)


def _definition(rng: random.Random) -> RuleDefinition:
    body: dict[str, Any] = {
        "scope": {"kind": "factory"},
        "condition": _node(rng, 0),
        "cooldown_seconds": rng.choice([0, 0, 60, 600]),
        "auto_resolve": rng.random() < 0.8,
    }
    if rng.random() < 0.4:
        body["clear"] = _node(rng, 1)
    pick = rng.random()
    if pick < 0.15:
        body["schedule"] = {"days": [0, 1, 2, 3, 4], "windows": [{"start": "06:00", "end": "22:00"}]}
    elif pick < 0.25:
        body["schedule"] = {"days": [4, 5], "windows": [{"start": "22:00", "end": "06:00"}]}
    elif pick < 0.3:
        body["schedule"] = {"days": [5, 6], "windows": []}
    return RuleDefinition.model_validate(body)


def _trace(definition: RuleDefinition, seed: int) -> list[str]:
    """The evaluator's decisions on a random stream, one token per step, as the engine makes them."""
    rng = random.Random(seed)
    rule = CompiledRule("r", definition, "Europe/Berlin")
    state = DeviceState()
    values = {p: rng.uniform(*PROPS[p]) for p in PROPS}
    ts = datetime(2026, 3, 27, 18, 0, tzinfo=UTC)  # a Friday evening, across the change to summer time
    is_open, last_opened = False, None
    out: list[str] = []
    for _ in range(STEPS):
        if rng.random() < 0.15:  # a staleness timer or a later evaluation: no new value
            now = ts + timedelta(seconds=rng.choice([30, 90, 400, 1000]))
        else:
            ts += timedelta(seconds=rng.choice([1, 5, 10, 30, 60, 120, 600]))
            stamp = ts - timedelta(seconds=rng.choice([1, 5])) if rng.random() < 0.05 else ts  # out of order
            for p, (lo, hi) in PROPS.items():
                step = (hi - lo) / 8
                values[p] = min(hi, max(lo, values[p] + rng.uniform(-step, step)))
                if p == "count" and rng.random() < 0.5:
                    values[p] = float(round(values[p]))
            sent = {p: round(v, 3) for p, v in values.items() if rng.random() < 0.85}  # some missing
            rule.observe(state, stamp, sent)
            now = ts
        if rule.scheduled and not rule.in_schedule(now):
            out.append("-")
            continue
        verdict = rule.triggered(state, now)
        action = rule.decide(state, now, is_open, last_opened)
        if action == "open":
            is_open, last_opened = True, now
        elif action == "resolve":
            is_open = False
        out.append(f"{verdict}/{action}")
    return out


def _digest(tokens: list[str]) -> str:
    return hashlib.sha256(" ".join(tokens).encode()).hexdigest()[:16]


def _cases() -> list[tuple[RuleDefinition, int]]:
    rng = random.Random(20261127)
    return [(_definition(rng), rng.randrange(1 << 30)) for _ in range(RULES)]


def record() -> None:
    traces = []
    for definition, seed in _cases():
        tokens = _trace(definition, seed)
        traces.append({"digest": _digest(tokens), "decisions": dict(_count(tokens))})
    TRACES.parent.mkdir(exist_ok=True)
    TRACES.write_text(json.dumps({"rules": RULES, "steps": STEPS, "traces": traces}, indent=0) + "\n")


def _count(tokens: list[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for t in tokens:
        key = t.split("/")[-1] if "/" in t else "unscheduled"
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items())


def test_the_evaluator_decides_as_recorded() -> None:
    recorded = json.loads(TRACES.read_text())
    assert (recorded["rules"], recorded["steps"]) == (RULES, STEPS)
    changed = []
    for i, ((definition, seed), want) in enumerate(zip(_cases(), recorded["traces"], strict=True)):
        tokens = _trace(definition, seed)
        if _digest(tokens) != want["digest"]:
            changed.append((i, definition.model_dump(mode="json", exclude_defaults=True), dict(_count(tokens)), want))
    assert not changed, f"{len(changed)} rule(s) decide differently; the first: {changed[0]}"


def test_the_traces_exercise_every_decision() -> None:
    """The recording is worth comparing against: rules open, resolve, wait out cooldowns and sleep."""
    totals: dict[str, int] = {}
    for trace in json.loads(TRACES.read_text())["traces"]:
        for key, n in trace["decisions"].items():
            totals[key] = totals.get(key, 0) + n
    assert {"open", "resolve", "cooldown", "None", "unscheduled"} <= set(totals), totals
    assert min(totals["open"], totals["resolve"], totals["cooldown"]) >= 100, totals


if __name__ == "__main__" and "--record" in sys.argv:
    record()
    print(f"recorded {TRACES}")
