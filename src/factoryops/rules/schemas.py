"""API shapes of rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
    name: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    enabled: bool = True
    definition: RuleDefinition


class RuleUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    enabled: bool | None = None
    definition: RuleDefinition | None = None


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
