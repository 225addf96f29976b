"""The demo factory of `factoryops up --demo`: a plant to look around in, with known sign-ins and a
simulated fleet publishing through the embedded broker (twelve meters and the steel mill's
real energy readings)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import select

from factoryops.devices.models import Device
from factoryops.devices.schemas import DeviceCreate
from factoryops.devices.service import DeviceService
from factoryops.simulator import SimDevice, Simulator
from factoryops.tenancy import schemas
from factoryops.tenancy.models import Factory, Role
from factoryops.tenancy.service import Principal
from factoryops.wiring import Platform

log = logging.getLogger(__name__)

DEMO_SLUG = "demo-steel"
DEMO_ADMIN = "manager@demo-steel.example"
DEMO_PASSWORD = "Demo-Plant-2026"  # published demo credentials, for the demo factory only
DEMO_METERS = [f"meter-{n:02d}" for n in range(1, 13)]
STEEL_DEVICE = "steel-mill"
SYSTEM = Principal(
    kind="platform_root",
    id="system",
    email="system",
    full_name="system",
    role="platform_root",
    permissions=[],
    session_id="",
)


def steel_csv() -> Path:
    """The full steel data set when it is at hand, else the two-week slice shipped in the package."""
    candidates = [
        os.environ.get("FACTORYOPS_DEMO_STEEL_CSV", ""),
        str(Path.cwd().parent / "shared" / "datasets" / "steel_industry_energy_2018.csv"),
        str(Path(__file__).resolve().parents[3] / "shared" / "datasets" / "steel_industry_energy_2018.csv"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return Path(__file__).resolve().parent / "data" / "steel_industry_energy_2018_sample.csv"


def ensure_demo_factory(platform: Platform) -> str:
    with platform.db.unscoped_session() as s:  # looking for the demo factory across factories
        factory_id = s.execute(select(Factory.id).where(Factory.slug == DEMO_SLUG)).scalar_one_or_none()
    if factory_id is None:
        factory = platform.tenancy.create_factory(
            SYSTEM,
            schemas.FactoryCreate(
                name="Demo Steel Mill",
                slug=DEMO_SLUG,
                timezone="Asia/Seoul",
                description="Demo plant: twelve simulated meters and the steel mill's real 2018 energy readings.",
                super_admin=schemas.NewSuperAdmin(
                    email=DEMO_ADMIN, full_name="Demo Energy Manager", password=DEMO_PASSWORD
                ),
            ),
            ip="",
        )
        factory_id = factory.id
        with platform.db.factory_session(factory_id) as s:
            platform.tenancy.create_user(
                s,
                SYSTEM,
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
    return factory_id


def demo_devices(platform: Platform, factory_id: str) -> list[SimDevice]:
    """Registers the demo devices (or issues them new passwords) and returns their credentials."""
    service = DeviceService()
    result = []
    with platform.db.factory_session(factory_id) as s:
        for device_id in [*DEMO_METERS, STEEL_DEVICE]:
            kind = "steel-plant" if device_id == STEEL_DEVICE else "energy-meter"
            existing = s.execute(select(Device.id).where(Device.device_id == device_id)).first()
            if existing is None:
                created = service.create(
                    s,
                    _demo_actor(factory_id),
                    DeviceCreate(
                        device_id=device_id,
                        name=device_id.replace("-", " ").title(),
                        type=kind,
                        location="Hall A" if device_id < "meter-07" else "Hall B",
                    ),
                    ip="",
                )
            else:
                created = service.rotate_credentials(s, _demo_actor(factory_id), device_id, ip="")
            m = created.mqtt
            result.append(SimDevice(device_id, m.username, m.password, m.client_id, m.topic))
    return result


def _demo_actor(factory_id: str) -> Principal:
    actor = Principal(
        kind="factory_user",
        id="system",
        email="demo-simulator",
        full_name="demo simulator",
        role="super_admin",
        permissions=[],
        session_id="",
    )
    actor.factory = schemas.PrincipalFactory(id=factory_id, slug=DEMO_SLUG, name="Demo Steel Mill", timezone="UTC")
    return actor


def start_demo(platform: Platform) -> Simulator:
    factory_id = ensure_demo_factory(platform)
    devices = demo_devices(platform, factory_id)
    steel = next(d for d in devices if d.device_id == STEEL_DEVICE)
    meters = [d for d in devices if d.device_id != STEEL_DEVICE]
    settings = platform.settings
    simulator = Simulator(
        settings.mqtt.host,
        settings.mqtt.port,
        meters,
        interval=5.0,
        bad_rate=0.02,
        upgrade_after=90.0,
        steel_device=steel,
        steel_csv=steel_csv(),
        steel_interval=2.0,
    )
    simulator.start()
    log.info("demo simulator: %d meters every 5 s, the steel mill every 2 s (%s)", len(meters), steel_csv().name)
    return simulator
