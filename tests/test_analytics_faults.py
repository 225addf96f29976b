"""Analytics faults (spec 10.4, 10.5): an unreachable object store, and a worker that dies mid-run.

- With the S3 endpoint down, analytics refuses to start work (503 with the reason, a system alert
  for the super admins, the status route says so), while telemetry and rules carry on: a message
  published over MQTT is stored and opens an alert.
- A worker process killed (SIGKILL) in the middle of a co-pilot run: the job's heartbeat stops,
  another worker takes the job back and the run finishes; the dataset is untouched.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient

import analytics_support
from analytics_support import Stack, wait_for
from factoryops.jobs.models import Job
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import JobWorker
from factoryops.notifications import system_alerts
from factoryops.ports.timeseries.base import FactoryScope
from factoryops.telemetry.service import TelemetryService
from factoryops.wiring import job_handlers
from s3 import ACCESS_KEY, SECRET_KEY
from services import factoryops, mosquitto, read_until, stop
from support import auth, free_port, make_settings, setup_rule

stack = analytics_support.stack
client = analytics_support.client
worker = analytics_support.worker
plant = analytics_support.plant


def _dataset(client: TestClient, h: dict[str, str], plant: dict[str, Any]) -> dict[str, Any]:
    body = {
        "name": "steel",
        "device_ids": ["meter-1"],
        "start": plant["start"].isoformat(),
        "end": plant["end"].isoformat(),
        "resolution": "15m",
    }
    r = client.post("/api/v1/analytics/datasets", headers=h, json=body)
    assert r.status_code == 202, r.text
    dataset = wait_for(client, h, f"/api/v1/analytics/datasets/{r.json()['dataset']['id']}", ("ready", "failed"))
    assert dataset["state"] == "ready", dataset
    return dataset


def test_unreachable_object_store_pauses_analytics_but_not_telemetry_or_rules(
    client: TestClient, plant: dict[str, Any], worker: JobWorker, stack: Stack, tmp_path: Path
) -> None:
    world = plant["world"]
    h = auth(world.admin_all_token)
    dataset = _dataset(client, h, plant)
    rule_id = setup_rule(
        client,
        world,
        {
            "scope": {"kind": "device", "device_ids": ["press-1"]},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "cooldown_seconds": 0,
        },
        devices={"press-1": ""},
    )
    platform = stack.platform
    port = free_port()
    settings = make_settings(tmp_path, platform.settings.database_url, mqtt={"port": port}, telemetry_name="t-fault")
    assert platform.timeseries is not None
    with stack.moto.stopped(), mosquitto(tmp_path / "broker", port):
        time.sleep(analytics_support.PING_TTL + 0.5)  # what the API last knew of the store has expired
        r = client.post(
            "/api/v1/analytics/runs",
            headers=h,
            json={"dataset_id": dataset["id"], "task": "anomaly", "model": "robust_zscore", "target": "usage_kwh"},
        )
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["code"] == "object_store_unavailable"
        assert "Telemetry and rules are not affected" in error["message"]
        r = client.post(
            "/api/v1/analytics/datasets",
            headers=h,
            json={
                "name": "x",
                "device_ids": ["meter-1"],
                "start": plant["start"].isoformat(),
                "end": plant["end"].isoformat(),
                "resolution": "1h",
            },
        )
        assert r.status_code == 503 and r.json()["error"]["code"] == "object_store_unavailable", r.text
        status = client.get("/api/v1/analytics/status", headers=h).json()
        assert status["available"] is False and "object store" in status["message"]
        recorder = system_alerts.installed()
        assert recorder is not None
        recorder.flush(force=True)
        alerts = client.get("/api/v1/system-alerts", headers=auth(world.super_token)).json()
        items = alerts["items"] if isinstance(alerts, dict) else alerts
        assert any(a["kind"] == "objectstore_down" and a["state"] == "open" for a in items), alerts

        # Telemetry and rules: a message over MQTT is stored and opens an alert, object store or not.
        service = TelemetryService(settings, platform.db, platform.timeseries)
        service.start()
        try:
            assert service.connected.wait(10)
            time.sleep(0.3)
            pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="press-1", protocol=mqtt.MQTTv5)
            pub.connect("127.0.0.1", port)
            pub.loop_start()
            topic = f"factories/{world.id}/devices/press-1/telemetry"
            pub.publish(topic, json.dumps({"power_kw": 150.5}), qos=1).wait_for_publish(5)
            deadline = time.monotonic() + 20
            opened: list[dict[str, Any]] = []
            stored: dict[Any, Any] = {}
            while time.monotonic() < deadline and not (opened and stored):
                opened = client.get(f"/api/v1/alerts?rule_id={rule_id}", headers=h).json()["items"]
                stored = platform.timeseries.latest(FactoryScope(world.id), ["press-1"], ["power_kw"])
                time.sleep(0.2)
            pub.loop_stop()
            pub.disconnect()
        finally:
            service.stop()
        assert [a["trigger_values"] for a in opened] == [{"power_kw": 150.5}]
        assert [s.value for s in stored.values()] == [150.5]
    # Back: analytics starts again (an empty S3 after moto's restart: the run itself will fail to
    # find its dataset's snapshot, which is the next test's subject; here only the refusal goes).
    deadline = time.monotonic() + analytics_support.PING_TTL + 5
    while time.monotonic() < deadline:
        if client.get("/api/v1/analytics/status", headers=h).json()["available"]:
            break
        time.sleep(0.5)
    assert client.get("/api/v1/analytics/status", headers=h).json()["available"] is True


def test_a_worker_killed_mid_run_hands_the_run_to_another(
    client: TestClient, plant: dict[str, Any], stack: Stack, tmp_path: Path
) -> None:
    world = plant["world"]
    h = auth(world.admin_all_token)
    platform = stack.platform
    queue = JobQueue(platform.db, retry_base_seconds=0.05)
    helper = JobWorker(queue, job_handlers(platform), name="export-helper", poll_seconds=0.05)
    helper.start()
    try:
        dataset = _dataset(client, h, plant)
    finally:
        helper.stop()
    env = {
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_DATABASE__URL": platform.settings.database_url,
        "FACTORYOPS_TIMESERIES__BACKEND": "influxdb",
        "FACTORYOPS_TIMESERIES__INFLUX_URL": stack.influx.url,
        "FACTORYOPS_TIMESERIES__INFLUX_DATABASE": stack.influx_database,
        "FACTORYOPS_OBJECTSTORE__BACKEND": "s3",
        "FACTORYOPS_OBJECTSTORE__S3_ENDPOINT": stack.moto.url,
        "FACTORYOPS_OBJECTSTORE__S3_ACCESS_KEY": ACCESS_KEY,
        "FACTORYOPS_OBJECTSTORE__S3_SECRET_KEY": SECRET_KEY,
    }
    proc = factoryops(["worker"], env, tmp_path)
    try:
        read_until(proc, "worker connected", timeout=60)
        r = client.post(
            "/api/v1/analytics/runs",
            headers=h,
            json={
                "dataset_id": dataset["id"],
                "mode": "copilot",
                "task": "forecast",
                "target": "usage_kwh",
                "budget_seconds": 20,
            },
        )
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        deadline = time.monotonic() + 90
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            run = client.get(f"/api/v1/analytics/runs/{run_id}", headers=h).json()
            if run["state"] == "running" and run["progress"] >= 15:
                break
            time.sleep(0.2)
        assert run["state"] == "running", run
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            stop(proc)
    # Another worker notices the silent heartbeat and runs the job again from the start.
    rescuer = JobWorker(
        queue, job_handlers(platform), name="rescuer", poll_seconds=0.1, stale_after=timedelta(seconds=3)
    )
    rescuer.start()
    try:
        done = wait_for(client, h, f"/api/v1/analytics/runs/{run_id}", ("succeeded", "failed"), timeout=180)
    finally:
        rescuer.stop()
    assert done["state"] == "succeeded", done
    with platform.db.factory_session(world.id) as s:
        job = s.get(Job, done["job_id"])
        assert job is not None and job.attempts == 2 and job.worker == "rescuer"
    assert done["finished_at"] and done["started_at"] and done["progress"] == 100
    after = client.get(f"/api/v1/analytics/datasets/{dataset['id']}", headers=h).json()
    assert after["state"] == "ready" and after["content_hash"] == dataset["content_hash"]
