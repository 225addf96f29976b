"""What the ingest path needs from the registry, fast: known devices and auto-discovered properties.

Both caches answer from memory in the common case. A property seen for the first time is
registered in the database at once (factory vocabulary and the device's own list), before the
message is acknowledged, so it is usable in the portal and in rules right away. Activity
(last seen, firmware, last values) is gathered in memory and written in batches by
:meth:`Registry.flush`, so that 5,000 messages a second do not mean 5,000 updates a second.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from factoryops.core.db import Database
from factoryops.devices.inference import contradicts_counter, infer_kind, infer_unit
from factoryops.devices.models import Device, DeviceProperty, Property

log = logging.getLogger(__name__)


@dataclass
class KnownDevice:
    row_id: str
    enabled: bool
    firmware: str | None
    type: str = ""


@dataclass
class _Activity:
    last_seen: datetime
    firmware: str | None = None
    device_time: datetime | None = None


class Registry:
    def __init__(self, db: Database, negative_ttl: float = 5.0, refresh_ttl: float = 30.0) -> None:
        self.db = db
        self.negative_ttl = negative_ttl
        self.refresh_ttl = refresh_ttl
        self._lock = threading.RLock()
        self._devices: dict[tuple[str, str], tuple[KnownDevice | None, float]] = {}
        self._factory_props: dict[str, dict[str, tuple[str, str, bool]]] = {}  # name -> (row id, kind, inferred)
        self._device_props: dict[tuple[str, str], dict[str, str]] = {}  # name -> row id
        self._activity: dict[tuple[str, str], _Activity] = {}
        self._prop_activity: dict[str, dict[str, tuple[datetime, float]]] = {}  # factory -> dp row id -> (t, v)
        self._factory_prop_seen: dict[str, dict[str, datetime]] = {}
        self._last_values: dict[tuple[str, str, str], float] = {}
        self._kind_corrections: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ devices
    def device(self, factory_id: str, device_id: str) -> KnownDevice | None:
        """The registered device, or None; unknown ids are remembered briefly so floods stay cheap."""
        key = (factory_id, device_id)
        now = time.monotonic()
        with self._lock:
            cached = self._devices.get(key)
        if cached is not None:
            known, at = cached
            ttl = self.refresh_ttl if known is not None else self.negative_ttl
            if now - at < ttl:
                return known
        known = self._load_device(factory_id, device_id)
        with self._lock:
            self._devices[key] = (known, now)
        return known

    def _load_device(self, factory_id: str, device_id: str) -> KnownDevice | None:
        with self.db.factory_session(factory_id) as s:
            row = s.execute(
                select(Device.id, Device.enabled, Device.firmware_version, Device.type).where(
                    Device.device_id == device_id
                )
            ).first()
        return KnownDevice(row_id=row[0], enabled=bool(row[1]), firmware=row[2], type=row[3]) if row else None

    def forget_device(self, factory_id: str, device_id: str) -> None:
        with self._lock:
            self._devices.pop((factory_id, device_id), None)

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
        return vocab

    def _device_vocabulary(self, factory_id: str, device_id: str) -> dict[str, str]:
        key = (factory_id, device_id)
        with self._lock:
            props = self._device_props.get(key)
        if props is None:
            with self.db.factory_session(factory_id) as s:
                rows = s.execute(
                    select(DeviceProperty.property_name, DeviceProperty.id).where(DeviceProperty.device_id == device_id)
                ).all()
            props = {name: row_id for name, row_id in rows}
            with self._lock:
                self._device_props.setdefault(key, props)
                props = self._device_props[key]
        return props

    def ensure_properties(self, factory_id: str, device_id: str, names: list[str], now: datetime) -> list[str]:
        """Registers the names this device has not reported before; returns the ones new to the factory.

        Raises on a database failure: the caller rejects the message (spec 10.3).
        """
        vocab = self._factory_vocabulary(factory_id)
        mine = self._device_vocabulary(factory_id, device_id)
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
            except IntegrityError:
                # Another telemetry process registered the same name a moment ago: read it back.
                if attempt == 2:
                    raise
        with self._lock:
            for name, row_id, kind, inferred in props:
                vocab[name] = (row_id, kind, bool(inferred))
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
        device_time: datetime | None = None,
    ) -> None:
        vocab = self._factory_props.get(factory_id, {})
        mine = self._device_props.get((factory_id, device_id), {})
        with self._lock:
            act = self._activity.setdefault((factory_id, device_id), _Activity(last_seen=now))
            act.last_seen = now
            if firmware:
                act.firmware = firmware
            if device_time:
                act.device_time = device_time
            dp_act = self._prop_activity.setdefault(factory_id, {})
            seen = self._factory_prop_seen.setdefault(factory_id, {})
            for name, value in values.items():
                row_id = mine.get(name)
                if row_id is not None:
                    dp_act[row_id] = (now, value)
                seen[name] = now
                info = vocab.get(name)
                if info is not None and info[1] == "counter" and info[2]:
                    key = (factory_id, device_id, name)
                    previous = self._last_values.get(key)
                    if previous is not None and contradicts_counter(previous, value):
                        self._kind_corrections.setdefault(factory_id, set()).add(name)
                        vocab[name] = (info[0], "gauge", True)
                    self._last_values[key] = value

    def flush(self) -> int:
        """Writes gathered activity; returns the number of rows touched."""
        with self._lock:
            activity, self._activity = self._activity, {}
            prop_activity, self._prop_activity = self._prop_activity, {}
            prop_seen, self._factory_prop_seen = self._factory_prop_seen, {}
            corrections, self._kind_corrections = self._kind_corrections, {}
        by_factory: dict[str, list[tuple[str, _Activity]]] = {}
        for (factory_id, device_id), act in activity.items():
            by_factory.setdefault(factory_id, []).append((device_id, act))
        touched = 0
        for factory_id in set(by_factory) | set(prop_activity) | set(prop_seen) | set(corrections):
            with self.db.factory_session(factory_id) as s:
                device_rows: list[dict[str, Any]] = []
                for device_id, act in by_factory.get(factory_id, []):
                    known = self._devices.get((factory_id, device_id), (None, 0.0))[0]
                    if known is None:
                        continue
                    row: dict[str, Any] = {"id": known.row_id, "last_seen": act.last_seen}
                    if act.firmware and act.firmware != known.firmware:
                        row["firmware_version"] = act.firmware
                        known.firmware = act.firmware
                    device_rows.append(row)
                if device_rows:
                    s.execute(update(Device), device_rows)
                dp_rows = [
                    {"id": row_id, "last_seen": t, "last_value": v}
                    for row_id, (t, v) in prop_activity.get(factory_id, {}).items()
                ]
                if dp_rows:
                    s.execute(update(DeviceProperty), dp_rows)
                vocab = self._factory_props.get(factory_id, {})
                p_rows = [
                    {"id": vocab[name][0], "last_seen": t}
                    for name, t in prop_seen.get(factory_id, {}).items()
                    if name in vocab
                ]
                if p_rows:
                    s.execute(update(Property), p_rows)
                for name in corrections.get(factory_id, set()):
                    s.execute(
                        update(Property)
                        .where(Property.name == name, Property.kind_inferred)
                        .values(kind="gauge")
                        .execution_options(synchronize_session=False)
                    )
                touched += len(device_rows) + len(dp_rows) + len(p_rows)
        return touched
