"""Analytics end to end on the real services: export, standard and co-pilot runs, the registry, retry.

The platform here keeps telemetry in a throwaway InfluxDB and objects in a moto S3 server (a real
S3 HTTP endpoint), with the metadata database of the run (SQLite or MariaDB); see
``tests/analytics_support.py``. Jobs run on a real job worker.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pandas as pd
from fastapi.testclient import TestClient

import analytics_support
from analytics_support import STEEL_COLUMNS, WEEKS, Stack, history, steel_rows, wait_for
from factoryops.jobs.worker import JobWorker
from s3 import ACCESS_KEY, REGION, SECRET_KEY
from support import auth

# The fixtures of this module: a platform on InfluxDB + S3, its API client, a job worker, a plant.
stack = analytics_support.stack
client = analytics_support.client
worker = analytics_support.worker
plant = analytics_support.plant


def export(client: TestClient, h: dict[str, str], plant: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {
        "name": "steel meter, 4 weeks",
        "device_ids": ["meter-1"],
        "start": plant["start"].isoformat(),
        "end": plant["end"].isoformat(),
        "resolution": "15m",
        **extra,
    }
    r = client.post("/api/v1/analytics/datasets", headers=h, json=body)
    assert r.status_code == 202, r.text
    return dict(r.json())


def test_export_is_an_immutable_snapshot(client: TestClient, plant: dict[str, Any], worker: JobWorker) -> None:
    h = auth(plant["world"].admin_all_token)
    started = export(client, h, plant)
    assert started["reused"] is False
    dataset = wait_for(client, h, f"/api/v1/analytics/datasets/{started['dataset']['id']}", ("ready", "failed"))
    assert dataset["state"] == "ready", dataset
    rows = WEEKS * 7 * 96
    assert dataset["row_count"] == rows * len(STEEL_COLUMNS)
    assert sorted(dataset["columns"]) == sorted(STEEL_COLUMNS.values())

    # The download is the Parquet file whose hash the row and the manifest name.
    r = client.get(f"/api/v1/analytics/datasets/{dataset['id']}/download", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
    assert hashlib.sha256(r.content).hexdigest() == dataset["content_hash"]
    frame = pd.read_parquet(io.BytesIO(r.content))
    assert list(frame.columns) == ["ts", "device_id", "property", "value"] and len(frame) == dataset["row_count"]
    usage = frame[frame["property"] == "usage_kwh"].sort_values("ts")
    assert usage["value"].tolist()[:3] == [row["usage_kwh"] for row in steel_rows(plant["skip"] + 3)[-3:]]

    preview = client.get(f"/api/v1/analytics/datasets/{dataset['id']}/preview?rows=5", headers=h).json()
    assert preview["columns"][0] == "ts" and len(preview["rows"]) == 5
    assert preview["manifest"]["content_hash"]["sha256"] == dataset["content_hash"]
    assert preview["manifest"]["row_count"] == dataset["row_count"]
    assert {s["property"] for s in preview["manifest"]["series"]} == set(STEEL_COLUMNS.values())

    # The same request is answered by the same snapshot; a different one makes a new one.
    again = export(client, h, plant, name="same request, other name")
    assert again["reused"] is True and again["dataset"]["id"] == dataset["id"]
    other = export(client, h, plant, resolution="1h")
    assert other["reused"] is False and other["dataset"]["id"] != dataset["id"]
    hourly = wait_for(client, h, f"/api/v1/analytics/datasets/{other['dataset']['id']}", ("ready", "failed"))
    assert hourly["row_count"] == WEEKS * 7 * 24 * len(STEEL_COLUMNS)

    listed = client.get("/api/v1/analytics/datasets", headers=h).json()
    assert {d["id"] for d in listed["items"]} == {dataset["id"], hourly["id"]}


def test_bad_export_requests_are_refused_with_reasons(client: TestClient, plant: dict[str, Any]) -> None:
    h = auth(plant["world"].admin_all_token)
    base = {
        "name": "x",
        "device_ids": ["meter-1"],
        "start": plant["start"].isoformat(),
        "end": plant["end"].isoformat(),
    }
    cases = [
        ({"device_ids": ["nope"]}, "unknown_devices"),
        ({"properties": ["voltage"]}, "unknown_properties"),
        ({"start": plant["end"].isoformat(), "end": plant["start"].isoformat()}, "invalid_range"),
        ({"end": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "invalid_range"),
        ({"resolution": "raw", "start": (plant["end"] - timedelta(days=60)).isoformat()}, "range_too_long"),
    ]
    for change, code in cases:
        r = client.post("/api/v1/analytics/datasets", headers=h, json={**base, **change})
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (change, r.text)
    r = client.post("/api/v1/analytics/datasets", headers=auth(plant["world"].admin_plain_token), json=base)
    assert r.status_code == 403


def _ready_dataset(client: TestClient, h: dict[str, str], plant: dict[str, Any], **extra: Any) -> dict[str, Any]:
    started = export(client, h, plant, **extra)
    dataset = wait_for(client, h, f"/api/v1/analytics/datasets/{started['dataset']['id']}", ("ready", "failed"))
    assert dataset["state"] == "ready", dataset
    return dataset


def _run(client: TestClient, h: dict[str, str], body: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    r = client.post("/api/v1/analytics/runs", headers=h, json=body)
    assert r.status_code == 202, r.text
    return wait_for(
        client, h, f"/api/v1/analytics/runs/{r.json()['id']}", ("succeeded", "failed", "cancelled"), timeout
    )


def test_standard_and_copilot_runs_and_the_registry(
    client: TestClient, plant: dict[str, Any], worker: JobWorker, stack: Stack
) -> None:
    world = plant["world"]
    h = auth(world.admin_all_token)
    dataset = _ready_dataset(client, h, plant)

    anomaly = _run(
        client,
        h,
        {"dataset_id": dataset["id"], "task": "anomaly", "model": "isolation_forest", "target": "usage_kwh"},
    )
    assert anomaly["state"] == "succeeded", anomaly
    assert anomaly["model_name"] == "isolation_forest" and anomaly["model_version"] == 1
    assert anomaly["progress"] == 100 and "n_anomalies" in anomaly["metrics"]
    assert anomaly["summary"]
    charts = client.get(f"/api/v1/analytics/runs/{anomaly['id']}/charts", headers=h).json()
    assert charts["kind"] == "timeseries" and charts["series"] and "markers" in charts
    csv_text = client.get(f"/api/v1/analytics/runs/{anomaly['id']}/predictions", headers=h).text
    assert "anomaly" in csv_text.splitlines()[0]

    forecast = _run(
        client,
        h,
        {
            "dataset_id": dataset["id"],
            "mode": "copilot",
            "task": "forecast",
            "target": "usage_kwh",
            "budget_seconds": 15,
            "name": "day-ahead usage",
        },
        timeout=180,
    )
    assert forecast["state"] == "succeeded", forecast
    assert forecast["leaderboard"] and forecast["feature_report"] and forecast["summary"]
    assert forecast["metrics"]["mae"] < forecast["metrics"]["mae_seasonal_naive"], forecast["metrics"]
    progress = forecast["_progress_seen"]
    assert len(set(progress)) >= 3 and progress[-1] == 100, progress  # progress shown along the way

    versions = client.get("/api/v1/analytics/model-versions?name=day-ahead%20usage", headers=h).json()["items"]
    assert [(v["name"], v["version"], v["run_id"]) for v in versions] == [("day-ahead usage", 1, forecast["id"])]
    assert versions[0]["dataset_id"] == dataset["id"] and versions[0]["hyperparameters"] == forecast["hyperparameters"]

    # A second run under the same name is version 2; the first stays as it was.
    again = _run(
        client,
        h,
        {
            "dataset_id": dataset["id"],
            "task": "forecast",
            "model": "seasonal_naive",
            "target": "usage_kwh",
            "name": "day-ahead usage",
        },
    )
    assert again["state"] == "succeeded" and again["model_version"] == 2

    # The saved anomaly model applied to a newer dataset (the next day of the meter).
    platform = stack.platform
    newer_end = plant["end"] + timedelta(days=1)
    history(platform, world, "meter-1", newer_end, rows=96, skip=WEEKS * 7 * 96)
    newer = _ready_dataset(
        client, h, plant, start=plant["end"].isoformat(), end=newer_end.isoformat(), name="the next day"
    )
    anomaly_version = client.get("/api/v1/analytics/model-versions?task=anomaly", headers=h).json()["items"][0]
    r = client.post(
        f"/api/v1/analytics/model-versions/{anomaly_version['id']}/score", headers=h, json={"dataset_id": newer["id"]}
    )
    assert r.status_code == 202, r.text
    scored = wait_for(client, h, f"/api/v1/analytics/runs/{r.json()['id']}", ("succeeded", "failed"))
    assert scored["state"] == "succeeded", scored
    assert scored["mode"] == "scoring" and scored["source_model_id"] == anomaly_version["id"]
    assert scored["dataset_id"] == newer["id"] and scored["model_version"] == 1
    predictions = pd.read_csv(
        io.StringIO(client.get(f"/api/v1/analytics/runs/{scored['id']}/predictions", headers=h).text)
    )
    assert len(predictions) == 96


def test_bad_runs_fail_with_the_reason_and_retry_works(
    client: TestClient, plant: dict[str, Any], worker: JobWorker, stack: Stack
) -> None:
    world = plant["world"]
    h = auth(world.admin_all_token)
    dataset = _ready_dataset(client, h, plant)
    for body, code in (
        ({"task": "forecast", "model": "holt_winters"}, "target_required"),
        ({"task": "forecast", "model": "prophet", "target": "usage_kwh"}, "invalid_model"),
        ({"task": "forecast", "model": "holt_winters", "target": "voltage"}, "unknown_target"),
        ({"task": "anomaly", "model": "isolation_forest", "params": {"depth": 3}}, "invalid_params"),
    ):
        r = client.post("/api/v1/analytics/runs", headers=h, json={"dataset_id": dataset["id"], **body})
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)

    # The snapshot disappears from the object store: the run fails after its attempts, with the
    # error; the dataset row is kept; once the object is back, a retry succeeds.
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.moto.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )
    objects = s3.list_objects_v2(Bucket="factoryops", Prefix=f"{world.id}/analytics/datasets/{dataset['id']}/")
    data_key = next(o["Key"] for o in objects["Contents"] if o["Key"].endswith(".parquet"))
    s3.copy_object(Bucket="factoryops", Key=data_key + ".kept", CopySource={"Bucket": "factoryops", "Key": data_key})
    s3.delete_object(Bucket="factoryops", Key=data_key)
    platform = stack.platform
    cache = platform.settings.data_dir / "cache" / "datasets" / world.id
    for cached in cache.glob("*.parquet"):
        cached.unlink()
    failed = _run(
        client, h, {"dataset_id": dataset["id"], "task": "anomaly", "model": "robust_zscore", "target": "usage_kwh"}
    )
    assert failed["state"] == "failed", failed
    assert failed["error"], failed
    assert client.get(f"/api/v1/analytics/datasets/{dataset['id']}", headers=h).json()["state"] == "ready"
    r = client.post(f"/api/v1/analytics/runs/{failed['id']}/retry", headers=auth(world.admin_plain_token))
    assert r.status_code == 403
    s3.copy_object(Bucket="factoryops", Key=data_key, CopySource={"Bucket": "factoryops", "Key": data_key + ".kept"})
    r = client.post(f"/api/v1/analytics/runs/{failed['id']}/retry", headers=h)
    assert r.status_code == 200, r.text
    retried = wait_for(client, h, f"/api/v1/analytics/runs/{failed['id']}", ("succeeded", "failed"))
    assert retried["state"] == "succeeded" and retried["error"] == "", retried
    r = client.post(f"/api/v1/analytics/runs/{failed['id']}/retry", headers=h)
    assert r.status_code == 409
