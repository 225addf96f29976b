"""The production topology (tests/topology.py) under load and under faults, in one run.

One API, two telemetry processes on one shared subscription, two workers, MariaDB, Mosquitto,
InfluxDB and an S3 endpoint, all real and all separate processes. The tests run in file order on
the same topology and plant:

1. scale-out: every message stored exactly once, both telemetry processes took a share, one
   alert per device however the messages were split, every job run once, both workers busy;
2. the broker restarted mid-stream; 3. InfluxDB down for two minutes; 4. MariaDB restarted;
5. the object store down; 6. a worker killed in the middle of a job.

Each fault test asserts that every message the broker acknowledged to the publisher is stored,
and that the platform recovers by itself. The figures (sent, acknowledged, stored, lost,
duplicates, recovery time) are printed at the end and written to ``reliability.json`` in the
run's folder (or to ``$FACTORYOPS_RELIABILITY_OUT``); docs/reliability.md quotes them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from analytics_support import STEEL_COLUMNS, STEP, steel_rows
from factoryops.core.db import Database
from factoryops.devices.discovery import Registry
from factoryops.ports.timeseries.base import FactoryScope, Point
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore
from services import AckedPublisher, read_until
from topology import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Topology

# The topology brings its own MariaDB server: the module runs once, in the SQLite pass.
pytestmark = pytest.mark.nodb

DEVICES = [f"press-{i:02d}" for i in range(12)]
FIGURES: list[dict[str, Any]] = []


# ---------------------------------------------------------------------- the topology and the plant
@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    folder = tmp_path_factory.mktemp("topology")
    topology = Topology(folder)
    try:
        topology.up()
        yield topology
    finally:
        outputs = topology.down()
        _report(folder)
        for name, (_code, out) in outputs.items():
            (folder / f"{name}.out").write_text(out)


def _report(folder: Path) -> None:
    if not FIGURES:
        return
    out = Path(os.environ.get("FACTORYOPS_RELIABILITY_OUT") or folder / "reliability.json")
    out.write_text(json.dumps(FIGURES, indent=2))
    print("\nfault | sent | acknowledged | stored | lost | duplicates | recovery (s)")
    for f in FIGURES:
        print(
            f"{f['fault']} | {f['sent']} | {f['acknowledged']} | {f['stored']} | {f['lost']} | "
            f"{f['duplicates']} | {f['recovery_seconds']}"
        )
    print(f"(written to {out})")


class Api:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base + "/api/v1", timeout=30)
        self.token = ""

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.http.request(method, path, headers=headers, **kw)


@pytest.fixture(scope="module")
def plant(topo: Topology) -> dict[str, Any]:
    root = Api(topo.api_url)
    r = root.call("POST", "/auth/root/login", json={"email": ROOT_EMAIL, "password": ROOT_PASSWORD})
    assert r.status_code == 200, r.text
    root.token = r.json()["access_token"]
    tag = secrets.token_hex(3)
    email = f"boss-{tag}@plant.example"
    r = root.call(
        "POST",
        "/platform/factories",
        json={
            "name": f"Rolling mill {tag}",
            "slug": f"mill-{tag}",
            "timezone": "Europe/Berlin",
            "super_admin": {"email": email, "full_name": "Boss", "password": PASSWORD},
        },
    )
    assert r.status_code == 201, r.text
    factory_id = r.json()["id"]
    api = Api(topo.api_url)
    r = api.call("POST", "/auth/login", json={"factory": f"mill-{tag}", "email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    api.token = r.json()["access_token"]
    for device in [*DEVICES, "meter-hist"]:
        r = api.call("POST", "/devices", json={"device_id": device})
        assert r.status_code == 201, r.text
    return {"id": factory_id, "api": api, "root": root}


# ---------------------------------------------------------------------- publishing and counting
def open_fleet(topo: Topology, factory_id: str, name: str) -> AckedPublisher:
    """The plant's publisher: {"seq": n, "load": 10.0 unless given} at QoS 1 for its devices."""
    return AckedPublisher(topo.mqtt_port, factory_id, f"fleet-{name}-{secrets.token_hex(3)}", defaults={"load": 10.0})


