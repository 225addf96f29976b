"""Shared test helpers (imported by test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from factoryops.core.settings import Settings

TEST_DB = os.environ.get("FACTORYOPS_TEST_DB", "sqlite")
MYSQL_SERVER = os.environ.get("FACTORYOPS_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
ROOT_EMAIL = "root@platform.example"
ROOT_PASSWORD = "Platform-Key-2026"
PASSWORD = "Strong-Pass-2026"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "root_email": ROOT_EMAIL,
        "root_password": ROOT_PASSWORD,
        "database": {"url": database_url},
        "auth": {"bcrypt_rounds": 4, "login_rate_per_minute": 10_000, "jwt_secret": "t" * 40},
        "mqtt": {"port": free_port(), "emqx_hook_secret": "emqx-hook-secret-for-tests"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class FactoryWorld:
    """A factory made through the API, with a super admin and two admins."""

    id: str
    slug: str
    name: str
    super_admin: dict[str, Any]
    super_token: str
    admin_plain: dict[str, Any] = field(default_factory=dict)
    admin_plain_token: str = ""
    admin_all: dict[str, Any] = field(default_factory=dict)
    admin_all_token: str = ""


def login(client: TestClient, slug: str, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = client.post("/api/v1/auth/login", json={"factory": slug, "email": email, "password": password})
    assert r.status_code == 200, r.text
    return dict(r.json())
