"""Observability: Prometheus metrics of every process, JSON logs with their context, the root's health page.

The split services run as real processes (`factoryops telemetry`, `factoryops worker`) against our
own Mosquitto and the test database, with metrics on free ports and JSON logs; the test publishes
good and bad messages, runs a job, scrapes both /metrics endpoints and reads the log lines.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from factoryops.alerts.models import Alert
from factoryops.core import logs
from factoryops.jobs.queue import JobQueue
from factoryops.notifications.models import Delivery
from factoryops.notifications.recipients import KIND as NOTIFY_KIND
from factoryops.observability.collectors import PlatformCollector
from services import factoryops, mosquitto, read_until, stop
from support import auth, free_port, mqtt_connect, mqtt_publish, setup_rule

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics answer: (name, sorted labels) -> value."""
    r = httpx.get(url, timeout=5)
    assert r.status_code == 200, r.text
    return parse(r.text)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Polls ``check`` until it returns something truthy (a condition, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {timeout}s (last: {last!r})")


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of a process's output, each of which must be one JSON object."""
    entries = []
    for line in output.splitlines():
        if line.strip():
            entry = json.loads(line)  # a line that is not JSON fails here, with the line in the error
            assert {"ts", "level", "logger", "message", "process"} <= set(entry), line
            entries.append(entry)
    return entries


def test_split_services_serve_metrics_write_json_logs_and_report_heartbeats(
    client: TestClient, make_factory, root_token: str, tmp_path: Path, database_url: str
) -> None:
    world = make_factory(with_admins=False)
    setup_rule(
        client,
        world,
        {"scope": {"kind": "factory"}, "condition": {"property": "power_kw", "operator": ">", "value": 1000}},
        devices={"meter-1": ""},
    )
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:  # a delivery whose email channel is not configured
        alert = Alert(rule_id="r-obs", rule_name="obs", device_id="meter-1", severity="critical")
        s.add(alert)
        s.flush()
        delivery = Delivery(alert_id=alert.id, event="opened", channel="email", recipient="ops@plant.example")
        s.add(delivery)
        s.flush()
        job = JobQueue(platform.db).enqueue(s, NOTIFY_KIND, {"delivery_id": delivery.id})
        alert_id, job_id = alert.id, job.id
    mqtt_port, telemetry_metrics, worker_metrics = free_port(), free_port(), free_port()
    name = f"obs-{secrets.token_hex(3)}"
    env = {
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_DATABASE__URL": database_url,
        "FACTORYOPS_MQTT__PORT": str(mqtt_port),
        "FACTORYOPS_TELEMETRY_NAME": name,
        "FACTORYOPS_LOG_FORMAT": "json",
        "FACTORYOPS_SERVICE_HEARTBEAT_SECONDS": "1",
        "FACTORYOPS_HTTP__HOST": "127.0.0.1",
    }
    topic = f"factories/{world.id}/devices/meter-1/telemetry"
    with mosquitto(tmp_path / "broker", mqtt_port):
        telemetry = factoryops(["telemetry"], {**env, "FACTORYOPS_METRICS_PORT": str(telemetry_metrics)}, tmp_path)
        worker = factoryops(["worker"], {**env, "FACTORYOPS_METRICS_PORT": str(worker_metrics)}, tmp_path)
        try:
            read_until(telemetry, "confirmed by the broker")
            read_until(worker, "worker connected")
            publisher, reason = mqtt_connect(mqtt_port, "publisher", "x", f"obs-pub-{name}")
            assert reason == 0
            for n in range(3):
                assert mqtt_publish(publisher, topic, json.dumps({"power_kw": 1.5 + n}).encode()) == 0
            assert mqtt_publish(publisher, f"factories/{world.id}/devices/ghost/telemetry") == 0
            assert mqtt_publish(publisher, topic, b"{not json") == 0
            publisher.disconnect()

            url = f"http://127.0.0.1:{telemetry_metrics}/metrics"
            t = wait_for(
                "telemetry counters",
                lambda: (
                    (m := scrape(url))
                    and value(m, "factoryops_telemetry_messages_total", outcome="accepted") >= 3
                    and value(m, "factoryops_telemetry_messages_total", outcome="rejected") >= 2
                    and value(m, "factoryops_points_written_total") >= 3
                    and m
                ),
            )
            assert value(t, "factoryops_telemetry_rejects_total", reason="unknown_device") >= 1
            assert value(t, "factoryops_telemetry_rejects_total", reason="invalid_json") >= 1
            assert value(t, "factoryops_timeseries_write_seconds_count") > 0
            assert value(t, "factoryops_rule_evaluation_seconds_count") >= 3
            assert value(t, "factoryops_mqtt_connected") == 1
            assert value(t, "factoryops_spool_points") == 0
            assert value(t, "factoryops_process_info", process="telemetry", version=_version()) == 1
            # The garbage-collection steward froze the start-up heap, and collections are timed.
            assert value(t, "factoryops_gc_frozen_objects") > 10_000
            assert value(t, "factoryops_gc_pause_seconds_count", generation="0") >= 1

            w = wait_for(
                "the job done",
                lambda: (
                    (m := scrape(f"http://127.0.0.1:{worker_metrics}/metrics"))
                    and value(m, "factoryops_jobs_total", kind=NOTIFY_KIND, outcome="succeeded") >= 1
                    and m
                ),
            )
            assert value(w, "factoryops_job_duration_seconds_count", kind=NOTIFY_KIND) >= 1
            assert value(w, "factoryops_notification_deliveries_total", channel="email", outcome="failed") >= 1
            assert value(w, "factoryops_process_info", process="worker", version=_version()) == 1
            assert value(w, "factoryops_gc_pause_seconds_count", generation="0") >= 1  # timed, never frozen
            assert value(w, "factoryops_gc_frozen_objects") == 0

            # The root's health page sees both processes, with their figures.
            def health() -> dict[str, Any]:
                r = client.get("/api/v1/root/health", headers=auth(root_token))
                assert r.status_code == 200, r.text
                return dict(r.json())

            def ours(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
                return {
                    s["kind"]: s
                    for s in body["services"]
                    if s["id"] == f"telemetry:{name}" or (s["kind"] == "worker" and s["pid"] == worker.pid)
                }

            body = wait_for(
                "heartbeats with figures",
                lambda: (
                    (b := health())
                    and (found := ours(b)).keys() == {"telemetry", "worker"}
                    and (found["telemetry"]["stats"]["messages_received"] or 0) >= 5
                    and (found["worker"]["stats"]["jobs_processed"] or 0) >= 1
                    and b
                ),
            )
            services = ours(body)
            assert services["telemetry"]["status"] == "up" and services["worker"]["status"] == "up"
            assert services["telemetry"]["stats"]["messages_rejected"] >= 2
            assert services["telemetry"]["stats"]["mqtt_connected"] is True
            assert services["telemetry"]["stats"]["spool_points"] == 0
            assert services["telemetry"]["history"] and services["worker"]["history"]
            assert {d["name"] for d in body["dependencies"]} == {"database", "mqtt", "timeseries", "objectstore"}
            assert body["alerts_open"]["critical"] >= 1
            assert world.id not in json.dumps(body)  # platform-wide figures only
        finally:
            telemetry_code, telemetry_out = stop(telemetry)
            worker_code, worker_out = stop(worker)
    assert telemetry_code == 0, telemetry_out
    assert worker_code == 0, worker_out

    ingest = [e for e in json_lines(telemetry_out) if e.get("factory_id") == world.id]
    assert {e["process"] for e in json_lines(telemetry_out)} == {"telemetry"}
    rejected = [e for e in ingest if e["logger"] == "factoryops.telemetry.rejects"]
    assert {e.get("device_id") for e in rejected} >= {"ghost", "meter-1"}, ingest
    worker_lines = json_lines(worker_out)
    assert {e["process"] for e in worker_lines} == {"worker"}
    done = [e for e in worker_lines if e.get("job_id") == job_id]
    assert done, worker_out
    assert all(e["factory_id"] == world.id and e["job_kind"] == NOTIFY_KIND for e in done)
    finished = [e for e in done if e.get("outcome") == "succeeded"]
    assert finished and finished[0]["alert_id"] == alert_id and finished[0]["duration_seconds"] >= 0

    # A clean stop is recorded: the page tells it from a process that went silent.
    after = {s["id"]: s for s in client.get("/api/v1/root/health", headers=auth(root_token)).json()["services"]}
    assert after[f"telemetry:{name}"]["status"] == "stopped"


def _version() -> str:
    from factoryops import __version__

    return __version__


def test_metrics_port_taken_is_a_clear_error(tmp_path: Path, database_url: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
            "FACTORYOPS_DATABASE__URL": database_url,
            "FACTORYOPS_METRICS_PORT": str(port),
        }
        proc = factoryops(["worker"], env, tmp_path)
        out = read_until(proc, "FACTORYOPS_METRICS_PORT")
        proc.wait(30)
    assert proc.returncode == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in out


def test_api_metrics_hold_platform_gauges_without_factory_ids(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        s.add(Alert(rule_id="r", rule_name="metrics", device_id="d-1", severity="warning"))
        JobQueue(platform.db).enqueue(s, "reports.generate", {"x": 1})
    collector = PlatformCollector(cache_seconds=0)
    collector.db = platform.db
    direct: Samples = {}
    for family in collector.collect():
        for sample in family.samples:
            direct[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert value(direct, "factoryops_platform_metrics_up") == 1
    assert value(direct, "factoryops_alerts_open", severity="warning") >= 1
    assert value(direct, "factoryops_jobs_queued", kind="reports.generate") >= 1
    assert ("factoryops_jobs_oldest_queued_age_seconds", (("kind", "reports.generate"),)) in direct
    text = client.get("/metrics").text
    for name in (
        "factoryops_alerts_open",
        "factoryops_system_alerts_open",
        "factoryops_jobs_queued",
        "factoryops_jobs_oldest_queued_age_seconds",
        "factoryops_http_request_seconds",
    ):
        assert f"# HELP {name}" in text, name
    assert world.id not in text and world.slug not in text


def test_api_access_log_names_request_factory_and_timing(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("api"))
    access = logging.getLogger("factoryops.access")
    access.addHandler(handler)
    old_level = access.level
    access.setLevel(logging.DEBUG)
    try:
        r = client.get(
            "/api/v1/devices?limit=5&secret=s3cr3t", headers={**auth(world.super_token), "X-Request-ID": "req-42"}
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
        anonymous = client.get("/api/v1/users")
        assert anonymous.status_code == 401 and len(anonymous.headers["x-request-id"]) == 16
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = next(e for e in lines if e.get("request_id") == "req-42")
    assert mine["factory_id"] == world.id and mine["process"] == "api"
    assert (mine["method"], mine["path"], mine["status"]) == ("GET", "/api/v1/devices", 200)
    assert mine["duration_ms"] >= 0 and "s3cr3t" not in stream.getvalue()
    other = next(e for e in lines if e.get("path") == "/api/v1/users")
    assert other["status"] == 401 and "factory_id" not in other


def test_root_health_is_for_the_root_only(client: TestClient, make_factory, root_token: str) -> None:
    world = make_factory(with_admins=False)
    assert client.get("/api/v1/root/health").status_code == 401
    assert client.get("/api/v1/root/health", headers=auth(world.super_token)).status_code == 403
    body = client.get("/api/v1/root/health", headers=auth(root_token)).json()
    assert body["status"] in ("ok", "degraded", "down")
    # The test platform's broker is not running: said in plain words.
    assert any(p.startswith("The MQTT broker is unreachable") for p in body["problems"])


@pytest.mark.nodb
def test_json_log_lines_carry_context_extras_and_exceptions() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("telemetry"))
    logger = logging.getLogger("factoryops.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:

        @logs.unit_of_work
        def handle(device: str) -> None:
            logs.annotate(factory_id="f-1", device_id=device)
            logger.warning("rejected %s", device, extra={"reason": "invalid_json"})
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("failed")

        handle("meter-1")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "rejected meter-1" and first["reason"] == "invalid_json"
    assert (first["factory_id"], first["device_id"], first["process"]) == ("f-1", "meter-1", "telemetry")
    assert first["ts"].endswith("Z") and first["level"] == "WARNING" and first["logger"] == "factoryops.test.json"
    assert "ValueError: boom" in second["exc"] and "Traceback" in second["exc"]
    assert "factory_id" not in third and logs.current() == {}  # the message's context ended with it
    assert sys.exc_info() == (None, None, None)


@pytest.mark.nodb
def test_python_warnings_in_a_json_log_are_json_lines() -> None:
    """A library's UserWarning (matplotlib's missing glyph was one) must not break a JSON log."""
    script = (
        "import logging, warnings\n"
        "from factoryops.core import logs\n"
        "logs.configure('INFO', 'json', 'worker')\n"
        "warnings.warn('Glyph 151 missing from font(s) DejaVu Sans.', UserWarning)\n"
        "logging.getLogger('factoryops.test').info('after')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    warning = next(line for line in lines if line["logger"] == "py.warnings")
    assert "Glyph 151 missing" in warning["message"] and warning["level"] == "WARNING"
    assert warning["process"] == "worker"
    assert [line["message"] for line in lines if line["logger"] == "factoryops.test"] == ["after"]
