"""Saving rules: validated against the factory's own devices and discovered properties."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.alerts import service as alerts_service
from factoryops.core.db import utcnow
from factoryops.core.errors import ApiError, not_found
from factoryops.core.pagination import PageParams, paginate
from factoryops.devices.models import Device, Property
from factoryops.rules import schemas
from factoryops.rules.definition import RuleDefinition, properties_of
from factoryops.rules.models import Rule
from factoryops.tenancy.models import User
from factoryops.tenancy.service import Principal, audit


class RuleService:
    def _check_against_factory(self, s: Session, definition: RuleDefinition) -> None:
        problems: list[dict[str, Any]] = []
        used = properties_of(definition.condition) | (properties_of(definition.clear) if definition.clear else set())
        known = set(s.execute(select(Property.name).where(Property.name.in_(sorted(used)))).scalars())
        for name in sorted(used - known):
            problems.append(
                {
                    "field": "body.definition.condition",
                    "message": f"unknown property {name!r}: no device has reported it",
                }
            )
        scope = definition.scope
        if scope.device_ids:
            found = set(s.execute(select(Device.device_id).where(Device.device_id.in_(scope.device_ids))).scalars())
            for device_id in sorted(set(scope.device_ids) - found):
                problems.append(
                    {"field": "body.definition.scope.device_ids", "message": f"unknown device {device_id!r}"}
                )
        if (
            scope.kind == "type"
            and s.execute(select(Device.id).where(Device.type == scope.device_type).limit(1)).first() is None
        ):
            problems.append(
                {
                    "field": "body.definition.scope.device_type",
                    "message": f"no device has the type {scope.device_type!r}",
                }
            )
        if definition.notify.users:
            users = set(s.execute(select(User.id).where(User.id.in_(definition.notify.users))).scalars())
            for user_id in [u for u in definition.notify.users if u not in users]:
                problems.append({"field": "body.definition.notify.users", "message": f"unknown user {user_id!r}"})
        if problems:
            raise ApiError(
                422,
                "invalid_rule",
                "The rule refers to things this factory does not have: "
                + "; ".join(p["message"] for p in problems)
                + ".",
                details=problems,
            )

    def get(self, s: Session, rule_id: str) -> Rule:
        rule = s.get(Rule, rule_id)
        if rule is None:
            raise not_found("rule")
        return rule

    def search(self, s: Session, params: PageParams, q: str | None, enabled: bool | None) -> tuple[list[Rule], int]:
        stmt = select(Rule).order_by(Rule.name, Rule.id)
        if q:
            stmt = stmt.where(Rule.name.ilike(f"%{q.strip()}%"))
        if enabled is not None:
            stmt = stmt.where(Rule.enabled == enabled)
        return paginate(s, stmt, params)

    def create(self, s: Session, actor: Principal, body: schemas.RuleCreate, ip: str) -> Rule:
        self._check_against_factory(s, body.definition)
        rule = Rule(
            name=body.name.strip(),
            description=body.description,
            enabled=body.enabled,
            definition=body.definition.model_dump(mode="json"),
            created_by=actor.email,
        )
        s.add(rule)
        s.flush()
        audit(s, "rule_created", actor, "rule", rule.id, ip, name=rule.name)
        return rule

    def update(self, s: Session, actor: Principal, rule_id: str, body: schemas.RuleUpdate, ip: str) -> Rule:
        rule = self.get(s, rule_id)
        changes: dict[str, Any] = {}
        if body.definition is not None:
            self._check_against_factory(s, body.definition)
            new = body.definition.model_dump(mode="json")
            if new != rule.definition:
                changes["definition"] = True
                rule.definition = new
        for key in ("name", "description", "enabled"):
            value = getattr(body, key)
            if value is not None and value != getattr(rule, key):
                changes[key] = [getattr(rule, key), value]
                setattr(rule, key, value)
        if changes:
            rule.version += 1
            rule.updated_at = utcnow()
            audit(s, "rule_updated", actor, "rule", rule.id, ip, changes=changes, version=rule.version)
            if not rule.enabled or "definition" in changes:
                self._resolve_unjudged(s, actor, rule, ip)
        return rule

    def _resolve_unjudged(self, s: Session, actor: Principal, rule: Rule, ip: str) -> list[str]:
        """Resolves the rule's open alerts that nothing can judge any more after this change.

        The engine evaluates only enabled rules, and a rule only for the devices in its scope: an
        alert of a disabled rule, or of a device the changed scope no longer takes in, would stay
        open for ever. Those are resolved in the same transaction, with a note naming the change
        and its author, and audited. The telemetry processes drop the rule's state when they next
        load the rules (within seconds), and until then open no alert for a rule version or a
        device that is no longer current (see ``RuleEngine._open_new``).
        """
        s.flush()  # the rule's row is written (and locked) before its alerts are read under lock
        open_alerts = alerts_service.unresolved(s, rule_id=rule.id, lock=True)
        if not open_alerts:
            return []
        if not rule.enabled:
            reason = "rule_disabled"
            note = f"Resolved: the rule was disabled by {actor.email}."
            stranded = open_alerts
        else:
            reason = "device_out_of_scope"
            note = (
                f"Resolved: the rule was changed by {actor.email} (version {rule.version}) "
                "and no longer applies to this device."
            )
            scope = RuleDefinition.model_validate(rule.definition).scope
            device_ids = sorted({a.device_id for a in open_alerts})
            types = {
                device_id: device_type
                for device_id, device_type in s.execute(
                    select(Device.device_id, Device.type).where(Device.device_id.in_(device_ids))
                )
            }
            stranded = [a for a in open_alerts if not scope.takes_in(a.device_id, types.get(a.device_id, ""))]
        resolved = alerts_service.resolve_all(s, stranded, actor.email, note)
        if resolved:
            audit(s, "alerts_resolved", actor, "rule", rule.id, ip, reason=reason, ids=resolved, version=rule.version)
        return resolved
