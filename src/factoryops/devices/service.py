"""The device registry: create, list and search, import, credentials, and the property vocabulary."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from factoryops.alerts import service as alerts_service
from factoryops.core.db import utcnow
from factoryops.core.errors import ApiError, not_found
from factoryops.core.mqtt_password import hash_mqtt_password, new_mqtt_password
from factoryops.core.pagination import PageParams, paginate
from factoryops.devices import schemas
from factoryops.devices.models import (
    DEFAULT_ONLINE_WINDOW,
    MAX_REPORT_INTERVAL_SECONDS,
    Device,
    DeviceProperty,
    Property,
    online_window,
)
from factoryops.rules.definition import RuleDefinition, Scope
from factoryops.rules.models import Rule
from factoryops.tenancy.service import Principal, audit

ONLINE_WINDOW = DEFAULT_ONLINE_WINDOW  # of a device without a report interval; see models.online_window()
IMPORT_COLUMNS = ("device_id", "name", "type", "location", "report_interval_seconds")
MAX_IMPORT_ROWS = 20_000


def telemetry_topic(factory_id: str, device_id: str) -> str:
    return f"factories/{factory_id}/devices/{device_id}/telemetry"


def mqtt_username(factory_id: str, device_id: str) -> str:
    return f"{factory_id}/{device_id}"


def device_status(device: Device, now: datetime | None = None) -> schemas.DeviceStatus:
    """The device's status, as status_conditions() decides it in SQL (online: online_until not past)."""
    if not device.enabled:
        return "disabled"
    if device.last_seen is None:
        return "never_seen"
    now = now or utcnow()
    return "online" if device.online_until is not None and device.online_until >= now else "offline"


def status_conditions(now: datetime) -> dict[str, ColumnElement[bool]]:
    """Each status as a SQL condition on the devices table: the same decision as device_status()."""
    seen = Device.last_seen.is_not(None)
    return {
        "disabled": ~Device.enabled,
        "never_seen": and_(Device.enabled, Device.last_seen.is_(None)),
        "online": and_(Device.enabled, seen, Device.online_until >= now),
        "offline": and_(Device.enabled, seen, or_(Device.online_until.is_(None), Device.online_until < now)),
    }


def device_out(device: Device) -> schemas.DeviceOut:
    out = schemas.DeviceOut.model_validate(device)
    out.status = device_status(device)
    out.online_window_seconds = int(online_window(device.report_interval_seconds).total_seconds())
    return out


def _parse_interval(text: str) -> tuple[int | None, str | None]:
    """A CSV cell of report_interval_seconds: (seconds or None when empty, problem or None)."""
    if not text:
        return None, None
    if text.isdigit() and 1 <= int(text) <= MAX_REPORT_INTERVAL_SECONDS:
        return int(text), None
    return None, f"report_interval_seconds is {schemas.REPORT_INTERVAL_RULE}, not {text[:40]!r}"


def _with_credentials(device: Device, password: str) -> schemas.DeviceCreated:
    return schemas.DeviceCreated(
        **device_out(device).model_dump(),
        mqtt=schemas.MqttCredentials(
            username=device.mqtt_username,
            password=password,
            client_id=device.mqtt_username,
            topic=telemetry_topic(device.factory_id, device.device_id),
        ),
    )