def stored(topo: Topology, factory_id: str, since: datetime) -> dict[str, list[int]]:
    store = InfluxTimeseriesStore(topo.influx_url, "factoryops", timeout=10.0)
    try:
        result = store.query(
            FactoryScope(factory_id), DEVICES, ["seq"], since, datetime.now(UTC) + timedelta(seconds=5)
        )
        assert result.aggregate is None, "raw points expected"
        out: dict[str, list[int]] = {}
        for key, samples in result.series.items():
            device = key[0] if isinstance(key, tuple) else str(key).split("/")[0]
            out.setdefault(device, []).extend(int(s.value) for s in samples)
        return out
    finally:
        store.close()


def settle(
    topo: Topology, fleet: AckedPublisher, since: datetime, timeout: float
) -> tuple[dict[str, list[int]], float]:
    """Waits until every acknowledged message is stored; returns what is stored and how long it took."""
    start = time.monotonic()
    fleet.wait_acked(timeout)
    acked = fleet.acked()
    deadline = start + timeout
    values: dict[str, list[int]] = {}
    while time.monotonic() < deadline:
        values = stored(topo, fleet.factory_id, since)
        if all(acked[d] <= set(values.get(d, [])) for d in acked):
            break
        time.sleep(0.5)
    return values, round(time.monotonic() - start, 1)


def record(
    fault: str, fleet: AckedPublisher, values: dict[str, list[int]], recovery: float, **extra: Any
) -> dict[str, Any]:
    acked = fleet.acked()
    wanted = {(d, s) for d, seqs in acked.items() for s in seqs}
    mine = set(fleet.sent_at)  # only this test's messages (the read window may reach the previous test)
    got = Counter((d, s) for d, seqs in values.items() for s in seqs if (d, s) in mine)
    figure = {
        "fault": fault,
        "sent": len(fleet.sent),
        "acknowledged": len(wanted),
        "stored": len(set(got)),
        "lost": len(wanted - set(got)),
        "duplicates": sum(n - 1 for n in got.values()),
        "recovery_seconds": recovery,
        **extra,
    }
    FIGURES.append(figure)
    print(figure)
    return figure


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def accepted_by(topo: Topology, name: str) -> float:
    text = httpx.get(topo.metrics_url(name), timeout=5).text
    return metric(text, "factoryops_telemetry_messages_total", outcome="accepted")


