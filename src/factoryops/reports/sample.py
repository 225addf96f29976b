"""A realistic report content (the demo steel mill, October 2026): fixture for the renderers and the portal docs.

Deterministic (seeded) and internally consistent: device kWh add up to the total, the daily, weekday,
shift and tariff-band figures are sums of the hourly load curve, and the peak is the curve's maximum.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TZ = "Asia/Seoul"
EMISSION_FACTOR = 0.436  # kg CO2 per kWh
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
SHIFTS = [("Morning (06-14)", 6, 14), ("Afternoon (14-22)", 14, 22), ("Night (22-06)", 22, 6)]
BANDS: list[dict[str, Any]] = [
    {"name": "peak", "price": 0.31, "days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"},
    {"name": "off-peak", "price": 0.17, "days": [0, 1, 2, 3, 4], "start": "20:00", "end": "08:00"},
    {"name": "weekend", "price": 0.14, "days": [5, 6], "start": "00:00", "end": "24:00"},
]
# (device id, name, share of the plant's energy, metering method)
DEVICES: list[tuple[str, str, float, str]] = [
    ("eaf-1", "Electric arc furnace 1", 0.318, "counter"),
    ("lf-1", "Ladle furnace 1", 0.121, "counter"),
    ("rm-1", "Hot rolling mill stand 1", 0.104, "counter"),
    ("rm-2", "Hot rolling mill stand 2", 0.097, "counter"),
    ("comp-1", "Compressor house A", 0.071, "counter"),
    ("comp-2", "Compressor house B", 0.052, "power"),
    ("fan-1", "Fume extraction fan 1", 0.061, "counter"),
    ("pump-1", "Cooling water pumps", 0.049, "counter"),
    ("crane-1", "Overhead crane bay 1", 0.027, "power"),
    ("crane-2", "Overhead crane bay 2", 0.024, "power"),
    ("hvac-1", "Offices HVAC", 0.018, "counter"),
    ("light-1", "Hall lighting", 0.033, "counter"),
    ("cast-1", "Continuous caster 1", 0.025, "counter"),
    ("lab-1", "Quality lab (meter offline)", 0.0, "none"),
]


def _iso(ts: datetime) -> str:
    return ts.isoformat()


def _band(ts: datetime) -> dict[str, Any]:
    hm = ts.strftime("%H:%M")
    for b in BANDS:
        if ts.weekday() not in b["days"]:
            continue
        start, end = b["start"], b["end"]
        inside = start <= hm < end if start < end else (hm >= start or hm < end)
        if inside:
            return b
    raise AssertionError(f"no tariff band for {ts}")


def _shift(hour: int) -> str:
    for name, a, b in SHIFTS:
        if (a <= hour < b) if a < b else (hour >= a or hour < b):
            return name
    raise AssertionError(hour)


def _load_curve(start: datetime, end: datetime, rng: random.Random, scale: float) -> list[tuple[datetime, float]]:
    """Hourly plant demand (kW): two heavy shifts on weekdays, a lighter Saturday, maintenance on Sundays."""
    out: list[tuple[datetime, float]] = []
    ts = start
    while ts < end:
        base = 2100.0 if 6 <= ts.hour < 22 else 1350.0
        if ts.weekday() == 5:
            base *= 0.7
        elif ts.weekday() == 6:
            base *= 0.35
        kw = scale * base * (1 + 0.12 * rng.uniform(-1, 1))
        if rng.random() < 0.01:  # arc furnace melt-down spikes
            kw *= 1.6
        out.append((ts, round(kw, 1)))
        ts += timedelta(hours=1)
    return out


def sample_content() -> dict[str, Any]:
    """The demo steel mill's October 2026 report with all four sections, 14 devices, alerts and two analytics runs."""
    tz = ZoneInfo(TZ)
    rng = random.Random(2026)
    start, end = datetime(2026, 10, 1, tzinfo=tz), datetime(2026, 11, 1, tzinfo=tz)
    prev_start = datetime(2026, 9, 1, tzinfo=tz)
    curve = _load_curve(start, end, rng, 1.0)
    previous_curve = _load_curve(prev_start, start, random.Random(2025), 1.04)
    total = round(sum(kw for _, kw in curve), 1)
    prev_total = round(sum(kw for _, kw in previous_curve), 1)
    cost = round(sum(kw * _band(ts)["price"] for ts, kw in curve), 2)
    prev_cost = round(sum(kw * _band(ts)["price"] for ts, kw in previous_curve), 2)
    peak_at, peak_kw = max(curve, key=lambda p: p[1])
    hours = len(curve)
    average = total / hours

    devices: list[dict[str, Any]] = []
    for i, (dev_id, name, share, method) in enumerate(DEVICES):
        if method == "none":
            devices.append(
                {
                    "device_id": dev_id, "name": name, "kwh": None, "share_pct": None, "peak_kw": None,
                    "peak_at": None, "cost": None, "co2_kg": None, "method": "none", "counter_resets": 0,
                    "gaps": 0, "completeness_pct": 0.0,
                }
            )  # fmt: skip
            continue
        kwh = round(total * share, 1)
        dev_peak_at = curve[(i * 97) % hours][0]
        devices.append(
            {
                "device_id": dev_id,
                "name": name,
                "kwh": kwh,
                "share_pct": round(share * 100, 2),
                "peak_kw": round(peak_kw * share * 1.35, 1),
                "peak_at": _iso(dev_peak_at),
                "cost": round(cost * share, 2),
                "co2_kg": round(kwh * EMISSION_FACTOR, 1),
                "method": method,
                "counter_resets": 1 if dev_id == "comp-1" else 0,
                "gaps": 3 if dev_id == "crane-2" else 0,
                "completeness_pct": 97.8 if dev_id == "crane-2" else 100.0,
            }
        )
    # the shares above add to 1.0 up to rounding: put the remainder on the largest consumer
    diff = round(total - sum(d["kwh"] or 0.0 for d in devices), 1)
    devices[0]["kwh"] = round(devices[0]["kwh"] + diff, 1)
    devices.sort(key=lambda d: -(d["kwh"] or -1.0))

    by_day: dict[str, list[float]] = {}
    by_weekday: dict[str, list[float]] = {w: [] for w in WEEKDAYS}
    by_shift: dict[str, float] = {name: 0.0 for name, _, _ in SHIFTS}
    by_band: dict[str, list[float]] = {b["name"]: [0.0, 0.0] for b in BANDS}
    for ts, kw in curve:
        day = by_day.setdefault(ts.date().isoformat(), [0.0, 0.0])
        price = _band(ts)["price"]
        day[0] += kw
        day[1] += kw * price
        by_shift[_shift(ts.hour)] += kw
        band = by_band[_band(ts)["name"]]
        band[0] += kw
        band[1] += kw * price
    for date, (kwh, _) in by_day.items():
        by_weekday[WEEKDAYS[datetime.fromisoformat(date).weekday()]].append(kwh)

    energy = {
        "total_kwh": total,
        "previous_total_kwh": prev_total,
        "change_pct": round((total - prev_total) / prev_total * 100, 2),
        "cost": cost,
        "previous_cost": prev_cost,
        "co2_kg": round(total * EMISSION_FACTOR, 1),
        "peak_kw": peak_kw,
        "peak_at": _iso(peak_at),
        "peak_device": devices[0]["device_id"],
        "average_kw": round(average, 1),
        "load_factor": round(average / peak_kw, 3),
        "devices": devices,
        "by_day": [{"date": d, "kwh": round(v[0], 1), "cost": round(v[1], 2)} for d, v in by_day.items()],
        "by_weekday": [
            {"weekday": w, "kwh": round(sum(v), 1), "mean_kwh": round(sum(v) / len(v), 1) if v else None}
            for w, v in by_weekday.items()
        ],
        "by_shift": [
            {"shift": s, "kwh": round(v, 1), "share_pct": round(v / total * 100, 2)} for s, v in by_shift.items()
        ],
        "by_tariff_band": [{"band": b, "kwh": round(v[0], 1), "cost": round(v[1], 2)} for b, v in by_band.items()],
        "load_curve": [{"ts": _iso(ts), "kw": kw} for ts, kw in curve],
    }

    properties = {
        "items": [
            {"device_id": "eaf-1", "property": "power_factor", "unit": "", "min": 0.61, "mean": 0.83, "max": 0.97,
             "count": 44640, "expected": 44640, "completeness_pct": 100.0},
            {"device_id": "eaf-1", "property": "electrode_temperature", "unit": "°C", "min": 412.0, "mean": 1185.4,
             "max": 1650.2, "count": 44615, "expected": 44640, "completeness_pct": 99.94},
            {"device_id": "comp-1", "property": "pressure", "unit": "bar", "min": 6.1, "mean": 7.4, "max": 8.2,
             "count": 44640, "expected": 44640, "completeness_pct": 100.0},
            {"device_id": "pump-1", "property": "flow", "unit": "m³/h", "min": 0.0, "mean": 412.7, "max": 530.9,
             "count": 43210, "expected": 44640, "completeness_pct": 96.8},
            {"device_id": "crane-2", "property": "voltage", "unit": "V", "min": 391.2, "mean": 400.3, "max": 409.8,
             "count": 43660, "expected": 44640, "completeness_pct": 97.8},
            {"device_id": "lab-1", "property": "temperature", "unit": "°C", "min": None, "mean": None, "max": None,
             "count": 0, "expected": 44640, "completeness_pct": 0.0},
        ]
    }  # fmt: skip

    def alert(n: int, rule: str, dev: str, sev: str, opened: datetime, dur_h: float | None) -> dict[str, Any]:
        resolved = opened + timedelta(hours=dur_h) if dur_h is not None else None
        duration = (resolved or end) - opened
        return {
            "id": f"al-{n:04d}",
            "rule_name": rule,
            "device_id": dev,
            "severity": sev,
            "opened_at": _iso(opened),
            "resolved_at": _iso(resolved) if resolved else None,
            "duration_seconds": duration.total_seconds(),
        }

    open_alerts = [
        alert(131, "Meter offline", "lab-1", "warning", datetime(2026, 10, 27, 9, 12, tzinfo=tz), None),
        alert(140, "Compressor pressure low", "comp-2", "critical", datetime(2026, 10, 31, 16, 40, tzinfo=tz), None),
    ]
    longest = [
        open_alerts[0],
        alert(88, "Power factor below 0.8", "eaf-1", "warning", datetime(2026, 10, 14, 6, 0, tzinfo=tz), 30.5),
        alert(97, "Cooling water flow low", "pump-1", "critical", datetime(2026, 10, 18, 22, 15, tzinfo=tz), 11.25),
        alert(61, "Fume fan vibration high", "fan-1", "warning", datetime(2026, 10, 9, 13, 5, tzinfo=tz), 7.75),
        alert(140, "Compressor pressure low", "comp-2", "critical", datetime(2026, 10, 31, 16, 40, tzinfo=tz), None),
    ]
    over_time: list[dict[str, Any]] = [
        {"date": (start + timedelta(days=d)).date().isoformat(), "count": c}
        for d, c in enumerate(
            [1, 0, 2, 1, 0, 0, 3, 1, 2, 4, 1, 0, 0, 2, 3, 1, 0, 2, 1, 1, 0, 0, 1, 2, 3, 1, 1, 0, 1, 1, 2]
        )
    ]
    alerts: dict[str, Any] = {
        "total": sum(o["count"] for o in over_time),
        "by_severity": {"critical": 6, "warning": 22, "info": 9},
        "by_rule": [
            {"rule_id": "r-pf", "rule_name": "Power factor below 0.8", "count": 14},
            {"rule_id": "r-flow", "rule_name": "Cooling water flow low", "count": 8},
            {"rule_id": "r-vib", "rule_name": "Fume fan vibration high", "count": 7},
            {"rule_id": "r-press", "rule_name": "Compressor pressure low", "count": 5},
            {"rule_id": "r-offline", "rule_name": "Meter offline", "count": 3},
        ],
        "by_device": [
            {"device_id": "eaf-1", "count": 14},
            {"device_id": "pump-1", "count": 8},
            {"device_id": "fan-1", "count": 7},
            {"device_id": "comp-2", "count": 5},
            {"device_id": "lab-1", "count": 3},
        ],
        "mtta_seconds": 754.0,
        "mttr_seconds": 9342.5,
        "longest": sorted(longest, key=lambda a: -a["duration_seconds"]),
        "open": open_alerts,
        "over_time": over_time,
    }

    analytics = {
        "runs": [
            {
                "id": "run-7f3a",
                "task": "anomaly",
                "mode": "standard",
                "model_name": "anomaly-machine_temperature",
                "model_version": 3,
                "finished_at": "2026-10-29T02:14:05+09:00",
                "dataset_name": "Machine temperature, Oct 2026",
                "headline": "Isolation forest flagged 212 readings of machine temperature (0.9 %) over 31 days, "
                "in 4 episodes; the longest lasted 7 h on 21 October.",
                "metrics": {"n_anomalies": 212.0, "anomaly_rate": 0.0093, "episodes": 4.0, "precision": None},
            },
            {
                "id": "run-81c0",
                "task": "baseline",
                "mode": "copilot",
                "model_name": "baseline-total_kwh",
                "model_version": None,
                "finished_at": "2026-10-31T23:40:51+09:00",
                "dataset_name": "Plant energy, Jan-Oct 2026",
                "headline": "Against the weather- and production-adjusted baseline the plant used 38,120 kWh "
                "(2.4 %) less than expected in October.",
                "metrics": {"savings_kwh": 38120.0, "savings_pct": 2.4, "r2": 0.91, "mae": 412.3},
            },
        ]
    }

    change = energy["change_pct"]
    kpis = [
        {"key": "total_kwh", "label": "Energy", "value": total, "unit": "kWh", "previous": prev_total,
         "change_pct": change},
        {"key": "cost", "label": "Energy cost", "value": cost, "unit": "EUR", "previous": prev_cost,
         "change_pct": round((cost - prev_cost) / prev_cost * 100, 2)},
        {"key": "co2_kg", "label": "CO2 emissions", "value": energy["co2_kg"], "unit": "kg",
         "previous": round(prev_total * EMISSION_FACTOR, 1), "change_pct": change},
        {"key": "peak_kw", "label": "Peak demand", "value": peak_kw, "unit": "kW", "previous": None,
         "change_pct": None},
        {"key": "load_factor", "label": "Load factor", "value": energy["load_factor"], "unit": "", "previous": 0.44,
         "change_pct": round((energy["load_factor"] - 0.44) / 0.44 * 100, 2)},
        {"key": "alerts_total", "label": "Alerts", "value": float(alerts["total"]), "unit": "", "previous": 44.0,
         "change_pct": round((alerts["total"] - 44) / 44 * 100, 2)},
    ]  # fmt: skip
    highlights = [
        f"The plant used {total:,.0f} kWh in October 2026, {abs(change):.1f} % "
        f"{'less' if change < 0 else 'more'} than in September.",
        f"Energy cost was EUR {cost:,.0f}; {by_band['peak'][0] / total * 100:.0f} % of the energy was bought "
        "in the weekday peak band.",
        f"Peak demand reached {peak_kw:,.0f} kW on {peak_at:%d %B at %H:%M}; the electric arc furnace "
        "is the largest consumer with a third of the total.",
        "The quality lab meter has been offline since 27 October; its consumption is missing from the total.",
        f"{alerts['total']} alerts were raised, 6 of them critical; 2 are still open.",
    ]

    return {
        "schema_version": "1.0",
        "report": {
            "id": "rep-2026-10-steel",
            "title": "Monthly energy report",
            "factory": {"id": "f-demo-steel", "name": "Demo Steel Mill", "timezone": TZ},
            "period": {"start": _iso(start), "end": _iso(end), "label": "October 2026"},
            "previous_period": {"start": _iso(prev_start), "end": _iso(start)},
            "generated_at": "2026-11-01T06:00:12+09:00",
            "devices": None,
            "sections": ["energy", "properties", "alerts", "analytics"],
            "currency": "EUR",
            "tariff": {
                "kind": "time_of_use",
                "flat_price": None,
                "default_price": 0.19,
                "bands": [dict(b) for b in BANDS],
            },
            "emission_factor_kg_per_kwh": EMISSION_FACTOR,
        },
        "summary": {"highlights": highlights, "kpis": kpis},
        "energy": energy,
        "properties": properties,
        "alerts": alerts,
        "analytics": analytics,
    }
