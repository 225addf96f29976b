"""Sensible defaults for a newly discovered property's unit and kind. Pure logic.

The name decides first (``power_kw`` is kW, ``energy_kwh`` is a cumulative kWh counter);
the values then correct the kind: a property inferred as a counter whose value falls a little
(not a counter reset back towards zero) is a gauge after all.
"""

from __future__ import annotations

import re

# Suffix (after the last '_' or '.') or whole-word hints, most specific first.
UNIT_HINTS: list[tuple[str, str]] = [
    (r"kvarh", "kvarh"),
    (r"kwh", "kWh"),
    (r"mwh", "MWh"),
    (r"wh", "Wh"),
    (r"kvar", "kvar"),
    (r"kva", "kVA"),
    (r"kw", "kW"),
    (r"mw", "MW"),
    (r"w|watts?", "W"),
    (r"v|volts?|voltage", "V"),
    (r"ma", "mA"),
    (r"a|amps?|current", "A"),
    (r"hz|frequency|freq", "Hz"),
    (r"c|celsius|temp|temperature", "°C"),
    (r"f|fahrenheit", "°F"),
    (r"pct|percent|pc", "%"),
    (r"rpm", "rpm"),
    (r"bar", "bar"),
    (r"psi", "psi"),
    (r"kpa", "kPa"),
    (r"pa|pascal", "Pa"),
    (r"m3|m3h", "m³"),
    (r"l|litres?|liters?", "L"),
    (r"kg", "kg"),
    (r"t|tco2", "t"),
    (r"s|sec|seconds?", "s"),
    (r"pf|power_factor|cosphi", ""),
]
COUNTER_HINT = re.compile(r"(^|[_.])(kwh|wh|mwh|kvarh|total|count|counter|energy|cumulative|odometer|runtime_s)$")


def infer_unit(name: str) -> str:
    lowered = name.lower()
    if lowered.endswith("power_factor"):
        return ""
    tokens = re.split(r"[_.\-]", lowered)
    for pattern, unit in UNIT_HINTS:
        if re.fullmatch(pattern, tokens[-1]):
            return unit
    # ``voltage_l1``: a unit word earlier in the name; only whole words, never one-letter hints.
    for token in reversed(tokens[:-1]):
        if len(token) < 4:
            continue
        for pattern, unit in UNIT_HINTS:
            if re.fullmatch(pattern, token):
                return unit
    return ""


def infer_kind(name: str) -> str:
    return "counter" if COUNTER_HINT.search(name.lower()) else "gauge"


def contradicts_counter(previous: float, current: float) -> bool:
    """True when a drop cannot be a counter reset: a counter only rises, or restarts near zero."""
    if current >= previous:
        return False
    reset = current <= max(abs(previous) * 0.1, 1.0)
    return not reset
