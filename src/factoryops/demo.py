"""The demo factory of `factoryops up --demo`: a plant to look around in, with known sign-ins."""

from __future__ import annotations

import logging

from sqlalchemy import select

from factoryops.tenancy import schemas
from factoryops.tenancy.models import Factory, Role
from factoryops.tenancy.service import Principal
from factoryops.wiring import Platform

log = logging.getLogger(__name__)

DEMO_SLUG = "demo-steel"
DEMO_ADMIN = "manager@demo-steel.example"
DEMO_PASSWORD = "Demo-Plant-2026"


def ensure_demo_factory(platform: Platform) -> None:
    with platform.db.unscoped_session() as s:  # looking for the demo factory across factories
        exists = s.execute(select(Factory.id).where(Factory.slug == DEMO_SLUG)).first() is not None
    if not exists:
        system = Principal(
            kind="platform_root",
            id="system",
            email="system",
            full_name="system",
            role="platform_root",
            permissions=[],
            session_id="",
        )
        factory = platform.tenancy.create_factory(
            system,
            schemas.FactoryCreate(
                name="Demo Steel Mill",
                slug=DEMO_SLUG,
                timezone="Asia/Seoul",
                description="Demo plant fed from the steel industry energy data set.",
                super_admin=schemas.NewSuperAdmin(
                    email=DEMO_ADMIN, full_name="Demo Energy Manager", password=DEMO_PASSWORD
                ),
            ),
            ip="",
        )
        with platform.db.factory_session(factory.id) as s:
            platform.tenancy.create_user(
                s,
                system,
                schemas.UserCreate(
                    email="operator@demo-steel.example",
                    full_name="Demo Operator",
                    role=Role.admin,
                    permissions=["alerts"],
                    password=DEMO_PASSWORD,
                ),
                ip="",
            )
    log.info("demo factory %r: sign in as %s / %s", DEMO_SLUG, DEMO_ADMIN, DEMO_PASSWORD)
