"""What the ingest path needs from the registry, fast: known devices and auto-discovered properties.

Both caches answer from memory in the common case. A property seen for the first time is
registered in the database at once (factory vocabulary and the device's own list), before the
message is acknowledged, so it is usable in the portal and in rules right away. Activity
(last seen, firmware, last values) is gathered in memory and written in batches by
:meth:`Registry.flush`, so that 5,000 messages a second do not mean 5,000 updates a second.
A row's activity is written again only once it is ``activity_seconds`` newer than what the
database holds (a device's last_seen, its properties' last_seen and last value, the factory's
property last_seen), so 10,000 devices of 10 metrics cost a few hundred row updates a second, not 100,000 per
flush. A device's ``online_until`` (last_seen + its online window, models.online_window()) is written
with its last_seen, from the report interval of the cached fleet: a changed interval is recomputed
by the API at once and used here from the next fleet reload (``refresh_ttl``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from factoryops.core.db import Database, DatabaseUnavailable, is_unavailable
from factoryops.devices.inference import contradicts_counter, infer_kind, infer_unit
from factoryops.devices.models import ACTIVITY_SECONDS, Device, DeviceProperty, Property, online_window
from factoryops.notifications import system_alerts
from factoryops.telemetry.payload import parse_device_time

log = logging.getLogger(__name__)


def _bulk_set(s: Session, model: Any, factory_id: str, rows: list[dict[str, Any]]) -> None:
    """One UPDATE by primary key, executed for many rows (executemany), within the factory.

    Core, not the ORM's bulk update: the statement is compiled once and the tenant filter is
    written into it, so the per-row cost is one round trip. Every row carries the same columns.
    """
    if not rows:
        return
    table = model.__table__
    columns = [c for c in rows[0] if c != "id"]
    stmt = (
        update(table)
        .where(table.c.id == bindparam("row_id"), table.c.factory_id == factory_id)
        .values({c: bindparam(f"new_{c}") for c in columns})
    )
    s.connection().execute(stmt, [{"row_id": r["id"], **{f"new_{c}": r[c] for c in columns}} for r in rows])


@dataclass
class KnownDevice:
    row_id: str
    enabled: bool
    firmware: str | None
    type: str = ""
    report_interval: int | None = None  # seconds; sets the online window of the activity writes


@dataclass
class _Activity:
    last_seen: datetime
    values: dict[str, float]  # newest value of each metric since the last flush
    firmware: str | None = None
    device_time: Any = None  # as the device sent it; parsed only when written


class Registry:
    def __init__(
        self,
        db: Database,
        negative_ttl: float = 5.0,
        refresh_ttl: float = 30.0,
        activity_seconds: float = ACTIVITY_SECONDS,
        max_per_device: int = 0,
        max_per_factory: int = 0,
    ) -> None:
        self.db = db
        self.max_per_device = max_per_device  # 0: no limit
        self.max_per_factory = max_per_factory
        self.negative_ttl = negative_ttl
        self.refresh_ttl = refresh_ttl
        self.activity_seconds = activity_seconds
        self._written: dict[tuple[str, str], datetime] = {}  # (table, row id or factory/name) -> last_seen written
        self._lock = threading.RLock()
        self._fleets: dict[str, tuple[dict[str, KnownDevice], float]] = {}  # factory -> (devices, loaded at)
        self._misses: dict[tuple[str, str], float] = {}  # ids not registered, when last looked up
        self._props_loaded: set[str] = set()  # factories whose per-device property lists are in memory
        self._factory_props: dict[str, dict[str, tuple[str, str, bool]]] = {}  # name -> (row id, kind, inferred)
        self._device_props: dict[tuple[str, str], dict[str, str]] = {}  # name -> row id
        self._activity: dict[tuple[str, str], _Activity] = {}
        self._counters: dict[str, frozenset[str]] = {}  # factory -> names whose counter kind is inferred
        self._last_values: dict[tuple[str, str, str], float] = {}
        self._kind_corrections: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ devices
    def device(self, factory_id: str, device_id: str) -> KnownDevice | None:
        """The registered device, or None, from memory.

        A factory's devices are loaded in one query and reloaded every ``refresh_ttl`` seconds (so a
        disabled device or a changed type is noticed); an id missing from that load is looked up on
        its own (a device registered since), at most once per ``negative_ttl`` seconds, so a flood
        from unknown devices stays cheap.
        """
        now = time.monotonic()
        with self._lock:
            fleet = self._fleets.get(factory_id)
        if fleet is None or now - fleet[1] >= self.refresh_ttl:
            try:
                fleet = self._load_fleet(factory_id, now)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                if fleet is None:
                    raise DatabaseUnavailable(f"device registry unavailable: {exc}") from exc
                # The database is away (restarting): the devices known a moment ago still are.
                # Look again in a few seconds, not on every message.
                log.warning("device registry of factory %s not refreshed (database unavailable): %s", factory_id, exc)
                fleet = (fleet[0], now - self.refresh_ttl + self.negative_ttl)
                with self._lock:
                    self._fleets[factory_id] = fleet
        known = fleet[0].get(device_id)
        if known is not None:
            return known
        key = (factory_id, device_id)
        with self._lock:
            missed = self._misses.get(key)
        if missed is not None and now - missed < self.negative_ttl:
            return None
        try:
            known = self._load_device(factory_id, device_id)
        except Exception as exc:
            if is_unavailable(exc):
                raise DatabaseUnavailable(f"device registry unavailable: {exc}") from exc
            raise
        with self._lock:
            if known is None:
                if len(self._misses) > 100_000:
                    self._misses = {k: t for k, t in self._misses.items() if now - t < self.negative_ttl}
                self._misses[key] = now
            else:
                fleet[0][device_id] = known
                self._misses.pop(key, None)
        return known

    def _load_fleet(self, factory_id: str, now: float) -> tuple[dict[str, KnownDevice], float]:
        with self.db.factory_session(factory_id) as s:
            rows = s.execute(
                select(
                    Device.device_id,
                    Device.id,
                    Device.enabled,
                    Device.firmware_version,
                    Device.type,
                    Device.report_interval_seconds,
                )
            ).all()
        fleet = (
            {
                d: KnownDevice(row_id=i, enabled=bool(e), firmware=f, type=t or "", report_interval=r)
                for d, i, e, f, t, r in rows
            },
            now,
        )
        with self._lock:
            self._fleets[factory_id] = fleet
        return fleet

    def _known(self, factory_id: str, device_id: str) -> KnownDevice | None:
        with self._lock:
            fleet = self._fleets.get(factory_id)
        return fleet[0].get(device_id) if fleet else None

    def _load_device(self, factory_id: str, device_id: str) -> KnownDevice | None:
        with self.db.factory_session(factory_id) as s:
            row = s.execute(
                select(
                    Device.id, Device.enabled, Device.firmware_version, Device.type, Device.report_interval_seconds
                ).where(Device.device_id == device_id)
            ).first()
        if row is None:
            return None
        return KnownDevice(row_id=row[0], enabled=bool(row[1]), firmware=row[2], type=row[3], report_interval=row[4])

    def forget_device(self, factory_id: str, device_id: str) -> None:
        with self._lock:
            fleet = self._fleets.get(factory_id)
            if fleet:
                fleet[0].pop(device_id, None)
            self._misses.pop((factory_id, device_id), None)

    # ------------------------------------------------------------------ properties
    def _factory_vocabulary(self, factory_id: str) -> dict[str, tuple[str, str, bool]]:
        with self._lock:
            vocab = self._factory_props.get(factory_id)
        if vocab is None:
            with self.db.factory_session(factory_id) as s:
                rows = s.execute(select(Property.name, Property.id, Property.kind, Property.kind_inferred)).all()
            vocab = {name: (row_id, kind, bool(inferred)) for name, row_id, kind, inferred in rows}
            with self._lock:
                self._factory_props.setdefault(factory_id, vocab)
                vocab = self._factory_props[factory_id]
                self._counters.pop(factory_id, None)
        return vocab

    def _device_vocabulary(self, factory_id: str, device_id: str) -> dict[str, str]:
        """The device's registered properties (name -> row id); the factory's lists load in one query."""
        key = (factory_id, device_id)
        with self._lock:
            props = self._device_props.get(key)
            loaded = factory_id in self._props_loaded
        if props is not None:
            return props
        if not loaded:
            with self.db.factory_session(factory_id) as s:
                rows = s.execute(
                    select(DeviceProperty.device_id, DeviceProperty.property_name, DeviceProperty.id)
                ).all()
            fleet: dict[str, dict[str, str]] = {}
            for dev, name, row_id in rows:
                fleet.setdefault(dev, {})[name] = row_id
            with self._lock:
                for dev, names in fleet.items():
                    self._device_props.setdefault((factory_id, dev), names)
                self._props_loaded.add(factory_id)
        with self._lock:
            return self._device_props.setdefault(key, {})

    def _vocabularies(self, factory_id: str, device_id: str) -> tuple[dict[str, tuple[str, str, bool]], dict[str, str]]:
        """The factory's property vocabulary and the device's own list, from memory (loaded once)."""
        try:
            return self._factory_vocabulary(factory_id), self._device_vocabulary(factory_id, device_id)
        except Exception as exc:
            if is_unavailable(exc):
                raise DatabaseUnavailable(f"property registry unavailable: {exc}") from exc
            raise

    def over_limit(self, factory_id: str, device_id: str, names: list[str]) -> list[str]:
        """The names of ``names`` that would take the device or the factory past its property limit.

        A soft limit: two telemetry processes registering at the same moment may pass it by a few.
        """
        if not self.max_per_device and not self.max_per_factory:
            return []
        vocab, mine = self._vocabularies(factory_id, device_id)
        room_device = self.max_per_device - len(mine) if self.max_per_device else None
        room_factory = self.max_per_factory - len(vocab) if self.max_per_factory else None
        refused: list[str] = []
        for name in names:
            if name in mine:
                continue
            new_to_factory = name not in vocab
            if (room_device is not None and room_device <= 0) or (
                new_to_factory and room_factory is not None and room_factory <= 0
            ):
                refused.append(name)
                continue
            if room_device is not None:
                room_device -= 1
            if new_to_factory and room_factory is not None:
                room_factory -= 1
        return refused

    def ensure_properties(self, factory_id: str, device_id: str, names: list[str], now: datetime) -> list[str]:
        """Registers the names this device has not reported before; returns the ones new to the factory.

        Raises on a database failure: the caller rejects the message (spec 10.3).
        """
        vocab, mine = self._vocabularies(factory_id, device_id)
        missing_device = [n for n in names if n not in mine]
        if not missing_device:
            return []
        missing_factory = [n for n in missing_device if n not in vocab]
        for attempt in range(3):
            try:
                with self.db.factory_session(factory_id) as s:
                    if missing_factory:
                        existing = set(
                            s.execute(select(Property.name).where(Property.name.in_(missing_factory))).scalars()
                        )
                        for name in missing_factory:
                            if name not in existing:
                                s.add(
                                    Property(
                                        name=name,
                                        unit=infer_unit(name),
                                        kind=infer_kind(name),
                                        first_seen=now,
                                        last_seen=now,
                                    )
                                )
                    existing_dp = set(
                        s.execute(
                            select(DeviceProperty.property_name).where(
                                DeviceProperty.device_id == device_id,
                                DeviceProperty.property_name.in_(missing_device),
                            )
                        ).scalars()
                    )
                    for name in missing_device:
                        if name not in existing_dp:
                            s.add(
                                DeviceProperty(device_id=device_id, property_name=name, first_seen=now, last_seen=now)
                            )
                    s.flush()
                    props = s.execute(
                        select(Property.name, Property.id, Property.kind, Property.kind_inferred).where(
                            Property.name.in_(missing_factory or [""])
                        )
                    ).all()
                    dps = s.execute(
                        select(DeviceProperty.property_name, DeviceProperty.id).where(
                            DeviceProperty.device_id == device_id, DeviceProperty.property_name.in_(missing_device)
                        )
                    ).all()
                break
            except Exception as exc:
                # IntegrityError: another telemetry process registered the same name a moment ago,
                # read it back. Anything else, or a third collision: spec 10.3, a system alert.
                if isinstance(exc, IntegrityError) and attempt < 2:
                    continue
                if is_unavailable(exc):
                    # The database is away, not refusing: the message waits (not acknowledged) and is
                    # registered once the database is back; nothing to reject or alert about here.
                    raise DatabaseUnavailable(f"property registry unavailable: {exc}") from exc
                system_alerts.report(
                    factory_id,
                    "registration_failing",
                    f"New properties {sorted(missing_device)[:10]} of device {device_id!r} could not be "
                    f"registered: {type(exc).__name__}: {str(exc)[:300]}",
                )
                raise
        system_alerts.resolve(factory_id, "registration_failing")
        with self._lock:
            for name, row_id, kind, inferred in props:
                vocab[name] = (row_id, kind, bool(inferred))
            self._counters.pop(factory_id, None)
            for name, row_id in dps:
                mine[name] = row_id
        new_to_factory = [n for n in missing_factory if n in vocab]
        if new_to_factory:
            log.info("factory %s: new properties %s (first from device %s)", factory_id, new_to_factory, device_id)
        return new_to_factory

    # ------------------------------------------------------------------ activity, written in batches
    def record(
        self,
        factory_id: str,
        device_id: str,
        now: datetime,
        values: dict[str, float],
        firmware: str | None = None,
        device_time: Any = None,
    ) -> None:
        """Remembers the device's activity for the next flush: O(1) per message, not per metric."""
        key = (factory_id, device_id)
        with self._lock:
            act = self._activity.get(key)
            if act is None:
                self._activity[key] = _Activity(now, dict(values), firmware, device_time)
            else:
                act.last_seen = now
                act.values.update(values)
                if firmware:
                    act.firmware = firmware
                if device_time:
                    act.device_time = device_time
            counters = self._counters.get(factory_id)
            if counters is None:
                vocab = self._factory_props.get(factory_id, {})
                counters = frozenset(n for n, (_, kind, inferred) in vocab.items() if kind == "counter" and inferred)
                self._counters[factory_id] = counters
            if counters:
                self._check_counters(factory_id, device_id, counters.intersection(values), values)

    def _check_counters(self, factory_id: str, device_id: str, names: frozenset[str], values: dict[str, float]) -> None:
        """An inferred counter that falls without looking like a reset is a gauge after all."""
        vocab = self._factory_props.get(factory_id, {})
        for name in names:
            key = (factory_id, device_id, name)
            value = values[name]
            previous = self._last_values.get(key)
            if previous is not None and contradicts_counter(previous, value):
                self._kind_corrections.setdefault(factory_id, set()).add(name)
                info = vocab[name]
                vocab[name] = (info[0], "gauge", True)
                self._counters.pop(factory_id, None)
            self._last_values[key] = value

    def _due(self, key: tuple[str, str], seen: datetime) -> bool:
        """True (and remembered as written) when ``seen`` is activity_seconds past what was last written."""
        written = self._written.get(key)
        if written is not None and (seen - written).total_seconds() < self.activity_seconds:
            return False
        self._written[key] = seen
        return True

    def flush(self) -> int:
        """Writes gathered activity; returns the number of rows touched."""
        with self._lock:
            activity, self._activity = self._activity, {}
            corrections, self._kind_corrections = self._kind_corrections, {}
        by_factory: dict[str, list[tuple[str, _Activity]]] = {}
        prop_activity: dict[str, dict[str, tuple[datetime, float]]] = {}  # factory -> dp row id -> (t, v)
        prop_seen: dict[str, dict[str, datetime]] = {}  # factory -> property name -> t
        for (factory_id, device_id), act in activity.items():
            by_factory.setdefault(factory_id, []).append((device_id, act))
            mine = self._device_props.get((factory_id, device_id), {})
            dp_act = prop_activity.setdefault(factory_id, {})
            seen = prop_seen.setdefault(factory_id, {})
            for name, value in act.values.items():
                row_id = mine.get(name)
                if row_id is not None:
                    dp_act[row_id] = (act.last_seen, value)
                if seen.get(name, act.last_seen) <= act.last_seen:
                    seen[name] = act.last_seen
        touched = 0
        for factory_id in set(by_factory) | set(corrections):
            with self.db.factory_session(factory_id) as s:
                device_rows: list[dict[str, Any]] = []
                firmware_rows: list[dict[str, Any]] = []
                clock_rows: list[dict[str, Any]] = []
                for device_id, act in by_factory.get(factory_id, []):
                    known = self._known(factory_id, device_id)
                    if known is None:
                        continue
                    if act.firmware and act.firmware != known.firmware:
                        firmware_rows.append({"id": known.row_id, "firmware_version": act.firmware})
                        known.firmware = act.firmware
                    if self._due(("d", known.row_id), act.last_seen):
                        clock = parse_device_time(act.device_time) if act.device_time is not None else None
                        row: dict[str, Any] = {
                            "id": known.row_id,
                            "last_seen": act.last_seen,
                            "online_until": act.last_seen + online_window(known.report_interval),
                        }
                        if clock is not None:
                            clock_rows.append({**row, "last_device_time": clock})
                        else:
                            device_rows.append(row)
                _bulk_set(s, Device, factory_id, device_rows)
                _bulk_set(s, Device, factory_id, clock_rows)
                _bulk_set(s, Device, factory_id, firmware_rows)
                dp_rows = [
                    {"id": row_id, "last_seen": t, "last_value": v}
                    for row_id, (t, v) in prop_activity.get(factory_id, {}).items()
                    if self._due(("p", row_id), t)
                ]
                _bulk_set(s, DeviceProperty, factory_id, dp_rows)
                vocab = self._factory_props.get(factory_id, {})
                p_rows = [
                    {"id": vocab[name][0], "last_seen": t}
                    for name, t in prop_seen.get(factory_id, {}).items()
                    if name in vocab and self._due(("v", vocab[name][0]), t)
                ]
                _bulk_set(s, Property, factory_id, p_rows)
                for name in corrections.get(factory_id, set()):
                    s.execute(
                        update(Property)
                        .where(Property.name == name, Property.kind_inferred)
                        .values(kind="gauge")
                        .execution_options(synchronize_session=False)
                    )
                touched += len(device_rows) + len(clock_rows) + len(firmware_rows) + len(dp_rows) + len(p_rows)
        return touched
