"""The `factoryops` command: run the platform whole or in pieces, migrate, show settings."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import SecretStr, ValidationError

from factoryops.core.errors import ApiError
from factoryops.core.settings import Environment, Settings, get_settings
from factoryops.wiring import Platform, job_handlers, worker_sweeps

if TYPE_CHECKING:
    from factoryops.core.gc_steward import GcSteward

log = logging.getLogger("factoryops")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        for err in exc.errors():
            print(f"factoryops: invalid setting: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from exc


def _logging(settings: Settings, process: str = "factoryops") -> None:
    """Text or JSON log lines (FACTORYOPS_LOG_FORMAT), naming this process (api, telemetry, worker, up)."""
    from factoryops.core.gc_steward import watch_pauses
    from factoryops.core.logs import configure
    from factoryops.core.metrics import set_process

    configure(settings.log_level, settings.log_format, process)
    set_process(process)
    watch_pauses()  # factoryops_gc_pause_seconds, in every process


def _serve_metrics(settings: Settings) -> None:
    """Prometheus metrics of a split service on FACTORYOPS_METRICS_PORT (0: off)."""
    if not settings.metrics_port:
        return
    from factoryops.core.metrics import serve_metrics

    try:
        serve_metrics(settings.http.host, settings.metrics_port)
    except OSError as exc:
        print(
            f"factoryops: cannot serve metrics on {settings.http.host}:{settings.metrics_port}: {exc.strerror or exc}; "
            "set FACTORYOPS_METRICS_PORT to a free port (or 0 for no metrics endpoint)",
            file=sys.stderr,
        )
        raise SystemExit(2) from exc


def _gc_steward(settings: Settings) -> GcSteward | None:
    """The garbage-collection steward of a process that holds the rules' state (telemetry, up)."""
    from factoryops.core.gc_steward import GcSteward

    if not settings.gc_freeze_seconds:
        return None
    return GcSteward(settings.gc_freeze_seconds, settings.gc_full_collect_hours)


def _print_root_password(password: str | None, settings: Settings) -> None:
    if password:
        bar = "=" * 72
        print(
            f"\n{bar}\nPlatform root account created.\n  email:    {settings.root_email}\n"
            f"  password: {password}\nThis password is shown once; sign in at /root/login and keep it safe.\n{bar}\n",
            flush=True,
        )