def wait_until(check: Any, timeout: float, step: float = 0.5) -> float:
    """Polls ``check`` until it is truthy; returns the seconds it took, fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not reached within {timeout}s: {getattr(check, '__doc__', check)}")
        time.sleep(step)
    return round(time.monotonic() - start, 1)


# ---------------------------------------------------------------------- 1. scale-out
def test_two_telemetry_processes_and_two_workers_share_the_work(topo: Topology, plant: dict[str, Any]) -> None:
    api: Api = plant["api"]
    since = datetime.now(UTC) - timedelta(seconds=1)
    before = {name: accepted_by(topo, name) for name in topo.telemetry_names}
    fleet = open_fleet(topo, plant["id"], "scale")
    for i, device in enumerate(DEVICES):  # the vocabulary first: the rule names "load"
        fleet.publish(device, i)
    next_seq = len(DEVICES)
    wait_until(lambda: len(api.call("GET", "/properties").json().get("items", [])) >= 2, 30)
    r = api.call(
        "POST",
        "/rules",
        json={
            "name": "Press overload",
            "definition": {
                "scope": {"kind": "factory"},
                "condition": {"property": "load", "operator": ">", "value": 50},
                "severity": "warning",
                "auto_resolve": False,
            },
        },
    )
    assert r.status_code == 201, r.text
    time.sleep(3)  # both telemetry processes learn the new rule
    for seq in range(next_seq, next_seq + 3000):  # every device overloaded many times, across both processes
        fleet.publish(DEVICES[seq % len(DEVICES)], seq, load=80.0 if (seq // len(DEVICES)) % 3 == 0 else 20.0)
        if seq % 100 == 0:
            time.sleep(0.05)
    values, took = settle(topo, fleet, since, 120)
    figure = record("none (two telemetry processes, two workers)", fleet, values, took)
    fleet.close()
    assert figure["lost"] == 0 and figure["duplicates"] == 0, figure
    shares = {name: accepted_by(topo, name) - before[name] for name in topo.telemetry_names}
    assert sum(shares.values()) >= figure["acknowledged"], shares
    assert all(share > 0 for share in shares.values()), f"one process took nothing: {shares}"
    figure["shares"] = shares

    # One open alert per device, although each device's messages went to both processes.
    def alerts() -> list[dict[str, Any]]:
        return list(api.call("GET", "/alerts", params={"state": "open", "limit": 200}).json()["items"])

    wait_until(lambda: len(alerts()) >= len(DEVICES), 60)
    time.sleep(2)
    per_device = Counter(a["device_id"] for a in alerts())
    assert per_device == Counter(DEVICES), per_device

    # Every job run exactly once, by one of the two workers, both of them busy.
    ids = []
    for i in range(16):
        r = api.call("POST", "/reports", json={"title": f"Shift {i}", "format": "json", "preset": "yesterday"})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])

    def reports_done() -> bool:
        states = [api.call("GET", f"/reports/{i}").json()["state"] for i in ids]
        return all(s in ("succeeded", "failed") for s in states)

    wait_until(reports_done, 180, step=1.0)
    assert {api.call("GET", f"/reports/{i}").json()["state"] for i in ids} == {"succeeded"}
    engine = sqlalchemy.create_engine(topo.database_url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT attempts, worker FROM jobs WHERE kind = 'reports.generate' AND factory_id = %s", (plant["id"],)
        ).all()
    assert len(rows) == len(ids) and all(attempts == 1 for attempts, _ in rows), rows
    workers = Counter(worker.rsplit("-", 1)[0] for _, worker in rows)
    assert len(workers) == 2, f"one worker did every job: {workers}"


# ---------------------------------------------------------------------- 2. broker restart
def test_broker_restart_mid_stream(topo: Topology, plant: dict[str, Any]) -> None:
    """Mosquitto keeps sessions and queued messages across a restart, but not *shared* subscriptions
    (2.0.11 and 2.0.21, tested): until each telemetry process has subscribed again, a message published
    has no subscriber and the broker drops it after acknowledging it. The test measures that window
    and requires that nothing else is lost: every message acknowledged before the restart, and every
    one published once the subscriptions are back, is stored."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    fleet = open_fleet(topo, plant["id"], "broker")
    seq = fleet.stream(DEVICES, 100_000, 5, rate=100)
    topo.broker.stop()  # SIGTERM: Mosquitto saves its sessions and queued messages
    try:
        time.sleep(3)
    finally:
        topo.broker.start()
    back = time.time()
    resubscribed = back
    for name in topo.telemetry_names:  # each process logs when the broker confirmed its subscription
        line = read_until(topo.processes[name], "confirmed by the broker", timeout=60).splitlines()[-1]
        at = datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00")).timestamp()
        resubscribed = max(resubscribed, at)
    seq = fleet.stream(DEVICES, seq, 10, rate=100)
    values, _ = settle(topo, fleet, since, 120)
    got = {(d, v) for d, vs in values.items() for v in vs}
    lost = {(d, s) for d, seqs in fleet.acked().items() for s in seqs} - got
    in_gap = {key for key, at in fleet.sent_at.items() if back - 0.5 <= at <= resubscribed + 0.5}
    figure = record(
        "broker restarted (3 s down)",
        fleet,
        values,
        round(time.time() - back, 1),
        resubscribed_after_seconds=round(resubscribed - back, 1),
        published_before_resubscribed=len(in_gap),
        lost_outside_that_window=len(lost - in_gap),
    )
    fleet.close()
    assert figure["acknowledged"] == figure["sent"], figure
    assert not lost - in_gap, f"lost outside the broker's window: {sorted(lost - in_gap)[:10]}"


# ---------------------------------------------------------------------- 3. InfluxDB down
def test_influxdb_down_for_two_minutes(topo: Topology, plant: dict[str, Any]) -> None:
    root: Api = plant["root"]
    since = datetime.now(UTC) - timedelta(seconds=1)
    fleet = open_fleet(topo, plant["id"], "influx")
    seq = fleet.stream(DEVICES, 200_000, 5, rate=50)

    def alert_open() -> bool:
        r = root.call("GET", "/root/system-alerts", params={"state": "open", "limit": 200})
        return any(a["kind"] == "timeseries_down" for a in r.json()["items"])

    topo.influx.stop()
    down_at = time.monotonic()
    try:
        seq = fleet.stream(DEVICES, seq, 120, rate=50)  # acknowledged meanwhile: into the telemetry processes' spools
        fleet.wait_acked(30)
        acked_while_down = fleet.acked_count()
        alert_seen = alert_open()
    finally:
        topo.influx.start()
    back = time.monotonic()
    seq = fleet.stream(DEVICES, seq, 5, rate=50)
    values, _ = settle(topo, fleet, since, 300)
    replayed = round(time.monotonic() - back, 1)
    resolved_after = wait_until(lambda: not alert_open(), 120)
    figure = record(
        "InfluxDB down for 120 s",
        fleet,
        values,
        replayed,
        down_seconds=round(back - down_at, 1),
        alert_resolved_seconds=resolved_after,
    )
    fleet.close()
    assert alert_seen, "no system-health alert while InfluxDB was down"
    assert acked_while_down > 5000, acked_while_down
    assert figure["acknowledged"] == figure["sent"] and figure["lost"] == 0, figure


