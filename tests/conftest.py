"""Test fixtures: a fresh metadata database per run (SQLite or MariaDB), the app, and factories.

Pick the database with ``FACTORYOPS_TEST_DB=sqlite`` (default) or ``FACTORYOPS_TEST_DB=mysql``
(MariaDB/MySQL at ``FACTORYOPS_TEST_MYSQL_URL``, default root@127.0.0.1:3306). Every run creates
its own database and drops it at the end; tests create their own factories, so they never
share rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from factoryops.core.settings import Settings
from factoryops.entrypoints.api import create_app
from factoryops.wiring import Platform, build_platform
from support import (
    FACTORY_TIMEZONE,
    MYSQL_SERVER,
    PASSWORD,
    ROOT_EMAIL,
    ROOT_PASSWORD,
    TEST_DB,
    FactoryWorld,
    auth,
    login,
    make_settings,
)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if TEST_DB == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'factoryops.db'}"
        return
    if TEST_DB != "mysql":
        raise RuntimeError(f"FACTORYOPS_TEST_DB must be sqlite or mysql, not {TEST_DB!r}")
    name = f"factoryops_test_{os.getpid()}_{secrets.token_hex(3)}"
    server = create_engine(MYSQL_SERVER)
    with server.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    try:
        yield f"{MYSQL_SERVER}/{name}?charset=utf8mb4"
    finally:
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Settings:
    return make_settings(tmp_path_factory.mktemp("data"), database_url)


@pytest.fixture(scope="session")
def platform(settings: Settings) -> Iterator[Platform]:
    built = build_platform(settings)
    built.tenancy.ensure_root()
    yield built
    built.db.dispose()


@pytest.fixture()
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture()
def root_token(client: TestClient) -> str:
    r = client.post("/api/v1/auth/root/login", json={"email": ROOT_EMAIL, "password": ROOT_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.fixture()
def make_factory(client: TestClient, root_token: str):  # type: ignore[no-untyped-def]
    def make(name: str | None = None, with_admins: bool = True) -> FactoryWorld:
        tag = secrets.token_hex(4)
        name = name or f"Plant {tag}"
        slug = f"plant-{tag}"
        sa_email = f"boss-{tag}@plant.example"
        r = client.post(
            "/api/v1/platform/factories",
            headers=auth(root_token),
            json={
                "name": name,
                "slug": slug,
                "timezone": FACTORY_TIMEZONE,
                "description": "test plant",
                "super_admin": {"email": sa_email, "full_name": "Boss", "password": PASSWORD},
            },
        )
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        session = login(client, slug, sa_email)
        world = FactoryWorld(
            id=fid, slug=slug, name=name, super_admin=session["principal"], super_token=session["access_token"]
        )
        if with_admins:
            for attr, perms in (
                ("admin_plain", []),
                ("admin_all", ["devices", "rules", "alerts", "analytics", "reports"]),
            ):
                email = f"{attr.replace('_', '-')}-{tag}@plant.example"
                r = client.post(
                    "/api/v1/users",
                    headers=auth(world.super_token),
                    json={
                        "email": email,
                        "full_name": attr,
                        "role": "admin",
                        "permissions": perms,
                        "password": PASSWORD,
                    },
                )
                assert r.status_code == 201, r.text
                setattr(world, attr, r.json())
                setattr(world, f"{attr}_token", login(client, slug, email)["access_token"])
        return world

    return make
