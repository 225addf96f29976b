"""Shared plumbing of the service benchmarks (bench/ingest.py, bench/query.py).

Every service a benchmark uses is its own: a Mosquitto on a free port, a throwaway influxd
(tests/influx.py), a database ``factoryops_bench_<random>`` on the MariaDB server (dropped at the
end), and FactoryOps processes started with their own environment in a temporary folder. The
helpers here start them, measure them (CPU seconds, peak RSS) and stop them again, also on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, insert, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from factoryops.core.db import new_id  # noqa: E402
from factoryops.core.mqtt_password import hash_mqtt_password  # noqa: E402
from factoryops.core.settings import Settings  # noqa: E402
from factoryops.devices.models import Device, DeviceProperty, Property  # noqa: E402
from factoryops.devices.service import mqtt_username  # noqa: E402
from factoryops.ports.mqtt.broker_codec import FrameBuffer, encode_str, packet  # noqa: E402
from factoryops.tenancy import schemas as tenancy_schemas  # noqa: E402
from factoryops.tenancy.service import Principal  # noqa: E402
from factoryops.wiring import Platform, build_platform  # noqa: E402
from influx import influxdb  # noqa: E402  (tests/influx.py: a throwaway influxd on free ports)

__all__ = ["influxdb"]

MARIADB_SERVER = os.environ.get("FACTORYOPS_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
PASSWORD = "Bench-Pass-2026"
METRICS = [
    "seq",
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
    "current_l1",
    "current_l2",
    "current_l3",
    "power_kw",
    "power_factor",
    "energy_kwh",
]
TYPES = ["energy-meter", "hydraulic-press", "compressor", "furnace", "chiller", "conveyor", "welder", "pump"]
HALLS = ["Hall A", "Hall B", "Hall C", "Rolling mill", "Paint shop", "Warehouse", "Utilities"]


def on_sigterm_interrupt() -> None:
    """SIGTERM behaves like Ctrl-C, so every ``finally`` runs and all children are stopped.

    SIGINT gets Python's handler back too: a shell that starts us in the background sets it to
    "ignore", and then Ctrl-C (or ``kill -INT``) would reach our children but not us.
    """

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> int:
    """SIGTERM, wait, then SIGKILL: the child is gone when this returns."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return int(proc.returncode)


@contextlib.contextmanager
def mosquitto(folder: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Our own Mosquitto for throughput: no persistence, unlimited queues (nothing dropped), anonymous."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise RuntimeError("mosquitto is not installed (apt-get install -y mosquitto)")
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                "user root",
                "persistence false",
                "max_queued_messages 0",
                "max_inflight_messages 0",
                "set_tcp_nodelay true",
                f"log_dest file {folder / 'mosquitto.log'}",
                "log_type error",
                "log_type warning",
                "log_type notice",  # connections and disconnections
            ]
        )
        + "\n"
    )
    # A session of its own: Ctrl-C in the terminal reaches only us, and we stop it in order.
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_port(port, proc)
        yield proc
    finally:
        stop_process(proc, 10)


@contextlib.contextmanager
def mariadb_database(server: str = MARIADB_SERVER) -> Iterator[str]:
    """A database ``factoryops_bench_<random>`` of its own; dropped at the end. Yields its URL."""
    name = f"factoryops_bench_{secrets.token_hex(4)}"
    engine = create_engine(server)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    try:
        yield f"{server}/{name}?charset=utf8mb4"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


def bench_settings(data_dir: Path, database_url: str, influx_url: str, mqtt_port: int = 1883) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database": {"url": database_url},
        "auth": {"bcrypt_rounds": 4, "jwt_secret": "b" * 40},
        "timeseries": {"backend": "influxdb", "influx_url": influx_url},
        "mqtt": {"port": mqtt_port, "shared_group": ""},
    }
    return Settings(_env_file=None, **values)


def migrate(settings: Settings) -> Platform:
    """Migrations (and the platform objects) through the real wiring."""
    return build_platform(settings, migrate=True)


@dataclass
class BenchFactory:
    id: str
    slug: str
    admin_email: str
    device_ids: list[str]


def device_name(i: int) -> str:
    return f"dev-{i:05d}"


