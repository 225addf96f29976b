"""API shapes of rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, computed_field, field_validator

from factoryops.core.moments import Moment
from factoryops.core.text import Line, Text
from factoryops.rules.backtest import as_utc, period_problem
from factoryops.rules.definition import RuleDefinition

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

    code: str = Field(..., description="no_recipients: the rule opens alerts but notifies nobody.")
    message: str


NO_RECIPIENTS = RuleWarning(
    code="no_recipients",
    message="This rule opens alerts but notifies nobody: add users or channels under Notify.",
)


def rule_warnings(definition: RuleDefinition) -> list[RuleWarning]:
    """The warnings of a definition; the API answers them with every rule, the portal shows them."""
    return [NO_RECIPIENTS.model_copy()] if definition.notify.nobody() else []


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

    @computed_field(  # type: ignore[prop-decorator]
        description="What the rule's author should know about a valid rule, e.g. no_recipients (empty: nothing)."
    )
    @property
    def warnings(self) -> list[RuleWarning]:
        return rule_warnings(self.definition)


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
