"""API shapes of rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.core.moments import Moment
from factoryops.core.text import Line, Text
from factoryops.rules.backtest import as_utc, period_problem
from factoryops.rules.definition import RuleDefinition
from factoryops.tenancy.models import User

EXAMPLE: dict[str, Any] = {
    "name": "Compressor overload",
    "description": "Power above 90 kW for five minutes on weekdays",
    "enabled": True,
    "definition": {
        "scope": {"kind": "type", "device_type": "compressor"},
        "condition": {"property": "power_kw", "operator": ">", "value": 90, "for_seconds": 300},
        "schedule": {"days": [0, 1, 2, 3, 4], "windows": [{"start": "06:00", "end": "22:00"}]},
        "severity": "critical",
        "cooldown_seconds": 600,
        "auto_resolve": True,
        "clear": {"property": "power_kw", "operator": "<", "value": 80},
    },
}


class RuleCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})
    name: Line = Field(..., min_length=1, max_length=200)
    description: Text = Field("", max_length=2000)
    enabled: bool = True
    definition: RuleDefinition


class RuleUpdate(BaseModel):
    name: Line | None = Field(None, min_length=1, max_length=200)
    description: Text | None = Field(None, max_length=2000)
    enabled: bool | None = None
    definition: RuleDefinition | None = None


class RuleWarning(BaseModel):
    """Something about a valid rule that its author most likely wants to know (the rule is saved)."""

    code: str = Field(
        ...,
        description="no_recipients: the rule opens alerts but notifies nobody. no_active_recipients: it notifies "
        "only users who are disabled or gone. disabled_recipients: some of its users are disabled or gone.",
    )
    message: str


NO_RECIPIENTS = RuleWarning(
    code="no_recipients",
    message="This rule opens alerts but notifies nobody: add users or channels under Notify.",
)


def rule_warnings(definition: RuleDefinition, unreachable: list[str] | None = None) -> list[RuleWarning]:
    """The warnings of a definition; the API answers them with every rule, the portal shows them.

    ``unreachable``: the rule's users who will not hear of its alerts (disabled, or no longer in the
    factory), by email or id, as :func:`unreachable_users` finds them.
    """
    notify = definition.notify
    if notify.nobody():
        return [NO_RECIPIENTS.model_copy()]
    if not unreachable:
        return []
    names = ", ".join(unreachable)
    if not (notify.emails or notify.whatsapp) and len(unreachable) >= len(notify.users):
        return [
            RuleWarning(
                code="no_active_recipients",
                message=f"This rule notifies nobody: every user it names is disabled or gone ({names}). "
                "Enable one, or add users or channels under Notify.",
            )
        ]
    return [
        RuleWarning(
            code="disabled_recipients",
            message=f"These users are disabled or gone and will not be notified: {names}.",
        )
    ]


def unreachable_users(s: Session, definitions: list[RuleDefinition]) -> dict[str, str | None]:
    """Of the users the definitions name: id -> email of the disabled ones, id -> None for the gone."""
    ids = {u for d in definitions for u in d.notify.users}
    if not ids:
        return {}
    found = {row.id: row for row in s.execute(select(User.id, User.email, User.is_active).where(User.id.in_(ids)))}
    return {u: (found[u].email if u in found else None) for u in ids if u not in found or not found[u].is_active}


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    description: str
    enabled: bool
    definition: RuleDefinition
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime

    warnings: list[RuleWarning] = Field(
        ...,
        description="What the rule's author should know about a valid rule, e.g. no_recipients (empty: nothing).",
    )

    @classmethod
    def of(cls, s: Session, rules: list[Any]) -> list[RuleOut]:
        """The API shape of ``rules`` (Rule rows), with their warnings (some need the factory's users)."""
        fields = [name for name in cls.model_fields if name != "warnings"]
        definitions = [RuleDefinition.model_validate(r.definition) for r in rules]
        gone = unreachable_users(s, definitions)
        out = []
        for rule, definition in zip(rules, definitions, strict=True):
            unreachable = [gone[u] or f"user {u}" for u in definition.notify.users if u in gone]
            data = {name: getattr(rule, name) for name in fields}
            out.append(cls.model_validate({**data, "warnings": rule_warnings(definition, unreachable)}))
        return out


PERIOD_EXAMPLE: dict[str, Any] = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-09T00:00:00Z"}


class BacktestPeriod(BaseModel):
    """A past period, at most 31 days; times without a zone are taken as UTC."""

    model_config = ConfigDict(json_schema_extra={"examples": [PERIOD_EXAMPLE]})
    start: Moment = Field(..., description="Start of the period (inclusive), ISO 8601.")
    end: Moment = Field(..., description="End of the period (exclusive), after start, at most 31 days later.")

    @field_validator("start")
    @classmethod
    def _start(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator("end")
    @classmethod
    def _end(cls, value: datetime, info: ValidationInfo) -> datetime:
        value = as_utc(value)
        start = info.data.get("start")
        if isinstance(start, datetime):
            problem = period_problem(start, value)
            if problem:
                raise ValueError(problem)
        return value


class BacktestIn(BacktestPeriod):
    """A rule definition (as in POST /rules) to replay over the stored history of the period."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"definition": EXAMPLE["definition"], **PERIOD_EXAMPLE}]})
    definition: RuleDefinition


class BacktestStarted(BaseModel):
    job_id: str = Field(..., description="Poll GET /api/v1/jobs/{job_id}: progress, then the result.")