def _check_tls(settings: Settings, http: bool = False, mqtt: bool = False) -> None:
    """Refuses to start, with one clear line, when a TLS certificate, key or CA file cannot be used."""
    from factoryops.core.tls import TlsSetupError, mqtt_client_context, server_context

    try:
        if http:
            server_context(settings.http)
        if mqtt:
            mqtt_client_context(settings.mqtt)
    except TlsSetupError as exc:
        print(f"factoryops: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def _warn_plain_transport(settings: Settings, http: bool = False, mqtt: bool = False) -> None:
    """In production, one WARNING per link of this process that runs without TLS (docs/tls.md)."""
    from factoryops.core.tls import plain_links

    if settings.env != Environment.production:
        return
    for link in plain_links(settings.http if http else None, settings.mqtt if mqtt else None):
        log.warning("production without TLS: %s: %s (docs/tls.md)", link.what, link.fix)


def _serve_http(
    settings: Settings,
    extra_start: list[Callable[[Platform], Awaitable[None]]],
    extra_stop: list[Callable[[], Awaitable[None]]],
) -> None:
    import uvicorn

    from factoryops.entrypoints.api import create_app
    from factoryops.wiring import build_platform

    _check_tls(settings, http=True)
    _warn_plain_transport(settings, http=True)
    platform = build_platform(settings)
    try:
        _print_root_password(platform.tenancy.ensure_root(), settings)
    except ApiError as exc:
        print(f"factoryops: cannot create the platform root: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from exc
    app = create_app(platform)
    https = settings.http.tls_cert_file is not None and settings.http.tls_key_file is not None
    config = uvicorn.Config(
        app,
        host=settings.http.host,
        port=settings.http.port,
        log_level="warning",
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,  # JSON: ours only
        proxy_headers=True,
        lifespan="on",
        ssl_certfile=str(settings.http.tls_cert_file) if https else None,
        ssl_keyfile=str(settings.http.tls_key_file) if https else None,
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.05)
        if server.started:
            scheme = "https" if https else "http"
            log.info("FactoryOps API and web portal on %s://%s:%s", scheme, settings.http.host, settings.http.port)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):  # until uvicorn installs its own handlers
            loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
        try:
            for start in extra_start:
                await start(platform)
            announcer = asyncio.create_task(announce())
            if not server.should_exit:
                await server.serve()
            await announcer
        finally:
            for stop in reversed(extra_stop):
                await stop()
            platform.db.dispose()

    asyncio.run(main())


def cmd_up(args: argparse.Namespace) -> int:
    settings = _settings()
    _logging(settings, "up")
    if args.demo and settings.env.value == "production":
        # the demo factory's sign-in is published (README): never on a production platform
        print(
            "factoryops: --demo creates a factory whose password is published in the README; it is refused "
            "with FACTORYOPS_ENV=production: leave out --demo",
            file=sys.stderr,
        )
        return 2
    import secrets

    from factoryops.devices.mqtt_auth import DeviceAuth
    from factoryops.entrypoints.services import WorkerService
    from factoryops.ports.mqtt.broker import MqttBroker
    from factoryops.telemetry.service import TelemetryService

    if settings.mqtt.embedded and settings.mqtt.tls:
        print(
            "factoryops: the embedded MQTT broker speaks plain MQTT only; FACTORYOPS_MQTT__TLS is for an external "
            "broker (Mosquitto, EMQX): set FACTORYOPS_MQTT__EMBEDDED=false, or FACTORYOPS_MQTT__TLS=false",
            file=sys.stderr,
        )
        return 2
    _check_tls(settings, mqtt=True)
    _warn_plain_transport(settings, mqtt=True)
    if settings.mqtt.embedded and not settings.mqtt.username:
        # The embedded broker admits devices by their own credentials; the platform's own
        # telemetry service gets a service account made up for this run.
        settings = settings.model_copy(
            update={
                "mqtt": settings.mqtt.model_copy(
                    update={"username": "factoryops-service", "password": SecretStr(secrets.token_urlsafe(24))}
                )
            }
        )
    state: dict[str, object] = {}

    async def start(platform: Platform) -> None:
        if settings.mqtt.embedded:
            assert settings.mqtt.username and settings.mqtt.password
            auth = DeviceAuth(platform.db, settings.mqtt.username, settings.mqtt.password.get_secret_value())
            broker = MqttBroker(settings.mqtt.host, settings.mqtt.port, auth=auth)
            await broker.start()
            state["broker"] = broker
            log.info("embedded MQTT broker listening on %s:%s", settings.mqtt.host, settings.mqtt.port)
        assert platform.timeseries is not None
        telemetry = TelemetryService(settings, platform.db, platform.timeseries)
        telemetry.start()
        steward = _gc_steward(settings)
        if steward is not None:
            steward.start()
            state["steward"] = steward
        worker = WorkerService(
            platform.db,
            timeseries=platform.timeseries,
            job_handlers=job_handlers(platform),
            sweeps=worker_sweeps(platform),
        )
        worker.start()
        state.update(telemetry=telemetry, worker=worker)
        if args.demo:
            from factoryops.demo import start_demo

            state["simulator"] = await asyncio.to_thread(start_demo, platform)

    async def stop() -> None:
        for name in ("simulator", "telemetry", "worker", "steward"):
            service = state.get(name)
            if service is not None:
                await asyncio.to_thread(service.stop)  # type: ignore[attr-defined]
        broker = state.get("broker")
        if isinstance(broker, MqttBroker):
            await broker.stop()
            log.info("embedded MQTT broker stopped")

    _serve_http(settings, [start], [stop])
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    settings = _settings()
    _logging(settings, "api")
    _serve_http(settings, [], [])
    return 0


def _run_until_signal(start: object, stop: object) -> int:
    done = threading.Event()

    def handler(signum: int, frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    start()  # type: ignore[operator]
    while not done.wait(0.5):
        pass
    stop()  # type: ignore[operator]
    return 0


def cmd_telemetry(args: argparse.Namespace) -> int:
    settings = _settings()
    _logging(settings, "telemetry")
    _serve_metrics(settings)
    from factoryops.telemetry.service import TelemetryService
    from factoryops.wiring import build_platform

    _check_tls(settings, mqtt=True)
    _warn_plain_transport(settings, mqtt=True)
    platform = build_platform(settings, migrate=False)
    assert platform.timeseries is not None
    service = TelemetryService(settings, platform.db, platform.timeseries)
    log.info(
        "telemetry service starting; broker %s:%s%s",
        settings.mqtt.host,
        settings.mqtt.port,
        " over TLS" if settings.mqtt.tls else "",
    )
    steward = _gc_steward(settings)

    def start() -> None:
        service.start()
        if steward is not None:
            steward.start()

    def stop() -> None:
        if steward is not None:
            steward.stop()
        service.stop()

    code = _run_until_signal(start, stop)
    platform.timeseries.close()
    platform.db.dispose()
    return code


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings()
    _logging(settings, "worker")
    _serve_metrics(settings)
    from factoryops.entrypoints.services import WorkerService
    from factoryops.wiring import build_platform

    platform = build_platform(settings, migrate=False)
    mosquitto = None
    if settings.mqtt.mosquitto_config_dir:
        from factoryops.devices.broker_config import MosquittoSync

        if not settings.mqtt.username or not settings.mqtt.password:
            print(
                "factoryops: FACTORYOPS_MQTT__MOSQUITTO_CONFIG_DIR needs FACTORYOPS_MQTT__USERNAME and "
                "FACTORYOPS_MQTT__PASSWORD (the telemetry service's account)",
                file=sys.stderr,
            )
            return 2
        mosquitto = MosquittoSync(
            platform.db,
            settings.mqtt.mosquitto_config_dir,
            settings.mqtt.username,
            settings.mqtt.password.get_secret_value(),
            settings.mqtt.mosquitto_pid_file,
        )
    service = WorkerService(
        platform.db,
        timeseries=platform.timeseries,
        mosquitto=mosquitto,
        job_handlers=job_handlers(platform),
        sweeps=worker_sweeps(platform),
    )
    log.info("worker starting")
    code = _run_until_signal(service.start, service.stop)
    platform.db.dispose()
    return code


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    _logging(settings, "migrate")
    from factoryops.core.migrate import current
    from factoryops.wiring import build_platform

    platform = build_platform(settings, migrate=True)
    print(f"database at revision {current(platform.db.engine)}")
    platform.db.dispose()
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    if args.reference:
        from factoryops.core.settings import settings_reference

        print(settings_reference(), end="")
        return 0
    print(json.dumps(_settings().masked(), indent=2))
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from factoryops.entrypoints.api import create_app

    # The document depends on the code only: no database, no environment.
    settings = Settings(_env_file=None, database={"url": "sqlite://"})
    app = create_app(Platform(settings=settings, db=None, tenancy=None))  # type: ignore[arg-type]
    print(json.dumps(app.openapi(), indent=2, sort_keys=True))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Signs in to the API as a user with the devices permission, registers the fleet, publishes."""
    import os
    import ssl
    from pathlib import Path

    import httpx

    from factoryops.simulator import SimDevice, Simulator

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tls = None
    if args.tls or args.ca_file:
        from factoryops.core.tls import TlsSetupError, client_context

        try:
            tls = client_context(Path(args.ca_file) if args.ca_file else None, ca_name="--ca-file")
        except TlsSetupError as exc:
            print(f"factoryops simulate: {exc}", file=sys.stderr)
            return 2
    password = args.password or os.environ.get("FACTORYOPS_SIM_PASSWORD", "")
    verify: ssl.SSLContext | bool = True
    if args.ca_file:  # an https:// API with a certificate from the same private CA: trust it beside the system's
        verify = ssl.create_default_context()
        verify.load_verify_locations(cafile=args.ca_file)
    api = httpx.Client(base_url=args.api.rstrip("/") + "/api/v1", timeout=30, verify=verify)
    r = api.post("/auth/login", json={"factory": args.factory, "email": args.email, "password": password})
    if r.status_code != 200:
        print(
            f"factoryops simulate: sign-in failed: {r.json().get('error', {}).get('message', r.text)}", file=sys.stderr
        )
        return 2
    api.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def device(device_id: str, kind: str) -> SimDevice:
        r = api.post("/devices", json={"device_id": device_id, "name": device_id, "type": kind})
        if r.status_code == 409:
            r = api.post(f"/devices/{device_id}/rotate-credentials")
        if r.status_code not in (200, 201):
            raise SystemExit(f"factoryops simulate: cannot register {device_id}: {r.text}")
        m = r.json()["mqtt"]
        return SimDevice(device_id, m["username"], m["password"], m["client_id"], m["topic"])

    fleet = [device(f"{args.prefix}{n:04d}", "energy-meter") for n in range(1, args.devices + 1)]
    steel = device(f"{args.prefix}steel", "steel-plant") if args.steel else None
    simulator = Simulator(
        args.mqtt_host,
        args.mqtt_port,
        fleet,
        interval=args.interval,
        bad_rate=args.bad_rate,
        upgrade_after=args.upgrade_after if args.upgrade_after >= 0 else None,
        steel_device=steel,
        steel_csv=Path(args.steel) if args.steel else None,
        steel_interval=args.interval,
        tls=tls,
    )
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    simulator.start()
    log.info("simulating %d devices every %.1fs on %s:%s", len(fleet), args.interval, args.mqtt_host, args.mqtt_port)
    done.wait(args.duration or None)
    simulator.stop()
    print(f"published {simulator.sent} messages ({simulator.bad_sent} malformed on purpose)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="factoryops", description="FactoryOps energy intelligence platform")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole platform in one process on the embedded defaults")
    up.add_argument("--demo", action="store_true", help="create a demo factory (and its simulated devices)")
    up.set_defaults(func=cmd_up)
    sub.add_parser("api", help="run the API and web portal").set_defaults(func=cmd_api)
    sub.add_parser("telemetry", help="run the telemetry service").set_defaults(func=cmd_telemetry)
    sub.add_parser("worker", help="run a jobs worker").set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="apply the database migrations").set_defaults(func=cmd_migrate)
    config = sub.add_parser("config", help="print the effective settings, secrets masked")
    config.add_argument("--reference", action="store_true", help="print every setting as a Markdown table")
    config.set_defaults(func=cmd_config)
    sub.add_parser("openapi", help="print the OpenAPI document").set_defaults(func=cmd_openapi)
    sim = sub.add_parser("simulate", help="publish a simulated fleet over MQTT")
    sim.add_argument("--api", default="http://127.0.0.1:8000", help="the platform's URL")
    sim.add_argument("--factory", required=True, help="factory slug")
    sim.add_argument("--email", required=True, help="a user with the devices permission")
    sim.add_argument("--password", default="", help="or FACTORYOPS_SIM_PASSWORD")
    sim.add_argument("--mqtt-host", default="127.0.0.1")
    sim.add_argument("--mqtt-port", type=int, default=18830)
    sim.add_argument("--tls", action="store_true", help="publish over TLS (e.g. --mqtt-port 8883)")
    sim.add_argument(
        "--ca-file",
        default="",
        help="PEM CA that signed the broker's certificate (implies --tls); also trusted for an https:// --api",
    )
    sim.add_argument("--devices", type=int, default=20, help="number of simulated meters")
    sim.add_argument("--prefix", default="sim-", help="device id prefix")
    sim.add_argument("--interval", type=float, default=5.0, help="seconds between messages of a device")
    sim.add_argument("--bad-rate", type=float, default=0.0, help="share of malformed messages (0-1)")
    sim.add_argument("--upgrade-after", type=float, default=60.0, help="seconds before a firmware upgrade (-1: never)")
    sim.add_argument("--steel", default="", help="replay this steel_industry_energy_2018.csv as a device")
    sim.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until SIGTERM)")
    sim.set_defaults(func=cmd_simulate)
    # Operations (docs/operations.md): doctor, backup, restore, export-factory.
    from factoryops.entrypoints import doctor
    from factoryops.tenancy import backup

    doctor.register(sub)
    backup.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