# ---------------------------------------------------------------------- 4. MariaDB restart
def test_mariadb_restart(topo: Topology, plant: dict[str, Any]) -> None:
    api: Api = plant["api"]
    since = datetime.now(UTC) - timedelta(seconds=1)
    fleet = open_fleet(topo, plant["id"], "mariadb")
    seq = fleet.stream(DEVICES, 300_000, 5, rate=50)
    topo.mariadb.stop()
    down_at = time.monotonic()
    errors: Counter[str] = Counter()
    end = time.monotonic() + 30
    try:
        while time.monotonic() < end:
            fleet.publish(DEVICES[seq % len(DEVICES)], seq)
            if seq % 50 == 0:  # a property never seen before: it waits for the database, unacknowledged
                fleet.publish(DEVICES[0], seq + 1, voltage_v=230.0)
                seq += 1
            seq += 1
            if seq % 25 == 0:
                try:
                    r = api.call("GET", "/devices", timeout=10)
                except httpx.TimeoutException:
                    errors["no answer within 10 s"] += 1
                    continue
                errors[f"{r.status_code} {r.json().get('error', {}).get('code', '')}"] += 1
                if r.status_code == 503:
                    assert "not reachable" in r.json()["error"]["message"] and r.headers.get("retry-after")
            time.sleep(0.02)
    finally:
        topo.mariadb.start()
    back = time.monotonic()
    api_back = wait_until(lambda: api.call("GET", "/devices").status_code == 200, 60)
    seq = fleet.stream(DEVICES, seq, 5, rate=50)
    values, _ = settle(topo, fleet, since, 180)
    figure = record(
        "MariaDB stopped for 30 s",
        fleet,
        values,
        round(time.monotonic() - back, 1),
        down_seconds=round(back - down_at, 1),
        api_recovered_seconds=api_back,
        api_answers_while_down=dict(errors),
    )
    fleet.close()
    assert errors["503 database_unavailable"] > 0 and set(errors) == {"503 database_unavailable"}, errors
    assert figure["acknowledged"] == figure["sent"] and figure["lost"] == 0, figure
    props = api.call("GET", f"/devices/{DEVICES[0]}/properties").json()
    names = {p["property_name"] for p in props}
    assert "voltage_v" in names, props


# ---------------------------------------------------------------------- 5. object store down
def test_object_store_down(topo: Topology, plant: dict[str, Any]) -> None:
    api: Api = plant["api"]
    assert api.call("GET", "/analytics/status").json()["available"] is True
    since = datetime.now(UTC) - timedelta(seconds=1)
    fleet = open_fleet(topo, plant["id"], "s3")
    before = {a["id"] for a in api.call("GET", "/alerts", params={"state": "open", "limit": 200}).json()["items"]}
    topo.s3.stop()
    down_at = time.monotonic()
    try:
        wait_until(lambda: api.call("GET", "/analytics/status").json()["available"] is False, 60)
        now = datetime.now(UTC)
        refused = api.call(
            "POST",
            "/analytics/datasets",
            json={
                "name": "while down",
                "device_ids": [DEVICES[0]],
                "start": (now - timedelta(hours=1)).isoformat(),
                "end": now.isoformat(),
            },
        )
        # Telemetry and rules carry on: stored, and a new rule's first breach opens an alert.
        r = api.call(
            "POST",
            "/rules",
            json={
                "name": "Press hot",
                "definition": {
                    "scope": {"kind": "device", "device_ids": [DEVICES[1]]},
                    "condition": {"property": "load", "operator": ">", "value": 95},
                    "severity": "critical",
                },
            },
        )
        assert r.status_code == 201, r.text
        time.sleep(3)  # the telemetry processes learn the rule
        seq = fleet.stream(DEVICES, 400_000, 5, rate=50)
        fleet.publish(DEVICES[1], seq, load=99.0)
        values, took = settle(topo, fleet, since, 60)

        def new_alert() -> bool:
            items = api.call("GET", "/alerts", params={"state": "open", "limit": 200}).json()["items"]
            return any(a["id"] not in before and a["device_id"] == DEVICES[1] for a in items)

        alert_after = wait_until(new_alert, 30)
    finally:
        topo.s3.start()
        topo.create_bucket()  # moto keeps nothing: the operator's bucket again
    back = time.monotonic()
    recovered = wait_until(lambda: api.call("GET", "/analytics/status").json()["available"] is True, 60)
    figure = record(
        "object store down",
        fleet,
        values,
        recovered,
        down_seconds=round(back - down_at, 1),
        telemetry_stored_seconds=took,
        alert_opened_seconds=alert_after,
    )
    fleet.close()
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "object_store_unavailable", refused.text
    assert figure["lost"] == 0 and figure["acknowledged"] == figure["sent"], figure


