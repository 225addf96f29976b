"""Shared pieces of the analytics tests: a platform on InfluxDB + S3 (moto), steel history, waiting.

The platform reuses the session's metadata database (SQLite or MariaDB) and swaps in a throwaway
InfluxDB and a moto S3 server (a real S3 HTTP endpoint). History is a slice of the steel mill's
15-minute meter from ``../shared/datasets``, written with its own 15-minute steps.
"""

from __future__ import annotations

import csv
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from factoryops.analytics.api import PING_TTL
from factoryops.devices.discovery import Registry
from factoryops.entrypoints.api import create_app
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import JobWorker
from factoryops.ports.objectstore.s3 import S3ObjectStore
from factoryops.ports.timeseries.base import DEFAULT_RETENTION, FactoryScope, Point
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore
from factoryops.wiring import Platform, job_handlers
from influx import InfluxServer, influxdb
from s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoServer, moto_server
from support import FACTORY_TIMEZONE, FactoryWorld, register_device

__all__ = ["PING_TTL"]


@dataclass
class Stack:
    platform: Platform
    moto: MotoServer
    influx: InfluxServer
    influx_database: str


STEEL_COLUMNS = {
    "Usage_kWh": "usage_kwh",
    "Lagging_Current_Reactive_Power_kVarh": "reactive_lagging_kvarh",
    "CO2(tCO2)": "co2_tco2",
    "Lagging_Current_Power_Factor": "power_factor_lagging",
}
WEEKS = 4
HISTORY_RETENTION = replace(DEFAULT_RETENTION, raw=timedelta(days=45))
STEP = timedelta(minutes=15)


def datasets_dir() -> Path:
    for candidate in (
        os.environ.get("FACTORYOPS_DATASETS"),
        str(Path(__file__).resolve().parents[2] / "shared" / "datasets"),
        "/work/shared/datasets",
    ):
        if candidate and (Path(candidate) / "steel_industry_energy_2018.csv").exists():
            return Path(candidate)
    pytest.fail("the shared data sets are missing (set FACTORYOPS_DATASETS)", pytrace=False)


def steel_rows(n: int) -> list[dict[str, float]]:
    out = []
    with (datasets_dir() / "steel_industry_energy_2018.csv").open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            out.append({name: float(row[col]) for col, name in STEEL_COLUMNS.items()})
            if len(out) == n:
                break
    return out


@pytest.fixture(scope="module")
def stack(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared test platform's database, with InfluxDB and S3 adapters."""
    folder = tmp_path_factory.mktemp("analytics")
    with influxdb(folder / "influx") as influx, moto_server(folder / "moto") as moto:
        database = f"analytics_{secrets.token_hex(4)}"
        # raw data kept 45 days: the plants' four weeks of history end up to 8 days back (see `plant`)
        store = InfluxTimeseriesStore(influx.url, database, retention=HISTORY_RETENTION)
        objects = S3ObjectStore(moto.url, "factoryops", ACCESS_KEY, SECRET_KEY, REGION)
        settings = platform.settings.model_copy(update={"data_dir": folder / "data"})
        yield Stack(replace(platform, settings=settings, timeseries=store, objects=objects), moto, influx, database)
        store.close()


@pytest.fixture()
def client(stack: Stack) -> Iterator[TestClient]:
    with TestClient(create_app(stack.platform), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture()
def worker(stack: Stack) -> Iterator[JobWorker]:
    platform = stack.platform
    w = JobWorker(
        JobQueue(platform.db, retry_base_seconds=0.05),
        job_handlers(platform),
        name=f"analytics-{secrets.token_hex(3)}",
        poll_seconds=0.05,
        heartbeat_seconds=0.2,
    )
    w.start()
    yield w
    w.stop()


def history(platform: Platform, world: FactoryWorld, device_id: str, end: datetime, rows: int, skip: int = 0) -> None:
    data = steel_rows(rows + skip)[skip:]
    start = end - STEP * rows
    scope = FactoryScope(world.id)
    points = [
        Point(device_id, name, start + STEP * i, value) for i, row in enumerate(data) for name, value in row.items()
    ]
    assert platform.timeseries is not None
    assert platform.timeseries.write(scope, points) == len(points)
    Registry(platform.db).ensure_properties(world.id, device_id, list(STEEL_COLUMNS.values()), start)


@pytest.fixture()
def plant(client: TestClient, make_factory, stack: Stack) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    world = make_factory()
    register_device(client, world, "meter-1")
    # The steel data begins on a Monday at 00:15 (its weekends are real weekends), so its row 671 is
    # the next Monday 00:00. The plant's history is WEEKS weeks from that row, placed on a Monday 00:00
    # of the factory's clock (the models' calendar features are local), ending at least a day ago:
    # every run holds the same rows on the same weekdays and hours, only whole weeks apart. (Placed
    # from "now", the rows and the co-pilot's last six days, its holdout, changed with the hour the
    # suite ran, and whether the co-pilot beat seasonal naive on them changed with it.)
    span = STEP * WEEKS * 7 * 96
    latest = (datetime.now(UTC) - timedelta(days=1) - span).astimezone(ZoneInfo(FACTORY_TIMEZONE))
    monday = (latest - timedelta(days=latest.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    start = monday.astimezone(UTC)
    end = start + span
    skip = 7 * 96 - 1
    history(stack.platform, world, "meter-1", end, rows=WEEKS * 7 * 96, skip=skip)
    return {"world": world, "end": end, "start": start, "skip": skip}


def wait_for(
    client: TestClient, h: dict[str, str], url: str, done: tuple[str, ...], timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen_progress: list[int] = []
    while time.monotonic() < deadline:
        body = client.get(url, headers=h).json()
        state = body.get("state")
        if "progress" in body:
            seen_progress.append(body["progress"])
        if state in done:
            body["_progress_seen"] = seen_progress
            return dict(body)
        time.sleep(0.1)
    raise AssertionError(f"{url} did not reach {done}: {body}")