def create_factory(
    platform: Platform,
    devices: int,
    properties_for: int = 0,
    extra_devices: Sequence[str] = (),
    chunk: int = 5000,
) -> BenchFactory:
    """A factory with a super admin (through the tenancy service) and ``devices`` devices (bulk insert).

    The devices are ``dev-00000``, ``dev-00001``, ... then ``extra_devices``. The first
    ``properties_for`` of them have their properties (``METRICS``) registered already, as in a plant
    that has been running for a while; the others discover theirs on their first message.
    """
    tag = secrets.token_hex(3)
    slug = f"bench-{tag}"
    email = f"boss-{tag}@bench.example"
    root = Principal(
        kind="platform_root",
        id="bench",
        email="root@bench.example",
        full_name="",
        role="",
        permissions=[],
        session_id="",
    )
    out = platform.tenancy.create_factory(
        root,
        tenancy_schemas.FactoryCreate(
            name=f"Benchmark plant {tag}",
            slug=slug,
            timezone="UTC",
            super_admin=tenancy_schemas.NewSuperAdmin(email=email, full_name="Bench", password=PASSWORD),
        ),
        "127.0.0.1",
    )
    factory_id = out.id
    now = datetime.now(UTC)
    # Devices never authenticate here (the benchmark broker is anonymous): one hash serves all rows.
    password_hash = hash_mqtt_password(secrets.token_urlsafe(24))
    ids = [device_name(i) for i in range(devices)] + list(extra_devices)
    devices = len(ids)
    db = platform.db
    for start in range(0, devices, chunk):
        rows = [
            {
                "id": new_id(),
                "factory_id": factory_id,
                "device_id": device_id,
                "name": f"{TYPES[i % len(TYPES)].replace('-', ' ').title()} {i:05d}",
                "type": TYPES[i % len(TYPES)],
                "location": HALLS[(i // 7) % len(HALLS)],
                "enabled": True,
                "mqtt_username": mqtt_username(factory_id, device_id),
                "mqtt_password_hash": password_hash,
                "created_at": now,
                "updated_at": now,
            }
            for i, device_id in enumerate(ids[start : start + chunk], start)
        ]
        with db.factory_session(factory_id) as s:
            s.execute(insert(Device), rows)
    known = ids[:properties_for]
    if known:
        with db.factory_session(factory_id) as s:
            s.execute(
                insert(Property),
                [
                    {
                        "id": new_id(),
                        "factory_id": factory_id,
                        "name": name,
                        "unit": "",
                        "kind": "counter" if name.endswith("_kwh") else "gauge",
                        "first_seen": now,
                        "last_seen": now,
                    }
                    for name in METRICS
                ],
            )
        pairs = [(d, m) for d in known for m in METRICS]
        for start in range(0, len(pairs), chunk):
            with db.factory_session(factory_id) as s:
                s.execute(
                    insert(DeviceProperty),
                    [
                        {
                            "id": new_id(),
                            "factory_id": factory_id,
                            "device_id": d,
                            "property_name": m,
                            "first_seen": now,
                            "last_seen": now,
                        }
                        for d, m in pairs[start : start + chunk]
                    ],
                )
    return BenchFactory(id=factory_id, slug=slug, admin_email=email, device_ids=ids)


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment of a FactoryOps child process: nothing inherited from FACTORYOPS_*, only ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORYOPS_")}
    env.update(
        {
            "FACTORYOPS_DATA_DIR": str(settings.data_dir),
            "FACTORYOPS_DATABASE__URL": settings.database_url,
            "FACTORYOPS_TIMESERIES__BACKEND": "influxdb",
            "FACTORYOPS_TIMESERIES__INFLUX_URL": settings.timeseries.influx_url,
            "FACTORYOPS_MQTT__PORT": str(settings.mqtt.port),
            "FACTORYOPS_MQTT__SHARED_GROUP": "",
            "FACTORYOPS_AUTH__JWT_SECRET": settings.auth.jwt_secret.get_secret_value(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class Service:
    """A ``python -m factoryops <command>`` child with its output in a log file."""

    def __init__(self, command: str, env: dict[str, str], folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / f"{command}.log"
        self._out = self.log.open("wb")
        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            [sys.executable, "-m", "factoryops", command],
            env=env,
            cwd=folder,  # no .env of the developer's is read
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid

    def wait_for(self, needle: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{needle!r} did not appear in {self.log}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 60.0) -> int:
        try:
            return stop_process(self.proc, timeout)
        finally:
            self._out.close()


def cpu_seconds(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return float("nan")


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size so far (Linux), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return float("nan")


def rss_mb(pid: int) -> float:
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return float("nan")


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (user + system + irq), summed over cores."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def table(rows: Sequence[Sequence[object]], header: Sequence[str] | None = None) -> str:
    """A plain text table, first column left-aligned, others right-aligned."""
    cells = [[str(c) for c in row] for row in ([header] if header else []) + list(rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)).rstrip()
        )
        if header and n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def other_load() -> str:
    """What else runs on the machine right now: load average and the busiest foreign processes."""
    me = os.getpid()
    ours = {me, *(c.pid for c in psutil.Process(me).children(recursive=True))}
    procs = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        if p.pid in ours:
            continue
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
            procs.append(p)
    time.sleep(1.0)
    busy = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            pct = p.cpu_percent(None)
            if pct >= 5:
                cmd = " ".join(p.info.get("cmdline") or [p.info.get("name") or "?"])[:70]
                busy.append((pct, cmd))
    busy.sort(reverse=True)
    load = os.getloadavg()
    text_ = f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    if busy:
        text_ += "; other processes using CPU: " + "; ".join(f"{cmd} ({pct:.0f}%)" for pct, cmd in busy[:5])
    return text_


def py_spy_binary() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


def start_profile(pid: int, seconds: float, out: Path, rate: int = 50) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of a process for ``seconds`` into ``out`` (collapsed stacks); None without py-spy.

    Only samples holding the GIL are kept: the share of each thread and function is its share of
    the process's Python CPU, which for a GIL-bound service is what limits its throughput.
    """
    binary = py_spy_binary()
    if binary is None:
        print("(no py-spy: `.venv/bin/pip install py-spy` to profile)")
        return None
    command = [binary, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", str(rate)]
    # --gil: only samples that hold the GIL, i.e. where the Python CPU of the process goes.
    command += ["--nonblocking", "--threads", "--gil", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_profile(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop ``py-spy record`` early the way it expects (SIGINT), so it writes what it has."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def profile_summary(path: Path, top: int = 18) -> str:
    """Where the time goes, from py-spy's collapsed stacks: per thread, then the heaviest functions.

    "own" is the share of all samples with the function on top of the stack, "total" with it
    anywhere on the stack (both in % of the samples of all threads).
    """
    if not path.exists():
        return "(no profile written)"
    threads: dict[str, int] = {}
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        thread = frames[0]
        samples += count
        threads[thread] = threads.get(thread, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for f in set(frames[1:]):
            total[f] = total.get(f, 0) + count
    if not samples:
        return "(profile empty)"
    lines = [f"samples holding the GIL: {samples:,}", "per thread:"]
    for name, n in sorted(threads.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n / samples * 100:5.1f}%  {name}")
    lines.append("heaviest FactoryOps functions (total = anywhere on the stack, own = on top):")
    ours = {name: n for name, n in total.items() if "factoryops/" in name}
    for name, n in sorted(ours.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  total {n / samples * 100:5.1f}%  own {own.get(name, 0) / samples * 100:5.1f}%  {name[:110]}")
    lines.append("most own time:")
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  own {n / samples * 100:5.1f}%  {name[:110]}")
    return "\n".join(lines)


class RawMqtt:
    """A minimal MQTT 5 publisher: pipelined QoS 1 PUBLISHes, PUBACKs counted with their reason codes."""

    def __init__(self, port: int, client_id: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # CONNECT: protocol MQTT 5, clean start, keep-alive off, no properties.
        body = encode_str("MQTT") + bytes((5, 0x02)) + (0).to_bytes(2, "big") + b"\x00" + encode_str(client_id)
        self.sock.sendall(packet(0x10, body))
        self.frames = FrameBuffer(1 << 24)
        frame = None
        while frame is None:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the broker closed the connection before CONNACK")
            self.frames.feed(data)
            frame = self.frames.next()
        if frame[0] >> 4 != 2 or frame[1][1] != 0:
            raise ConnectionError(f"the broker refused {client_id}: {frame!r}")
        self.inflight: dict[int, int] = {}  # packet id -> tag
        self._next_id = 0
        self._pending: list[bytes] = []

    def publish(self, topic: bytes, payload: bytes, tag: int) -> None:
        """Queue a QoS 1 PUBLISH (``topic`` already length-prefixed); :meth:`flush` sends it."""
        pid = self._next_id
        while True:
            pid = pid % 65535 + 1
            if pid not in self.inflight:
                break
        self._next_id = pid
        self.inflight[pid] = tag
        self._pending.append(packet(0x32, topic + pid.to_bytes(2, "big") + b"\x00" + payload))

    def flush(self) -> None:
        if self._pending:
            self.sock.sendall(b"".join(self._pending))
            self._pending.clear()

    def read(self) -> list[tuple[int, int]]:
        """What arrived: (tag, reason code) of each PUBACK."""
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("the broker closed the connection")
        self.frames.feed(data)
        acks = []
        while (frame := self.frames.next()) is not None:
            if frame[0] >> 4 == 4:  # PUBACK: packet id, then a reason code unless it is success
                body = frame[1]
                pid = int.from_bytes(body[:2], "big")
                reason = body[2] if len(body) > 2 else 0
                tag = self.inflight.pop(pid, None)
                if tag is not None:
                    acks.append((tag, reason))
        return acks

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT, normal
        self.sock.close()


def topic_bytes(factory_id: str, device_id: str) -> bytes:
    return encode_str(f"factories/{factory_id}/devices/{device_id}/telemetry")


class JobCtx:
    """What a job handler needs of its context, for running one in a benchmark: prints progress with time."""

    def __init__(self, factory_id: str, payload: dict[str, Any]) -> None:
        self.factory_id = factory_id
        self.payload = payload
        self.began = time.monotonic()

    def progress(self, percent: int, message: str = "") -> None:
        print(f"  {time.monotonic() - self.began:6.1f} s {percent:3d}% {message}", flush=True)

    def check(self) -> None:
        return None
