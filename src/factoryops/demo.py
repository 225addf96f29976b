"""The demo factory of `factoryops up --demo`: a plant to look around in, with known sign-ins and a
simulated fleet publishing through the embedded broker (twelve meters and the steel mill's
real energy readings)."""

from __future__ import annotations

import csv
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from factoryops.devices.discovery import Registry
from factoryops.devices.models import Device
from factoryops.devices.schemas import DeviceCreate
from factoryops.devices.service import DeviceService
from factoryops.ports.timeseries.base import FactoryScope, Point
from factoryops.simulator import SimDevice, Simulator, steel_rows
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
MACHINE_DEVICE = "furnace-fan-7"  # the NAB machine temperature series, as history only
STEEL_STEP = timedelta(minutes=15)
# How often the simulator publishes (start_demo): each device's report interval. The furnace fan
# never reports live (history only): unknown.
METER_INTERVAL = 5
STEEL_INTERVAL = 2
STEEL_FIRST = datetime(2018, 1, 1, 0, 15, tzinfo=UTC)
HISTORY_WEEKS = 4  # within the default raw retention (30 days)
MACHINE_DAYS = 28
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


def nab_csv() -> Path | None:
    """The NAB machine-temperature series with labelled failures, when the shared data sets are at hand."""
    candidates = [
        os.environ.get("FACTORYOPS_DEMO_NAB_CSV", ""),
        str(Path.cwd().parent / "shared" / "datasets" / "nab" / "machine_temperature_system_failure.csv"),
        str(
            Path(__file__).resolve().parents[3]
            / "shared"
            / "datasets"
            / "nab"
            / "machine_temperature_system_failure.csv"
        ),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _floor(ts: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (ts - epoch) // step * step


def backfill_history(platform: Platform, factory_id: str, now: datetime | None = None) -> int:
    """Gives the demo weeks of history, so analytics has something to learn from on the first visit.

    The steel mill: up to four weeks of its real 15-minute readings, ending now, taken from the data
    set so that weekdays and times of day line up (Monday's readings land on a Monday). The furnace
    fan: the last four weeks of the NAB machine temperature series (5-minute readings, two of its
    labelled failures included), when the shared data sets are at hand. Written once: nothing is
    written when the steel mill already has readings a week ago. Returns the points written.
    """
    store = platform.timeseries
    if store is None:
        return 0
    now = now or datetime.now(UTC)
    scope = FactoryScope(factory_id)
    week_ago = now - timedelta(days=7)
    if store.query(scope, [STEEL_DEVICE], None, week_ago - timedelta(hours=1), week_ago).series:
        return 0
    rows = list(steel_rows(steel_csv(), repeat=False))[:35_040]
    if not rows:
        return 0
    end = _floor(now, STEEL_STEP)  # the last backfilled reading is one step before this
    week_steps = 7 * 96
    if len(rows) >= week_steps:  # a week or more: Monday's readings land on a Monday
        offset = int(((end - STEEL_STEP) - STEEL_FIRST) / STEEL_STEP) % week_steps
        last = offset + ((len(rows) - 1 - offset) // week_steps) * week_steps
    else:  # a short file (a test's few hours): all of it, ending now
        last = len(rows) - 1
    count = min(HISTORY_WEEKS * week_steps, last + 1)
    first = last - count + 1
    start = end - STEEL_STEP * count
    points: list[Point] = []
    for k, row in enumerate(rows[first : last + 1]):
        ts = start + STEEL_STEP * k
        for name, value in row.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                points.append(Point(STEEL_DEVICE, name, ts, float(value)))
    registry = Registry(platform.db)
    names = sorted({p.property for p in points})
    registry.ensure_properties(factory_id, STEEL_DEVICE, names, start)
    written = store.write(scope, points)
    nab = nab_csv()
    if nab is not None:
        with nab.open(newline="") as fh:
            readings = [(r["timestamp"], float(r["value"])) for r in csv.DictReader(fh)]
        step = timedelta(minutes=5)
        keep = readings[-MACHINE_DAYS * 288 :]
        m_end = _floor(now, step)
        m_start = m_end - step * len(keep)
        machine = [Point(MACHINE_DEVICE, "temperature_f", m_start + step * k, v) for k, (_, v) in enumerate(keep)]
        registry.ensure_properties(factory_id, MACHINE_DEVICE, ["temperature_f"], m_start)
        written += store.write(scope, machine)
        start = min(start, m_start)
    store.rebuild_rollups(scope, _floor(start, timedelta(hours=1)), end + timedelta(hours=1))
    log.info("demo history: %d points written (steel mill from %s)", written, start.isoformat())
    return written


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
        for device_id in [*DEMO_METERS, STEEL_DEVICE, MACHINE_DEVICE]:
            kind = {STEEL_DEVICE: "steel-plant", MACHINE_DEVICE: "furnace-fan"}.get(device_id, "energy-meter")
            existing = s.execute(select(Device.id).where(Device.device_id == device_id)).first()
            if existing is None:
                created = service.create(
                    s,
                    _demo_actor(factory_id),
                    DeviceCreate(
                        device_id=device_id,
                        name=device_id.replace("-", " ").title(),
                        type=kind,
                        location={MACHINE_DEVICE: "Furnace hall (history only)"}.get(
                            device_id, "Hall A" if device_id < "meter-07" else "Hall B"
                        ),
                        report_interval_seconds={STEEL_DEVICE: STEEL_INTERVAL, MACHINE_DEVICE: None}.get(
                            device_id, METER_INTERVAL
                        ),
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
    backfill_history(platform, factory_id)
    steel = next(d for d in devices if d.device_id == STEEL_DEVICE)
    meters = [d for d in devices if d.device_id not in (STEEL_DEVICE, MACHINE_DEVICE)]
    settings = platform.settings
    simulator = Simulator(
        settings.mqtt.host,
        settings.mqtt.port,
        meters,
        interval=float(METER_INTERVAL),
        bad_rate=0.02,
        upgrade_after=90.0,
        steel_device=steel,
        steel_csv=steel_csv(),
        steel_interval=float(STEEL_INTERVAL),
    )
    simulator.start()
    log.info("demo simulator: %d meters every 5 s, the steel mill every 2 s (%s)", len(meters), steel_csv().name)
    return simulator