class DeviceService:
    def get(self, s: Session, device_id: str) -> Device:
        device = s.execute(select(Device).where(Device.device_id == device_id)).scalar_one_or_none()
        if device is None:
            raise not_found("device")
        return device

    def search(
        self, s: Session, params: PageParams, q: str | None, status: str | None, type_: str | None
    ) -> tuple[list[schemas.DeviceOut], int]:
        stmt = select(Device).order_by(Device.device_id)
        if q:
            like = f"%{q.strip().lower()}%"
            stmt = stmt.where(
                or_(
                    func.lower(Device.device_id).like(like),
                    func.lower(Device.name).like(like),
                    func.lower(Device.location).like(like),
                    func.lower(Device.type).like(like),
                )
            )
        if type_:
            stmt = stmt.where(Device.type == type_)
        now = utcnow()
        if status:
            stmt = stmt.where(status_conditions(now)[status])
        rows, total = paginate(s, stmt, params)
        return [device_out(d) for d in rows], total

    def summary(self, s: Session) -> schemas.DeviceSummary:
        conditions = status_conditions(utcnow())

        def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        row = s.execute(
            select(
                func.count(Device.id),
                count_if(conditions["online"]),
                count_if(conditions["offline"]),
                count_if(conditions["never_seen"]),
                count_if(conditions["disabled"]),
            )
        ).one()
        total, online, offline, never, disabled = (int(v or 0) for v in row)
        return schemas.DeviceSummary(
            total=total,
            online=online,
            offline=offline,
            never_seen=never,
            disabled=disabled,
            online_window_seconds=int(ONLINE_WINDOW.total_seconds()),
        )

    def _new(self, factory_id: str, data: schemas.DeviceCreate) -> tuple[Device, str]:
        password = new_mqtt_password()
        device = Device(
            factory_id=factory_id,
            device_id=data.device_id,
            name=data.name.strip() or data.device_id,
            type=data.type.strip(),
            location=data.location.strip(),
            report_interval_seconds=data.report_interval_seconds,
            mqtt_username=mqtt_username(factory_id, data.device_id),
            mqtt_password_hash=hash_mqtt_password(password),
        )
        return device, password

    def create(self, s: Session, actor: Principal, data: schemas.DeviceCreate, ip: str) -> schemas.DeviceCreated:
        assert actor.factory_id is not None
        if s.execute(select(Device.id).where(Device.device_id == data.device_id)).first() is not None:
            raise ApiError(
                409,
                "device_exists",
                f"A device with the id {data.device_id!r} already exists in this factory.",
                details=[{"field": "body.device_id", "message": "already taken"}],
            )
        device, password = self._new(actor.factory_id, data)
        s.add(device)
        s.flush()
        audit(s, "device_created", actor, "device", device.device_id, ip, name=device.name)
        return _with_credentials(device, password)

    def update(
        self, s: Session, actor: Principal, device_id: str, data: schemas.DeviceUpdate, ip: str
    ) -> schemas.DeviceOut:
        device = self.get(s, device_id)
        changes = {}
        wanted = data.model_dump(exclude_none=True)
        if "report_interval_seconds" in data.model_fields_set:  # null clears it
            wanted["report_interval_seconds"] = data.report_interval_seconds
        for key, value in wanted.items():
            value = value.strip() if isinstance(value, str) else value
            if getattr(device, key) != value:
                changes[key] = [getattr(device, key), value]
                setattr(device, key, value)
        if changes:
            audit(s, "device_updated", actor, "device", device.device_id, ip, changes=changes)
            if "enabled" in changes and not device.enabled:
                self._resolve_unjudged(s, actor, ip, disabled=[device.device_id])
            elif "type" in changes:
                self._resolve_unjudged(s, actor, ip, retyped={device.device_id: changes["type"]})
        return device_out(device)

    def _resolve_unjudged(
        self,
        s: Session,
        actor: Principal,
        ip: str,
        disabled: list[str] | None = None,
        retyped: dict[str, list[str]] | None = None,
    ) -> list[str]:
        """Resolves the open alerts that nothing can judge any more after a change of devices.

        A disabled device's messages are refused, so none of its alerts could ever resolve: all
        of them are resolved. A device whose type changed ([old, new] in ``retyped``) leaves the
        scope of rules made for its old type: their alerts on it are resolved. Each with a note
        naming the change and its author, through the alerts' own service, and audited.
        """
        disabled = disabled or []
        retyped = retyped or {}
        s.flush()  # the devices' rows are written (and locked) before their alerts are read under lock
        open_alerts = alerts_service.unresolved(s, device_ids=[*disabled, *retyped], lock=True)
        if not open_alerts:
            return []
        scopes: dict[str, Scope | None] = {}
        for rule_id, definition in s.execute(
            select(Rule.id, Rule.definition).where(Rule.id.in_(sorted({a.rule_id for a in open_alerts})))
        ):
            try:
                scopes[rule_id] = RuleDefinition.model_validate(definition).scope
            except ValueError:
                scopes[rule_id] = None  # a stored rule that no longer validates: left as it is
        resolved: dict[tuple[str, str], list[str]] = {}  # (device, reason) -> ids
        for alert in open_alerts:
            if alert.device_id in disabled:
                reason, note = "device_disabled", f"Resolved: the device was disabled by {actor.email}."
            else:
                old, new = retyped[alert.device_id]
                scope = scopes.get(alert.rule_id)
                if scope is None or scope.takes_in(alert.device_id, new):
                    continue
                reason = "device_out_of_scope"
                note = (
                    f"Resolved: {actor.email} changed the device's type from {old!r} to {new!r}; "
                    "the rule no longer applies to it."
                )
            resolved.setdefault((alert.device_id, reason), []).extend(
                alerts_service.resolve_all(s, [alert], actor.email, note)
            )
        for (device_id, reason), ids in resolved.items():
            if ids:
                audit(s, "alerts_resolved", actor, "device", device_id, ip, reason=reason, ids=ids)
        return [alert_id for ids in resolved.values() for alert_id in ids]

    def rotate_credentials(self, s: Session, actor: Principal, device_id: str, ip: str) -> schemas.DeviceCreated:
        device = self.get(s, device_id)
        password = new_mqtt_password()
        device.mqtt_password_hash = hash_mqtt_password(password)
        device.updated_at = utcnow()
        audit(s, "device_credentials_rotated", actor, "device", device.device_id, ip)
        return _with_credentials(device, password)

    def import_csv(self, s: Session, actor: Principal, text: str, ip: str) -> schemas.ImportResult:
        """Creates new devices and updates the attributes of existing ones; bad lines are reported."""
        assert actor.factory_id is not None
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "device_id" not in header:
            raise ApiError(
                422,
                "bad_csv",
                "The CSV needs a header line with at least the column device_id "
                f"(allowed columns: {', '.join(IMPORT_COLUMNS)}).",
            )
        existing = {d.device_id: d for d in s.execute(select(Device)).scalars()}
        fresh: list[tuple[Device, str]] = []
        errors: list[schemas.ImportError_] = []
        updated = 0
        retyped: dict[str, list[str]] = {}
        seen: set[str] = set()
        for number, raw in enumerate(reader, start=2):
            if number - 1 > MAX_IMPORT_ROWS:
                errors.append(schemas.ImportError_(line=number, device_id="", message="too many rows; split the file"))
                break
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
            device_id = row.get("device_id", "")
            interval, problem = _parse_interval(row.get("report_interval_seconds", ""))
            problems = [problem] if problem else []
            try:
                data = schemas.DeviceCreate(
                    device_id=device_id,
                    name=row.get("name", ""),
                    type=row.get("type", ""),
                    location=row.get("location", ""),
                    report_interval_seconds=interval,
                )
            except ValidationError as exc:
                problems[:0] = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]
            if problems:
                errors.append(schemas.ImportError_(line=number, device_id=device_id, message="; ".join(problems)))
                continue
            if device_id in seen:
                errors.append(schemas.ImportError_(line=number, device_id=device_id, message="repeated in the file"))
                continue
            seen.add(device_id)
            current = existing.get(device_id)
            if current is None:
                device, password = self._new(actor.factory_id, data)
                s.add(device)
                fresh.append((device, password))
            else:
                changed = False
                for key in ("name", "type", "location"):
                    value = getattr(data, key).strip()
                    if key in row and value and getattr(current, key) != value:
                        if key == "type":
                            retyped[device_id] = [current.type, value]
                        setattr(current, key, value)
                        changed = True
                if interval is not None and current.report_interval_seconds != interval:
                    current.report_interval_seconds = interval  # online_until follows (models.py)
                    changed = True
                updated += int(changed)
        s.flush()
        if retyped:
            self._resolve_unjudged(s, actor, ip, retyped=retyped)
        created = [_with_credentials(device, password) for device, password in fresh]
        audit(s, "devices_imported", actor, "device", "", ip, created=len(created), updated=updated, errors=len(errors))
        return schemas.ImportResult(created=created, updated=updated, errors=errors)

    # ------------------------------------------------------------------ properties
    def device_properties(self, s: Session, device_id: str) -> list[DeviceProperty]:
        self.get(s, device_id)
        return list(
            s.execute(
                select(DeviceProperty)
                .where(DeviceProperty.device_id == device_id)
                .order_by(DeviceProperty.property_name)
            ).scalars()
        )

    def list_properties(self, s: Session, params: PageParams, q: str | None) -> tuple[list[Property], int]:
        stmt = select(Property).order_by(Property.name)
        if q:
            like = f"%{q.strip().lower()}%"
            stmt = stmt.where(or_(func.lower(Property.name).like(like), func.lower(Property.display_name).like(like)))
        return paginate(s, stmt, params)

    def update_property(
        self, s: Session, actor: Principal, name: str, data: schemas.PropertyUpdate, ip: str
    ) -> Property:
        prop = s.execute(select(Property).where(Property.name == name)).scalar_one_or_none()
        if prop is None:
            raise not_found("property")
        changes = {}
        if data.display_name is not None and data.display_name != prop.display_name:
            changes["display_name"] = [prop.display_name, data.display_name]
            prop.display_name = data.display_name.strip()
        if data.unit is not None and data.unit != prop.unit:
            changes["unit"] = [prop.unit, data.unit]
            prop.unit = data.unit.strip()
            prop.unit_inferred = False
        if data.kind is not None and data.kind != prop.kind:
            changes["kind"] = [prop.kind, data.kind]
            prop.kind = data.kind
            prop.kind_inferred = False
        if changes:
            audit(s, "property_updated", actor, "property", prop.name, ip, changes=changes)
        return prop


def existing_device_ids(s: Session, device_ids: list[str] | set[str]) -> set[str]:
    """Which of these device ids the session's factory has (read in batches of 500)."""
    wanted = sorted(set(device_ids))
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        found.update(s.execute(select(Device.device_id).where(Device.device_id.in_(wanted[i : i + 500]))).scalars())
    return found


def require_devices(s: Session, device_ids: list[str]) -> None:
    """422 ``unknown_devices`` naming (up to ten of) the ids the factory does not have."""
    found = existing_device_ids(s, device_ids)
    missing = [d for d in sorted(set(device_ids)) if d not in found]
    if missing:
        raise ApiError(422, "unknown_devices", f"unknown device(s): {', '.join(missing[:10])}")
