"""The cast and API shortcuts of the browser journeys (imported by conftest and the tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

ROOT_EMAIL = "root@example.com"
ROOT_PASSWORD = "Platform-2026-Secure"


@dataclass(frozen=True)
class Account:
    email: str
    full_name: str
    password: str


@dataclass(frozen=True)
class FactorySpec:
    name: str
    slug: str
    timezone: str
    description: str
    super_admin: Account


# The cast of the journeys. Every password meets the policy (10+ characters, a letter and a
# digit, not containing the email's local part).
ACME = FactorySpec(
    name="Acme Steel",
    slug="acme-steel",
    timezone="Europe/Berlin",
    description="Rolling mill and galvanising line",
    super_admin=Account("dana.boss@acme.example", "Dana Boss", "Furnace-2026x"),
)
BOREALIS = FactorySpec(
    name="Borealis Paper",
    slug="borealis-paper",
    timezone="Europe/Helsinki",
    description="Pulp and paper mill",
    super_admin=Account("sam.north@borealis.example", "Sam North", "Pulpmill-2026x"),
)
ACME_READER = Account("olga.reader@acme.example", "Olga Reader", "Readonly-2026x")
ACME_DEVICES = Account("ivan.devices@acme.example", "Ivan Devices", "Sensors-2026x")


class ApiHelper:
    """Direct API calls for the set-up that a journey does not test itself."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=f"{base_url}/api/v1", timeout=15)

    def _ok(self, response: httpx.Response) -> Any:
        assert response.is_success, (
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    def root_token(self) -> str:
        body = self._ok(self.client.post("/auth/root/login", json={"email": ROOT_EMAIL, "password": ROOT_PASSWORD}))
        return str(body["access_token"])

    def login(self, slug: str, account: Account) -> str:
        body = self._ok(
            self.client.post(
                "/auth/login", json={"factory": slug, "email": account.email, "password": account.password}
            )
        )
        return str(body["access_token"])

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def factory_exists(self, slug: str) -> bool:
        page = self._ok(self.client.get("/public/factories", params={"limit": 200}))
        return any(item["slug"] == slug for item in page["items"])

    def ensure_factory(self, spec: FactorySpec) -> None:
        if self.factory_exists(spec.slug):
            return
        admin = spec.super_admin
        self._ok(
            self.client.post(
                "/platform/factories",
                headers=self.auth(self.root_token()),
                json={
                    "name": spec.name,
                    "slug": spec.slug,
                    "timezone": spec.timezone,
                    "description": spec.description,
                    "super_admin": {"email": admin.email, "full_name": admin.full_name, "password": admin.password},
                },
            )
        )

    def find_user(self, token: str, email: str) -> dict[str, Any] | None:
        page = self._ok(self.client.get("/users", headers=self.auth(token), params={"q": email}))
        return next((u for u in page["items"] if u["email"] == email), None)

    def ensure_user(
        self, spec: FactorySpec, account: Account, permissions: list[str], role: str = "admin"
    ) -> dict[str, Any]:
        self.ensure_factory(spec)
        token = self.login(spec.slug, spec.super_admin)
        existing = self.find_user(token, account.email)
        if existing:
            return existing
        return dict(
            self._ok(
                self.client.post(
                    "/users",
                    headers=self.auth(token),
                    json={
                        "email": account.email,
                        "full_name": account.full_name,
                        "role": role,
                        "permissions": permissions,
                        "password": account.password,
                    },
                )
            )
        )
