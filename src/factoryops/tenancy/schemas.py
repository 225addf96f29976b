"""API shapes of factories, users, sessions and audit events."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from factoryops.core.text import Line, Text
from factoryops.tenancy.models import ALL_PERMISSIONS, Role

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def _check_permissions(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(ALL_PERMISSIONS))
    if unknown:
        raise ValueError(f"unknown permission(s) {', '.join(unknown)}; allowed: {', '.join(ALL_PERMISSIONS)}")
    return sorted(set(value))


class FactoryBrief(BaseModel):
    """What anyone may see of a factory: enough to pick it in the sign-in dropdown."""

    model_config = ConfigDict(from_attributes=True)
    slug: str
    name: str


class FactoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    slug: str
    name: str
    timezone: str
    description: str
    created_at: datetime


class PlatformFactoryOut(FactoryOut):
    user_count: int = 0


class NewSuperAdmin(BaseModel):
    email: EmailStr
    full_name: Line = Field("", max_length=200)
    password: str = Field(..., min_length=1, max_length=200)


class FactoryCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme Steel",
                    "slug": "acme-steel",
                    "timezone": "Europe/Berlin",
                    "description": "Rolling mill",
                    "super_admin": {
                        "email": "boss@acme.example",
                        "full_name": "Dana Boss",
                        "password": "Furnace-2026x",
                    },
                }
            ]
        }
    )
    name: Line = Field(..., min_length=1, max_length=200)
    slug: str = Field(..., min_length=1, max_length=64, description="Lower-case letters, digits and dashes.")
    timezone: str = Field("UTC", description="IANA time zone of the plant, e.g. Europe/Berlin.")
    description: Text = Field("", max_length=2000)
    super_admin: NewSuperAdmin

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError("use lower-case letters, digits and dashes, starting and ending with a letter or digit")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin")
        ZoneInfo(value)
        return value


class FactoryUpdate(BaseModel):
    name: Line | None = Field(None, min_length=1, max_length=200)
    timezone: str | None = None
    description: Text | None = Field(None, max_length=2000)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None and value not in available_timezones():
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin")
        return value


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    email: str
    full_name: str
    role: Role
    permissions: list[str]
    is_active: bool
    is_locked: bool = False
    must_change_password: bool
    created_at: datetime
    last_login_at: datetime | None


class UserCreate(BaseModel):
    email: EmailStr
    full_name: Line = Field("", max_length=200)
    role: Role = Role.admin
    permissions: list[str] = Field(default_factory=list, description="Write areas: " + ", ".join(ALL_PERMISSIONS))
    password: str = Field(..., min_length=1, max_length=200)

    _perms = field_validator("permissions")(_check_permissions)


class UserUpdate(BaseModel):
    full_name: Line | None = Field(None, max_length=200)
    role: Role | None = None
    permissions: list[str] | None = None
    is_active: bool | None = None

    @field_validator("permissions")
    @classmethod
    def _perms(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_permissions(value)


class PasswordReset(BaseModel):
    new_password: str = Field(..., min_length=1, max_length=200)


class PasswordChange(BaseModel):
    current_password: str = Field(..., min_length=1, max_length=200)
    new_password: str = Field(..., min_length=1, max_length=200)


class LoginRequest(BaseModel):
    factory: str = Field(..., min_length=1, max_length=64, description="The factory's slug.")
    email: str = Field(..., min_length=1, max_length=254)
    password: str = Field(..., min_length=1, max_length=200)


class RootLoginRequest(BaseModel):
    email: str = Field(..., min_length=1, max_length=254)
    password: str = Field(..., min_length=1, max_length=200)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(..., min_length=1, max_length=200)


class PrincipalFactory(BaseModel):
    id: str
    slug: str
    name: str
    timezone: str


class PrincipalOut(BaseModel):
    kind: Literal["factory_user", "platform_root"]
    user_id: str
    email: str
    full_name: str
    role: Literal["super_admin", "admin", "platform_root"]
    permissions: list[str]
    factory: PrincipalFactory | None
    must_change_password: bool


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    principal: PrincipalOut


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    created_at: datetime
    actor_email: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any]
    ip: str


class PermissionsOut(BaseModel):
    permissions: list[str]
