"""The content of a report: numbers of one factory and one period, as a JSON-serialisable dict.

Everything comes from what the platform stores: hourly window statistics from the time-series
store (one read per batch of devices; see :mod:`factoryops.reports.energy` for how counters and
power become kWh), alerts and analytics runs from the metadata database. The renderers
(:mod:`factoryops.reports.render`) turn the dict into PDF, Excel or JSON; its shape is the JSON
Schema ``reports/schema.json`` (published as ``docs/report-schema.json``).

Time: hours are UTC hours; each is given to the local day, weekday, shift and tariff band of its
start in the factory's time zone (exact for zones with whole-hour offsets).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from factoryops.alerts.models import Alert, AlertState
from factoryops.analytics.models import Dataset, Run, RunState
from factoryops.core.db import Database
from factoryops.devices.models import Device, DeviceProperty, Property
from factoryops.ports.timeseries.base import FactoryScope, SeriesKey, SeriesSummary, TimeseriesStore
from factoryops.reports.energy import HOUR, DeviceEnergy, from_counter, from_power
from factoryops.tenancy.models import Factory

SECTIONS = ("energy", "properties", "alerts", "analytics")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_SHIFTS: list[dict[str, Any]] = [
    {"name": "Morning", "start": "06:00", "end": "14:00"},
    {"name": "Afternoon", "start": "14:00", "end": "22:00"},
    {"name": "Night", "start": "22:00", "end": "06:00"},
]
DEVICES_PER_READ = 200
LOOKBACK = timedelta(hours=24)  # how far before the period a counter's last reading is looked for
MAX_LOAD_CURVE = 1000
MAX_PROPERTY_ROWS = 5000

Progress = Callable[[int, str], None]


@dataclass
class ReportParams:
    start: datetime
    end: datetime
    title: str
    label: str
    devices: list[str] | None = None
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))
    properties: list[str] = field(default_factory=list)


@dataclass
class Settings:
    currency: str = "EUR"
    tariff: dict[str, Any] = field(default_factory=dict)
    emission_factor: float | None = None
    shifts: list[dict[str, Any]] = field(default_factory=lambda: list(DEFAULT_SHIFTS))


def _hm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _in_window(local: datetime, start: str, end: str) -> bool:
    """Whether the local time falls in [start, end), a window that may cross midnight."""
    t, a, b = local.time(), _hm(start), _hm(end)
    return a <= t < b if a < b else (t >= a or t < b)


class Tariff:
    """Price of a kWh at a local time: flat, or time-of-use bands over a default price."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.kind = spec.get("kind") or "none"
        self.flat = spec.get("flat_price")
        self.default = spec.get("default_price")
        self.bands: list[dict[str, Any]] = list(spec.get("bands") or [])

    @property
    def priced(self) -> bool:
        return (self.kind == "flat" and self.flat is not None) or self.kind == "time_of_use"

    def band(self, local: datetime) -> tuple[str, float | None]:
        if self.kind == "flat":
            return "flat", self.flat
        for band in self.bands:
            if local.weekday() in band.get("days", range(7)) and _in_window(local, band["start"], band["end"]):
                return str(band["name"]), float(band["price"])
        return "standard", self.default


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _change(now: float | None, before: float | None) -> float | None:
    if now is None or before is None or before == 0:
        return None
    return _round((now - before) / before * 100, 1)


