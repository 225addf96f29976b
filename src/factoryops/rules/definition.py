"""The shape of a rule, as people write it in the API and the portal, with its validation.

A rule has a scope (one device, a list, a device type, the whole factory), a condition tree
(AND/OR groups of conditions on discovered properties), an optional schedule in the factory's
time zone, a severity, a cooldown, auto-resolve and an optional clear condition (hysteresis).
Conditions beyond plain thresholds: ``for_seconds`` (holds for a duration), ``rate`` (change per
time), ``window`` (an aggregate over a trailing window) and ``stale`` (no new value for a while).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator, model_validator

from factoryops.core.text import Line

Operator = Literal[">", ">=", "<", "<=", "==", "!=", "between", "outside", "stale"]
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Window(BaseModel):
    """An aggregate of the property over the trailing ``seconds``, compared instead of the raw value."""

    fn: Literal["mean", "min", "max"]
    seconds: int = Field(..., ge=10, le=86_400)


class Rate(BaseModel):
    """Change of the property per ``per_seconds`` (e.g. 60: per minute), compared instead of the raw value."""

    per_seconds: int = Field(60, ge=1, le=86_400)


class Condition(BaseModel):
    property: str = Field(..., min_length=1, max_length=128)
    operator: Operator
    value: float | None = None
    value2: float | None = None
    for_seconds: int = Field(0, ge=0, le=7 * 86_400, description="The condition must hold this long.")
    window: Window | None = None
    rate: Rate | None = None
    stale_seconds: int | None = Field(None, ge=10, le=30 * 86_400, description="With operator 'stale'.")

    @model_validator(mode="after")
    def _consistent(self) -> Condition:
        if self.operator == "stale":
            if self.stale_seconds is None:
                raise ValueError("a 'stale' condition needs stale_seconds")
            if self.window or self.rate or self.for_seconds:
                raise ValueError("a 'stale' condition takes no window, rate or for_seconds")
            return self
        if self.value is None:
            raise ValueError(f"operator {self.operator!r} needs a value")
        if self.operator in ("between", "outside"):
            if self.value2 is None:
                raise ValueError(f"operator {self.operator!r} needs value and value2")
            if self.value2 <= self.value:
                raise ValueError(f"impossible range: value2 ({self.value2}) must be greater than value ({self.value})")
        if self.window and self.rate:
            raise ValueError("use either a window or a rate, not both")
        return self


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "group" if "op" in value or "conditions" in value else "condition"
    return "group" if isinstance(value, Group) else "condition"


Node = Annotated[
    Annotated[Condition, Tag("condition")] | Annotated["Group", Tag("group")],
    Discriminator(_node_kind),
]


class Group(BaseModel):
    op: Literal["and", "or"]
    conditions: list[Node] = Field(..., max_length=50)

    @field_validator("conditions")
    @classmethod
    def _not_empty(cls, value: list[Condition | Group]) -> list[Condition | Group]:
        if not value:
            raise ValueError("a group needs at least one condition")
        return value


class TimeWindow(BaseModel):
    start: str = Field(..., description="HH:MM, local time of the factory")
    end: str = Field(..., description="HH:MM; earlier than start means the window runs past midnight")

    @model_validator(mode="after")
    def _times(self) -> TimeWindow:
        for name in ("start", "end"):
            if not TIME_RE.match(getattr(self, name)):
                raise ValueError(f"{name} must be HH:MM (00:00-23:59), not {getattr(self, name)!r}")
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty")
        return self


class Schedule(BaseModel):
    """When the rule is active, in the factory's time zone. Days: 0 = Monday ... 6 = Sunday."""

    days: list[int] = Field(default_factory=lambda: list(range(7)))
    windows: list[TimeWindow] = Field(default_factory=list, description="Empty: all day.")

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("pick at least one day")
        bad = [d for d in value if d not in range(7)]
        if bad:
            raise ValueError(f"days are 0 (Monday) to 6 (Sunday), not {bad}")
        return sorted(set(value))


class Scope(BaseModel):
    kind: Literal["device", "devices", "type", "factory"]
    device_ids: list[str] = Field(default_factory=list, max_length=10_000)
    device_type: Line = Field("", max_length=100)

    @model_validator(mode="after")
    def _complete(self) -> Scope:
        if self.kind == "device" and len(self.device_ids) != 1:
            raise ValueError("scope 'device' needs exactly one device id")
        if self.kind == "devices" and not self.device_ids:
            raise ValueError("scope 'devices' needs at least one device id")
        if self.kind == "type" and not self.device_type:
            raise ValueError("scope 'type' needs a device_type")
        return self

    def takes_in(self, device_id: str, device_type: str) -> bool:
        """Whether a device of this id and type is in the scope (the engine's CompiledRule.applies_to)."""
        if self.kind == "factory":
            return True
        if self.kind == "type":
            return device_type == self.device_type
        return device_id in self.device_ids


E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class Notify(BaseModel):
    """Who hears about this rule's alerts, and when."""

    emails: list[str] = Field(default_factory=list, max_length=50)
    whatsapp: list[str] = Field(default_factory=list, max_length=50, description="Phone numbers, E.164 (+49...).")
    on_resolve: bool = Field(True, description="Also tell them when the alert resolves.")
    users: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="User ids of this factory; each hears by their notification preferences.",
    )
    remind_after_minutes: int = Field(
        0,
        ge=0,
        le=7 * 24 * 60,
        description="Remind the same recipients this often while the alert stays open and unacknowledged (0: off).",
    )

    def nobody(self) -> bool:
        """No email, no WhatsApp number and no user: the rule's alerts notify no one."""
        return not (self.emails or self.whatsapp or self.users)

    @field_validator("users")
    @classmethod
    def _users(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        bad = [e for e in value if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", e)]
        if bad:
            raise ValueError(f"not email addresses: {bad}")
        return value

    @field_validator("whatsapp")
    @classmethod
    def _phones(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if not E164.match(p)]
        if bad:
            raise ValueError(f"phone numbers must be E.164 like +4915112345678: {bad}")
        return value


class RuleDefinition(BaseModel):
    scope: Scope
    condition: Node
    schedule: Schedule | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown_seconds: int = Field(300, ge=0, le=7 * 86_400)
    auto_resolve: bool = True
    notify: Notify = Field(default_factory=Notify)
    clear: Node | None = Field(
        None, description="Hysteresis: an open alert resolves only when this holds (default: the trigger stops)."
    )


def properties_of(node: Condition | Group) -> set[str]:
    if isinstance(node, Condition):
        return {node.property}
    found: set[str] = set()
    for child in node.conditions:
        found |= properties_of(child)
    return found