# ---------------------------------------------------------------------- 6. a worker killed mid-job
def test_worker_killed_mid_job(topo: Topology, plant: dict[str, Any]) -> None:
    api: Api = plant["api"]
    factory_id = plant["id"]
    wait_until(lambda: api.call("GET", "/analytics/status").json()["available"] is True, 60)
    # Four weeks of the steel mill's 15-minute history for one meter, written as a back-fill.
    rows = 4 * 7 * 96
    end = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    start = end - STEP * rows
    points = [
        Point("meter-hist", name, start + STEP * i, value)
        for i, row in enumerate(steel_rows(rows))
        for name, value in row.items()
    ]
    store = InfluxTimeseriesStore(topo.influx_url, "factoryops", timeout=30.0)
    assert store.write(FactoryScope(factory_id), points) == len(points)
    store.compact()  # the rollups of this back-fill (the continuous queries only cover new time)
    store.close()
    db = Database(topo.database_url)
    Registry(db).ensure_properties(factory_id, "meter-hist", list(STEEL_COLUMNS.values()), start)
    db.dispose()
    r = api.call(
        "POST",
        "/analytics/datasets",
        json={
            "name": "steel",
            "device_ids": ["meter-hist"],
            "start": start.isoformat(),
            "end": end.isoformat(),
            "resolution": "15m",
        },
    )
    assert r.status_code == 202, r.text
    dataset_id = r.json()["dataset"]["id"]
    wait_until(lambda: api.call("GET", f"/analytics/datasets/{dataset_id}").json()["state"] == "ready", 120)
    r = api.call(
        "POST",
        "/analytics/runs",
        json={
            "dataset_id": dataset_id,
            "mode": "copilot",
            "task": "forecast",
            "target": "usage_kwh",
            "budget_seconds": 30,
        },
    )
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    wait_until(lambda: api.call("GET", f"/analytics/runs/{run_id}").json()["progress"] >= 15, 120, step=0.2)
    engine = sqlalchemy.create_engine(topo.database_url, poolclass=sqlalchemy.pool.NullPool)
    job_id = api.call("GET", f"/analytics/runs/{run_id}").json()["job_id"]
    with engine.connect() as conn:
        worker = conn.exec_driver_sql("SELECT worker FROM jobs WHERE id = %s", (job_id,)).scalar_one()
    victim = next(n for n in topo.worker_names if f"-{topo.processes[n].pid}-" in f"{worker}-")
    topo.kill(victim)
    killed_at = time.monotonic()
    try:
        wait_until(lambda: api.call("GET", f"/analytics/runs/{run_id}").json()["state"] in ("succeeded", "failed"), 300)
    finally:
        topo.start(victim)
    run = api.call("GET", f"/analytics/runs/{run_id}").json()
    with engine.connect() as conn:
        attempts, taken_by = conn.exec_driver_sql("SELECT attempts, worker FROM jobs WHERE id = %s", (job_id,)).one()
    FIGURES.append(
        {
            "fault": "worker killed mid-job (SIGKILL)",
            "sent": 0,
            "acknowledged": 0,
            "stored": 0,
            "lost": 0,
            "duplicates": 0,
            "recovery_seconds": round(time.monotonic() - killed_at, 1),
            "job_attempts": attempts,
        }
    )
    assert run["state"] == "succeeded", run
    assert attempts == 2 and taken_by != worker, (attempts, taken_by, worker)
    dataset = api.call("GET", f"/analytics/datasets/{dataset_id}").json()
    assert dataset["state"] == "ready"