class ContentBuilder:
    def __init__(self, db: Database, store: TimeseriesStore, factory_id: str) -> None:
        self.db = db
        self.store = store
        self.factory_id = factory_id
        self.scope = FactoryScope(factory_id)

    # ------------------------------------------------------------------ registry
    def _devices(self, wanted: list[str] | None) -> dict[str, str]:
        with self.db.factory_session(self.factory_id) as s:
            stmt = select(Device.device_id, Device.name).order_by(Device.device_id)
            if wanted is not None:
                stmt = stmt.where(Device.device_id.in_(wanted))
            return {d: n or d for d, n in s.execute(stmt)}

    def _properties(self) -> tuple[dict[str, tuple[str, str]], dict[str, set[str]]]:
        with self.db.factory_session(self.factory_id) as s:
            vocab = {n: (k, u) for n, k, u in s.execute(select(Property.name, Property.kind, Property.unit))}
            reported: dict[str, set[str]] = defaultdict(set)
            for d, p in s.execute(select(DeviceProperty.device_id, DeviceProperty.property_name)):
                reported[d].add(p)
        return vocab, reported

    @staticmethod
    def energy_source(props: set[str], vocab: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
        """(method, property) a device's energy is computed from: a kWh counter first, else kW power."""
        counters = sorted(
            (p for p in props if vocab.get(p, ("", ""))[0] == "counter" and vocab[p][1] == "kWh"),
            key=lambda p: (p != "energy_kwh", len(p), p),
        )
        if counters:
            return "counter", counters[0]
        power = sorted(
            (p for p in props if vocab.get(p, ("", ""))[1] == "kW" and vocab[p][0] == "gauge"),
            key=lambda p: (p != "power_kw", len(p), p),
        )
        return ("power", power[0]) if power else None

    # ------------------------------------------------------------------ energy
    def device_energy(
        self, sources: dict[str, tuple[str, str]], start: datetime, end: datetime, progress: Progress | None = None
    ) -> dict[str, DeviceEnergy]:
        by_prop: dict[tuple[str, str], list[str]] = defaultdict(list)
        for device, source in sources.items():
            by_prop[source].append(device)
        out: dict[str, DeviceEnergy] = {}
        total = max(1, len(sources))
        for (method, prop), devices in sorted(by_prop.items()):
            for i in range(0, len(devices), DEVICES_PER_READ):
                batch = devices[i : i + DEVICES_PER_READ]
                lead = LOOKBACK if method == "counter" else timedelta(0)
                stats = self.store.window_stats(self.scope, batch, [prop], start - lead, end, HOUR)
                for device in batch:
                    windows = stats.get(SeriesKey(device, prop), [])
                    if method == "counter":
                        before = [w for w in windows if w.ts < start]
                        out[device] = from_counter(
                            windows, start, end, self._raw(device, prop), before[-1] if before else None
                        )
                    else:
                        out[device] = from_power(windows, start, end)
                if progress is not None:
                    progress(len(out) * 100 // total, f"energy of {len(out):,} of {total:,} devices")
        return out

    def _raw(self, device: str, prop: str) -> Callable[[datetime, datetime], list[tuple[datetime, float]]]:
        def fetch(lo: datetime, hi: datetime) -> list[tuple[datetime, float]]:
            result = self.store.query(self.scope, [device], [prop], lo, hi)
            return [(s.ts, s.value) for s in result.series.get(SeriesKey(device, prop), [])]

        return fetch

    def energy_section(
        self,
        params: ReportParams,
        settings: Settings,
        tz: ZoneInfo,
        names: dict[str, str],
        sources: dict[str, tuple[str, str]],
        progress: Progress,
    ) -> dict[str, Any]:
        length = params.end - params.start
        # The previous period is read while this one is: the store answers one query while this
        # process parses the other's rows.
        with ThreadPoolExecutor(1, thread_name_prefix="report-previous") as pool:
            earlier = pool.submit(self.device_energy, sources, params.start - length, params.start)
            energies = self.device_energy(sources, params.start, params.end, progress)
            previous = earlier.result()
        tariff = Tariff(settings.tariff)
        hours_total = max(1.0, length / HOUR)
        factory_hourly: dict[datetime, float] = defaultdict(float)
        device_rows: list[dict[str, Any]] = []
        by_day: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        by_weekday: dict[int, float] = defaultdict(float)
        by_shift: dict[str, float] = defaultdict(float)
        by_band: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        shifts = settings.shifts or DEFAULT_SHIFTS
        local_cache: dict[datetime, tuple[datetime, str, float | None, str]] = {}

        def local_of(hour: datetime) -> tuple[datetime, str, float | None, str]:
            cached = local_cache.get(hour)
            if cached is None:
                local = hour.astimezone(tz)
                band, price = tariff.band(local)
                shift = next(
                    (
                        f"{s['name']} ({s['start'][:2]}-{s['end'][:2]})"
                        for s in shifts
                        if _in_window(local, s["start"], s["end"])
                    ),
                    "Other",
                )
                cached = local_cache[hour] = (local, band, price, shift)
            return cached

        total_cost = 0.0
        for device in sorted(names):
            energy = energies.get(device) or DeviceEnergy()
            cost = 0.0
            peak_kw, peak_at = 0.0, None
            for hour, kwh in energy.hourly.items():
                factory_hourly[hour] += kwh
                local, band, price, shift = local_of(hour)
                day = local.date().isoformat()
                by_day[day][0] += kwh
                by_weekday[local.weekday()] += kwh
                by_shift[shift] += kwh
                by_band[band][0] += kwh
                if price is not None:
                    cost += kwh * price
                    by_day[day][1] += kwh * price
                    by_band[band][1] += kwh * price
                if kwh > peak_kw:
                    peak_kw, peak_at = kwh, hour
            total_cost += cost
            device_rows.append(
                {
                    "device_id": device,
                    "name": names[device],
                    "kwh": _round(energy.total),
                    "share_pct": None,
                    "peak_kw": _round(peak_kw) if peak_at else None,
                    "peak_at": peak_at.astimezone(tz).isoformat() if peak_at else None,
                    "cost": _round(cost, 2) if tariff.priced else None,
                    "co2_kg": _round(energy.total * settings.emission_factor) if settings.emission_factor else None,
                    "method": energy.method,
                    "counter_resets": energy.resets,
                    "gaps": energy.gaps,
                    "completeness_pct": _round(min(100.0, energy.hours_with_data / hours_total * 100), 1),
                }
            )
        total = sum(e.total for e in energies.values())
        for row in device_rows:
            row["share_pct"] = _round(row["kwh"] / total * 100, 1) if total and row["kwh"] is not None else None
        device_rows.sort(key=lambda r: -(r["kwh"] or 0))
        prev_total = sum(e.total for e in previous.values())
        prev_cost: float | None = None
        if tariff.priced:
            prev_cost = sum(
                kwh * (local_of(hour)[2] or 0.0) for e in previous.values() for hour, kwh in e.hourly.items()
            )
        peak_hour = max(factory_hourly, key=lambda h: factory_hourly[h]) if factory_hourly else None
        factory_peak = factory_hourly[peak_hour] if peak_hour else None
        peak_device = None
        if peak_hour is not None:
            peak_device = max(energies, key=lambda d: energies[d].hourly.get(peak_hour, 0.0), default=None)
        average_kw = total / hours_total
        curve = sorted(factory_hourly.items())
        if len(curve) > MAX_LOAD_CURVE:  # a long period: daily means of the hourly demand
            daily: dict[str, list[float]] = defaultdict(list)
            for hour, kw in curve:
                daily[hour.astimezone(tz).date().isoformat()].append(kw)
            load_curve = [
                {"ts": datetime.fromisoformat(d).replace(tzinfo=tz).isoformat(), "kw": _round(sum(v) / len(v))}
                for d, v in sorted(daily.items())
            ]
        else:
            load_curve = [{"ts": h.astimezone(tz).isoformat(), "kw": _round(kw)} for h, kw in curve]
        day_counts: dict[int, int] = defaultdict(int)
        cursor = params.start.astimezone(tz).date()
        last_day = (params.end - timedelta(microseconds=1)).astimezone(tz).date()
        while cursor <= last_day:
            day_counts[cursor.weekday()] += 1
            cursor += timedelta(days=1)
        return {
            "total_kwh": _round(total),
            "previous_total_kwh": _round(prev_total) if previous else None,
            "change_pct": _change(total, prev_total),
            "cost": _round(total_cost, 2) if tariff.priced else None,
            "previous_cost": _round(prev_cost, 2) if prev_cost is not None else None,
            "co2_kg": _round(total * settings.emission_factor) if settings.emission_factor else None,
            "peak_kw": _round(factory_peak),
            "peak_at": peak_hour.astimezone(tz).isoformat() if peak_hour else None,
            "peak_device": peak_device,
            "average_kw": _round(average_kw),
            "load_factor": _round(average_kw / factory_peak, 3) if factory_peak else None,
            "devices": device_rows,
            "by_day": [
                {"date": d, "kwh": _round(v[0]), "cost": _round(v[1], 2) if tariff.priced else None}
                for d, v in sorted(by_day.items())
            ],
            "by_weekday": [
                {
                    "weekday": WEEKDAYS[i],
                    "kwh": _round(by_weekday.get(i, 0.0)),
                    "mean_kwh": _round(by_weekday.get(i, 0.0) / day_counts[i]) if day_counts.get(i) else None,
                }
                for i in range(7)
            ],
            "by_shift": [
                {"shift": k, "kwh": _round(v), "share_pct": _round(v / total * 100, 1) if total else None}
                for k, v in sorted(by_shift.items())
            ],
            "by_tariff_band": [
                {"band": k, "kwh": _round(v[0]), "cost": _round(v[1], 2) if tariff.priced else None}
                for k, v in sorted(by_band.items())
            ],
            "load_curve": load_curve,
        }

    # ------------------------------------------------------------------ properties
    def properties_section(
        self, params: ReportParams, names: dict[str, str], reported: dict[str, set[str]], units: dict[str, str]
    ) -> dict[str, Any]:
        """Min, mean, max, values and completeness (the share of the period's hours with data) per
        device and chosen property: one row per series from the hourly rollups when the period is
        whole hours, else from hourly windows."""
        wanted = sorted(set(params.properties))
        items: list[dict[str, Any]] = []
        devices = [d for d in sorted(names) if reported.get(d, set()) & set(wanted)]
        hours_total = max(1.0, (params.end - params.start) / HOUR)
        whole = params.start.minute == params.start.second == params.end.minute == params.end.second == 0
        for i in range(0, len(devices), DEVICES_PER_READ * 5):
            batch = devices[i : i + DEVICES_PER_READ * 5]
            if whole and not (params.start.microsecond or params.end.microsecond):
                summaries = self.store.summary_stats(self.scope, batch, wanted, params.start, params.end)
            else:
                summaries = {
                    key: SeriesSummary(
                        sum(w.samples for w in ws),
                        sum(w.sum for w in ws),
                        min(w.min for w in ws),
                        max(w.max for w in ws),
                        len(ws),
                    )
                    for key, ws in self.store.window_stats(
                        self.scope, batch, wanted, params.start, params.end, HOUR
                    ).items()
                    if ws
                }
            for device in batch:
                for prop in wanted:
                    if prop not in reported.get(device, set()):
                        continue
                    items.append(
                        _property_row(
                            device, prop, units.get(prop, ""), summaries.get(SeriesKey(device, prop)), hours_total
                        )
                    )
                    if len(items) >= MAX_PROPERTY_ROWS:
                        return {"items": items}
        return {"items": items}

    # ------------------------------------------------------------------ alerts
    def alerts_section(self, params: ReportParams, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
        with self.db.factory_session(self.factory_id) as s:
            stmt = select(Alert).where(Alert.opened_at >= params.start, Alert.opened_at < params.end)
            open_stmt = select(Alert).where(Alert.state != AlertState.resolved, Alert.opened_at < params.end)
            if params.devices is not None:
                stmt = stmt.where(Alert.device_id.in_(params.devices))
                open_stmt = open_stmt.where(Alert.device_id.in_(params.devices))
            alerts = list(s.execute(stmt).scalars())
            still_open = list(s.execute(open_stmt.order_by(Alert.opened_at)).scalars())
            for alert in {*alerts, *still_open}:
                s.expunge(alert)
        by_severity = {"critical": 0, "warning": 0, "info": 0}
        by_rule: dict[tuple[str, str], int] = defaultdict(int)
        by_device: dict[str, int] = defaultdict(int)
        over_time: dict[str, int] = defaultdict(int)
        ack = [(a.acknowledged_at - a.opened_at).total_seconds() for a in alerts if a.acknowledged_at]
        res = [(a.resolved_at - a.opened_at).total_seconds() for a in alerts if a.resolved_at]
        for a in alerts:
            by_severity[a.severity] = by_severity.get(a.severity, 0) + 1
            by_rule[(a.rule_id, a.rule_name)] += 1
            by_device[a.device_id] += 1
            over_time[a.opened_at.astimezone(tz).date().isoformat()] += 1

        def alert_row(a: Alert) -> dict[str, Any]:
            until = a.resolved_at or now
            return {
                "id": a.id,
                "rule_name": a.rule_name,
                "device_id": a.device_id,
                "severity": a.severity,
                "opened_at": a.opened_at.astimezone(tz).isoformat(),
                "resolved_at": a.resolved_at.astimezone(tz).isoformat() if a.resolved_at else None,
                "duration_seconds": _round((until - a.opened_at).total_seconds(), 1),
            }

        longest = sorted(alerts, key=lambda a: -((a.resolved_at or now) - a.opened_at).total_seconds())[:10]
        return {
            "total": len(alerts),
            "by_severity": by_severity,
            "by_rule": [
                {"rule_id": rid, "rule_name": name, "count": n}
                for (rid, name), n in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0][1]))
            ],
            "by_device": [
                {"device_id": d, "count": n} for d, n in sorted(by_device.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "mtta_seconds": _round(statistics.fmean(ack), 1) if ack else None,
            "mttr_seconds": _round(statistics.fmean(res), 1) if res else None,
            "longest": [alert_row(a) for a in longest],
            "open": [alert_row(a) for a in still_open[:200]],
            "over_time": [{"date": d, "count": n} for d, n in sorted(over_time.items())],
        }

    # ------------------------------------------------------------------ analytics
    def analytics_section(self, params: ReportParams, tz: ZoneInfo) -> dict[str, Any]:
        with self.db.factory_session(self.factory_id) as s:
            runs = list(
                s.execute(
                    select(Run)
                    .where(
                        Run.state == RunState.succeeded,
                        Run.finished_at >= params.start,
                        Run.finished_at < params.end,
                    )
                    .order_by(Run.finished_at.desc())
                    .limit(20)
                ).scalars()
            )
            datasets = {
                d.id: d.name
                for d in s.execute(select(Dataset).where(Dataset.id.in_({r.dataset_id for r in runs}))).scalars()
            }
            out = []
            for r in runs:
                headline = (r.summary or "").split(". ")[0].strip()
                out.append(
                    {
                        "id": r.id,
                        "task": r.task,
                        "mode": r.mode,
                        "model_name": r.model_name,
                        "model_version": r.model_version,
                        "finished_at": r.finished_at.astimezone(tz).isoformat() if r.finished_at else None,
                        "dataset_name": datasets.get(r.dataset_id, ""),
                        "headline": headline if headline.endswith(".") or not headline else headline + ".",
                        "metrics": {
                            k: (_round(float(v), 4) if isinstance(v, int | float) else None)
                            for k, v in sorted(r.metrics.items())
                        },
                    }
                )
        return {"runs": out}

    # ------------------------------------------------------------------ all of it
    def build(
        self, params: ReportParams, settings: Settings, report_id: str, generated_at: datetime, progress: Progress
    ) -> dict[str, Any]:
        with self.db.unscoped_session() as s:  # the factory's own row (the tenant root itself)
            factory = s.execute(select(Factory).where(Factory.id == self.factory_id)).scalar_one()
            name, tz_name = factory.name, factory.timezone or "UTC"
        tz = ZoneInfo(tz_name)
        names = self._devices(params.devices)
        vocab, reported = self._properties()
        units = {n: u for n, (_, u) in vocab.items()}
        sections = [s for s in SECTIONS if s in params.sections]
        content: dict[str, Any] = {
            "schema_version": "1.0",
            "report": {
                "id": report_id,
                "title": params.title,
                "factory": {"id": self.factory_id, "name": name, "timezone": tz_name},
                "period": {
                    "start": params.start.astimezone(tz).isoformat(),
                    "end": params.end.astimezone(tz).isoformat(),
                    "label": params.label,
                },
                "previous_period": {
                    "start": (params.start - (params.end - params.start)).astimezone(tz).isoformat(),
                    "end": params.start.astimezone(tz).isoformat(),
                },
                "generated_at": generated_at.astimezone(tz).isoformat(),
                "devices": params.devices,
                "sections": sections,
                "currency": settings.currency,
                "tariff": {
                    "kind": settings.tariff.get("kind") or "none",
                    "flat_price": settings.tariff.get("flat_price"),
                    "default_price": settings.tariff.get("default_price"),
                    "bands": list(settings.tariff.get("bands") or []),
                },
                "emission_factor_kg_per_kwh": settings.emission_factor,
            },
            "summary": {"highlights": [], "kpis": []},
            "energy": None,
            "properties": None,
            "alerts": None,
            "analytics": None,
        }
        if "energy" in sections:
            sources = {d: src for d in names if (src := self.energy_source(reported.get(d, set()), vocab))}
            for d in names:
                sources.setdefault(d, ("none", ""))
            priced = {d: s for d, s in sources.items() if s[0] != "none"}
            content["energy"] = self.energy_section(
                params, settings, tz, names, priced, lambda p, m: progress(5 + p * 60 // 100, m)
            )
            missing = [d for d, s in sources.items() if s[0] == "none"]
            for d in missing:
                content["energy"]["devices"].append(
                    {
                        "device_id": d,
                        "name": names[d],
                        "kwh": None,
                        "share_pct": None,
                        "peak_kw": None,
                        "peak_at": None,
                        "cost": None,
                        "co2_kg": None,
                        "method": "none",
                        "counter_resets": 0,
                        "gaps": 0,
                        "completeness_pct": None,
                    }
                )
        if "properties" in sections:
            progress(70, "statistics of the chosen properties")
            content["properties"] = self.properties_section(params, names, reported, units)
        if "alerts" in sections:
            progress(85, "alerts")
            content["alerts"] = self.alerts_section(params, tz, generated_at)
        if "analytics" in sections:
            progress(90, "analytics runs")
            content["analytics"] = self.analytics_section(params, tz)
        content["summary"] = summary(content)
        return content


def _property_row(device: str, prop: str, unit: str, summary: SeriesSummary | None, hours: float) -> dict[str, Any]:
    if summary is None or not summary.samples:
        return {
            "device_id": device,
            "property": prop,
            "unit": unit,
            "min": None,
            "mean": None,
            "max": None,
            "count": 0,
            "expected": None,
            "completeness_pct": 0.0,
        }
    per_hour = summary.samples / summary.hours if summary.hours else 0.0
    return {
        "device_id": device,
        "property": prop,
        "unit": unit,
        "min": _round(summary.min),
        "mean": _round(summary.sum / summary.samples),
        "max": _round(summary.max),
        "count": summary.samples,
        "expected": _round(per_hour * hours, 0) if per_hour else None,
        "completeness_pct": _round(min(100.0, summary.hours / hours * 100), 1),
    }


def _fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


def summary(content: dict[str, Any]) -> dict[str, Any]:
    """KPIs and plain-language highlights for the executive summary."""
    kpis: list[dict[str, Any]] = []
    highlights: list[str] = []
    currency = content["report"]["currency"]
    energy = content.get("energy")
    if energy:
        kpis += [
            {
                "key": "total_kwh",
                "label": "Energy consumed",
                "value": energy["total_kwh"],
                "unit": "kWh",
                "previous": energy["previous_total_kwh"],
                "change_pct": energy["change_pct"],
            },
            {
                "key": "cost",
                "label": "Energy cost",
                "value": energy["cost"],
                "unit": currency,
                "previous": energy["previous_cost"],
                "change_pct": _change(energy["cost"], energy["previous_cost"]),
            },
            {
                "key": "co2_kg",
                "label": "CO2 emitted",
                "value": energy["co2_kg"],
                "unit": "kg",
                "previous": None,
                "change_pct": None,
            },
            {
                "key": "peak_kw",
                "label": "Peak demand (hourly)",
                "value": energy["peak_kw"],
                "unit": "kW",
                "previous": None,
                "change_pct": None,
            },
            {
                "key": "load_factor",
                "label": "Load factor",
                "value": energy["load_factor"],
                "unit": "",
                "previous": None,
                "change_pct": None,
            },
        ]
        change = energy["change_pct"]
        trend = (
            ""
            if change is None
            else f", {abs(change):.1f} % {'more' if change > 0 else 'less'} than the previous period"
        )
        highlights.append(f"The plant consumed {_fmt(energy['total_kwh'], 'kWh')}{trend}.")
        if energy["cost"] is not None:
            highlights.append(f"At the factory's tariff this cost {_fmt(energy['cost'], currency, 2)}.")
        if energy["peak_kw"] is not None and energy["peak_at"]:
            highlights.append(
                f"Demand peaked at {_fmt(energy['peak_kw'], 'kW', 1)} (hourly average) "
                f"at {energy['peak_at'][:16].replace('T', ' ')}"
                + (f", led by {energy['peak_device']}." if energy["peak_device"] else ".")
            )
        top = [d for d in energy["devices"] if d["kwh"]][:3]
        if top:
            highlights.append(
                "The largest consumers were "
                + ", ".join(f"{d['name']} ({d['share_pct']:.0f} %)" for d in top if d["share_pct"] is not None)
                + "."
            )
        resets = sum(d["counter_resets"] for d in energy["devices"])
        if resets:
            highlights.append(f"{resets} meter counter reset(s) were detected and accounted for.")
    alerts = content.get("alerts")
    if alerts:
        kpis += [
            {
                "key": "alerts",
                "label": "Alerts raised",
                "value": float(alerts["total"]),
                "unit": "",
                "previous": None,
                "change_pct": None,
            },
            {
                "key": "open_alerts",
                "label": "Alerts still open",
                "value": float(len(alerts["open"])),
                "unit": "",
                "previous": None,
                "change_pct": None,
            },
            {
                "key": "mttr_hours",
                "label": "Mean time to resolve",
                "value": _round(alerts["mttr_seconds"] / 3600, 2) if alerts["mttr_seconds"] is not None else None,
                "unit": "h",
                "previous": None,
                "change_pct": None,
            },
        ]
        critical = alerts["by_severity"].get("critical", 0)
        highlights.append(
            f"{alerts['total']} alert(s) were raised ({critical} critical); {len(alerts['open'])} remain open."
        )
    analytics = content.get("analytics")
    if analytics and analytics["runs"]:
        highlights.append(f"{len(analytics['runs'])} analytics run(s) finished in the period.")
    if not highlights:
        highlights.append("No data was recorded for the chosen devices in this period.")
    return {"highlights": highlights, "kpis": kpis}


def month_bounds(year: int, month: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC start and end of a calendar month in the factory's time zone."""
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)
