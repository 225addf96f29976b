"""Rule evaluation in process: what one rule costs per message, without broker, database or I/O.

Not a test: it prints its figures (recorded in docs/benchmarks.md). It builds ``--rules`` rule
definitions with the mix of ``bench/rules.py`` (bands, thresholds with hysteresis, AND/OR groups,
durations, 1-15 minute windows, rates, staleness, 20 % with schedules), compiles them, and feeds
``--messages`` messages of the ingest benchmark's shape (10 metrics, one message per device every
``--interval`` seconds over ``--devices`` devices) through the engine's per-message work for every
rule: observe the values, check the schedule, decide. It reports the CPU time per rule evaluation
and per message at ``--in-scope`` rules per message, and checks that no rule fired (the load never
crosses a threshold).

With ``--engine`` the messages go through the real :class:`~factoryops.rules.engine.RuleEngine`
(``on_event``: scope index, state, staleness timers, open alerts, lock) on a temporary SQLite
metadata database holding the rules, each scoped to a share of the devices so that a message
meets ``--in-scope`` of them; ``--profile N`` prints the N most expensive functions (cProfile).

    .venv/bin/python bench/rule_eval.py
    .venv/bin/python bench/rule_eval.py --engine
    .venv/bin/python bench/rule_eval.py --engine --profile 25
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.rules import load_condition, schedule  # noqa: E402
from factoryops.core.db import Database  # noqa: E402
from factoryops.core.migrate import upgrade  # noqa: E402
from factoryops.rules.definition import RuleDefinition  # noqa: E402
from factoryops.rules.engine import RuleEngine  # noqa: E402
from factoryops.rules.evaluator import CompiledRule, DeviceState  # noqa: E402
from factoryops.rules.models import Rule  # noqa: E402
from factoryops.tenancy.models import Factory  # noqa: E402
from factoryops.wiring import import_all_models  # noqa: E402


def definitions(n: int, seed: int) -> list[RuleDefinition]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        _, condition, clear = load_condition(rng, stale_ok=True)
        body = {
            "scope": {"kind": "factory"},
            "condition": condition,
            "schedule": schedule(rng),
            "cooldown_seconds": 300,
            "auto_resolve": rng.random() < 0.8,
        }
        if clear is not None:
            body["clear"] = clear
        out.append(RuleDefinition.model_validate(body))
    return out


def message(rng: random.Random, seq: int, energy: float) -> dict[str, float]:
    """The ingest benchmark's values: never across any threshold of the rules above."""
    return {
        "seq": float(seq),
        "voltage_l1": rng.uniform(228, 232),
        "voltage_l2": rng.uniform(228, 232),
        "voltage_l3": rng.uniform(228, 232),
        "current_l1": rng.uniform(9.7, 16),
        "current_l2": rng.uniform(9.7, 16),
        "current_l3": rng.uniform(9.7, 16),
        "power_kw": rng.uniform(40, 60),
        "power_factor": rng.uniform(0.90, 0.95),
        "energy_kwh": energy,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=1000, help="rule definitions to build")
    parser.add_argument("--in-scope", type=int, default=41, help="rules evaluated per message (bench/rules.py: 41.5)")
    parser.add_argument("--devices", type=int, default=200, help="devices the messages come from")
    parser.add_argument("--messages", type=int, default=20_000, help="messages to evaluate")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between messages of one device")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engine", action="store_true", help="through RuleEngine.on_event (SQLite metadata)")
    parser.add_argument("--profile", type=int, default=0, help="print the N most expensive functions")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    compiled = [CompiledRule(f"r{i}", d, "Europe/Berlin") for i, d in enumerate(definitions(args.rules, args.seed))]
    devices = [f"meter-{i}" for i in range(args.devices)]
    # each device has its own fixed set of rules in scope, as the engine's scope index gives it
    scope = {d: rng.sample(compiled, min(args.in_scope, len(compiled))) for d in devices}
    states: dict[tuple[str, str], DeviceState] = {}
    start = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # a Monday, across the 06:00 schedule start
    step = timedelta(seconds=args.interval / args.devices)
    energy = dict.fromkeys(devices, 1000.0)
    work = []
    for i in range(args.messages):
        device = devices[i % args.devices]
        energy[device] += 0.01
        work.append((device, start + i * step, message(rng, i, energy[device])))

    if args.engine:
        return run_engine(args, rng, devices, work)
    fired = evaluations = 0
    cpu0 = time.process_time()
    for device, ts, values in work:
        for rule in scope[device]:
            if rule.properties.isdisjoint(values):
                continue
            state = states.get((rule.rule_id, device))
            if state is None:
                state = states[(rule.rule_id, device)] = DeviceState()
            rule.observe(state, ts, values)
            if rule.scheduled and not rule.in_schedule(ts):
                continue
            evaluations += 1
            if rule.decide(state, ts, False, None) == "open":
                fired += 1
    cpu = time.process_time() - cpu0

    span = work[-1][1] - work[0][1]
    print(f"rules built: {len(compiled)}; devices: {args.devices}; messages: {len(work)} over {span}")
    print(f"rules per message: {args.in_scope}; evaluations (in schedule): {evaluations}; alerts decided: {fired}")
    report_cpu(cpu, len(work), args.in_scope)
    print(f"one core evaluates {len(work) / cpu:,.0f} messages/s of this mix")
    return 1 if fired else 0


def report_cpu(cpu: float, messages: int, per_message: float) -> None:
    per_rule = cpu / (messages * per_message) * 1e6
    print(f"CPU: {cpu:.2f} s = {cpu / messages * 1e6:,.0f} µs per message = {per_rule:.2f} µs per rule")


def run_engine(
    args: argparse.Namespace,
    rng: random.Random,
    devices: list[str],
    work: list[tuple[str, datetime, dict[str, float]]],
) -> int:
    """The messages through the engine itself; each rule scoped to ``in_scope / rules`` of the devices."""
    import_all_models()
    with tempfile.TemporaryDirectory(prefix="rule-eval-") as tmp:
        db = Database(f"sqlite:///{tmp}/meta.db")
        upgrade(db.engine)
        with db.unscoped_session() as s:  # bench set-up: one factory and its rules
            factory = Factory(slug="bench", name="Bench", timezone="Europe/Berlin")
            s.add(factory)
            s.flush()
            factory_id = factory.id
        share = max(1, round(args.in_scope * len(devices) / args.rules))
        with db.factory_session(factory_id) as s:
            for i, definition in enumerate(definitions(args.rules, args.seed)):
                body = definition.model_dump(mode="json")
                body["scope"] = {"kind": "devices", "device_ids": rng.sample(devices, share)}
                s.add(Rule(name=f"rule {i}", definition=body))
        engine = RuleEngine(db, refresh_seconds=3600)
        engine.on_event(factory_id, devices[0], "", work[0][1], work[0][2])  # loads the rules and open alerts
        profiler = cProfile.Profile() if args.profile else None
        fired = 0
        cpu0 = time.process_time()
        if profiler:
            profiler.enable()
        for device, ts, values in work:
            fired += len(engine.on_event(factory_id, device, "", ts, values))
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu0
        db.engine.dispose()
    in_scope = share * args.rules / len(devices)
    print(f"engine: {args.rules} rules, each on {share} of {len(devices)} devices: {in_scope:.1f} rules per message")
    print(f"messages: {len(work)}; evaluations (in schedule): {engine.evaluations}; alerts opened: {fired}")
    report_cpu(cpu, len(work), in_scope)
    print(f"one core evaluates {len(work) / cpu:,.0f} messages/s of this mix")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    return 1 if fired else 0


if __name__ == "__main__":
    sys.exit(main())
