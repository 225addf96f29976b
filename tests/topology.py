"""The production topology on this machine's real services, as separate processes.

The same shape as ``deploy/docker-compose.yml``, without Docker: our own MariaDB server (its own
data folder and port, so it can be stopped and restarted), our own Mosquitto (persistent
sessions, the stand-in for EMQX), a throwaway InfluxDB, an S3 endpoint (moto_server, the
stand-in for MinIO), and FactoryOps as the compose file runs it: one ``api``, two ``telemetry``
processes on one shared subscription, two ``worker`` processes. Every service can be stopped and
started again on the same address, for the fault tests (tests/test_production_faults.py) and the
scale-out benchmark (bench/ingest.py ``--telemetry-processes``).

Run it by hand: ``.venv/bin/python tests/topology.py`` starts everything, prints the addresses and
the root's password, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy

sys.path.insert(0, str(Path(__file__).resolve().parent))

from influx import InfluxServer, _free_ports, influxdb
from s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from services import factoryops, mosquitto, read_until, stop

ROOT_EMAIL = "root@topology.example"
ROOT_PASSWORD = "Platform-Key-2026-Prod"
PASSWORD = "Strong-Pass-2026"
BUCKET = "factoryops"


class MariaDB:
    """A MariaDB server of our own: ``mariadb-install-db`` into a folder, ``mariadbd`` on a free port.

    Stopping it is a real outage for every client (connections refused); starting it again keeps
    the data (same folder, same port).
    """

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.data = folder / "data"
        self.url = f"mysql+pymysql://root@127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def install(self) -> None:
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if not install:
            raise RuntimeError("mariadb-install-db is missing: apt-get install -y mariadb-server")
        self.folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={self.data}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        binary = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.proc = subprocess.Popen(
            [
                binary,
                "--no-defaults",
                f"--datadir={self.data}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.folder / 'mysqld.sock'}",
                f"--pid-file={self.folder / 'mysqld.pid'}",
                "--user=root",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=128M",
                "--max-connections=500",
                f"--log-error={self.folder / 'error.log'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool).connect().close()
                return
            except sqlalchemy.exc.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.folder / "error.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"mariadbd did not start; its log:\n{log}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # a clean shutdown, as a restart by an operator or a package upgrade does
            proc.wait(timeout=60)

    def create_database(self, name: str) -> str:
        engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return f"{self.url}/{name}?charset=utf8mb4"


class _Restartable:
    """A context-manager service (Mosquitto, InfluxDB) that can be stopped and started on one address."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._cm: AbstractContextManager[Any] | None = None
        self.value: Any = None

    def start(self) -> None:
        self._cm = self._make()
        self.value = self._cm.__enter__()

    def stop(self) -> None:
        cm, self._cm = self._cm, None
        if cm is not None:
            cm.__exit__(None, None, None)

    @property
    def running(self) -> bool:
        return self._cm is not None


class Topology:
    """Everything of the production topology; :meth:`up` starts it, :meth:`down` stops it."""

    def __init__(self, folder: Path, telemetry: int = 2, workers: int = 2, extra_env: dict[str, str] | None = None):
        self.folder = folder
        self.n_telemetry = telemetry
        self.n_workers = workers
        self.extra_env = extra_env or {}
        mysql_port, self.mqtt_port, influx_http, influx_rpc, s3_port, self.api_port = _free_ports(6)
        self.metrics_ports = _free_ports(telemetry + workers)
        self.mariadb = MariaDB(folder / "mariadb", mysql_port)
        self.broker = _Restartable(lambda: mosquitto(folder / "mosquitto", self.mqtt_port, persistent=True))
        self.influx = _Restartable(lambda: influxdb(folder / "influxdb", ports=(influx_http, influx_rpc)))
        self.influx_url = f"http://127.0.0.1:{influx_http}"
        self.s3 = MotoServer(folder / "s3", port=s3_port)
        self.database_url = ""
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.api_url = f"http://127.0.0.1:{self.api_port}"

    # ------------------------------------------------------------------ configuration, as in .env
    def env(self, name: str) -> dict[str, str]:
        env = {
            "FACTORYOPS_ENV": "production",
            "FACTORYOPS_AUTH__JWT_SECRET": "topology-" + "s" * 40,
            "FACTORYOPS_AUTH__BCRYPT_ROUNDS": "4",
            "FACTORYOPS_AUTH__LOGIN_RATE_PER_MINUTE": "10000",
            "FACTORYOPS_ROOT_EMAIL": ROOT_EMAIL,
            "FACTORYOPS_ROOT_PASSWORD": ROOT_PASSWORD,
            "FACTORYOPS_DATA_DIR": str(self.folder / name / "data"),
            "FACTORYOPS_DATABASE__URL": self.database_url,
            "FACTORYOPS_MQTT__HOST": "127.0.0.1",
            "FACTORYOPS_MQTT__PORT": str(self.mqtt_port),
            "FACTORYOPS_TIMESERIES__BACKEND": "influxdb",
            "FACTORYOPS_TIMESERIES__INFLUX_URL": self.influx_url,
            "FACTORYOPS_TIMESERIES__INFLUX_DATABASE": "factoryops",
            "FACTORYOPS_OBJECTSTORE__BACKEND": "s3",
            "FACTORYOPS_OBJECTSTORE__S3_ENDPOINT": self.s3.url,
            "FACTORYOPS_OBJECTSTORE__S3_BUCKET": BUCKET,
            "FACTORYOPS_OBJECTSTORE__S3_ACCESS_KEY": ACCESS_KEY,
            "FACTORYOPS_OBJECTSTORE__S3_SECRET_KEY": SECRET_KEY,
            "FACTORYOPS_OBJECTSTORE__S3_REGION": REGION,
            "FACTORYOPS_HTTP__PORT": str(self.api_port),
            "FACTORYOPS_TELEMETRY_NAME": name,
            "FACTORYOPS_TELEMETRY_HEALTH_AFTER_SECONDS": "10",
            "FACTORYOPS_LOG_FORMAT": "json",
        }
        index = self._index(name)
        if index is not None:
            env["FACTORYOPS_METRICS_PORT"] = str(self.metrics_ports[index])
        return env | self.extra_env

    def _index(self, name: str) -> int | None:
        names = self.telemetry_names + self.worker_names
        return names.index(name) if name in names else None

    @property
    def telemetry_names(self) -> list[str]:
        return [f"telemetry-{i + 1}" for i in range(self.n_telemetry)]

    @property
    def worker_names(self) -> list[str]:
        return [f"worker-{i + 1}" for i in range(self.n_workers)]

    def metrics_url(self, name: str) -> str:
        index = self._index(name)
        assert index is not None, name
        return f"http://127.0.0.1:{self.metrics_ports[index]}/metrics"

    # ------------------------------------------------------------------ the services
    def up(self) -> None:
        self.mariadb.install()
        self.mariadb.start()
        self.database_url = self.mariadb.create_database("factoryops")
        self.broker.start()
        self.influx.start()
        self.s3.start()
        self.create_bucket()
        migrate = factoryops(["migrate"], self.env("migrate"), self.folder)
        out, _ = migrate.communicate(timeout=180)
        if migrate.returncode != 0:
            raise RuntimeError(f"factoryops migrate failed ({migrate.returncode}):\n{out}")
        self.start("api")
        for name in self.telemetry_names:
            self.start(name)
        for name in self.worker_names:
            self.start(name)

    def create_bucket(self) -> None:
        """The operator's bucket on the S3 endpoint (moto keeps nothing: again after each start)."""
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.s3.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        ).create_bucket(Bucket=BUCKET)

    def start(self, name: str) -> subprocess.Popen[str]:
        kind = name.split("-")[0]
        (self.folder / name).mkdir(parents=True, exist_ok=True)
        proc = factoryops([kind], self.env(name), self.folder / name)
        self.processes[name] = proc
        if kind == "api":
            # Reading its output from now on also keeps the pipe drained (a full pipe blocks its logging).
            read_until(proc, "web portal on", timeout=60)
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the API exited ({proc.returncode}):\n{stop(proc)[1]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(self.api_url + "/healthz", timeout=5).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not become healthy:\n{stop(proc)[1]}")
                time.sleep(0.2)
        elif kind == "telemetry":
            read_until(proc, "confirmed by the broker", timeout=60)
        elif kind == "worker":
            read_until(proc, "takes:", timeout=60)
        return proc

    def stop(self, name: str, timeout: float = 30.0) -> tuple[int, str]:
        proc = self.processes.pop(name)
        return stop(proc, timeout=timeout)

    def kill(self, name: str) -> None:
        proc = self.processes.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def down(self) -> dict[str, tuple[int, str]]:
        outputs: dict[str, tuple[int, str]] = {}
        for name in list(self.processes):
            with contextlib.suppress(Exception):
                outputs[name] = self.stop(name)
        for service in (self.broker, self.influx):
            with contextlib.suppress(Exception):
                service.stop()
        with contextlib.suppress(Exception):
            self.s3.stop()
        with contextlib.suppress(Exception):
            self.mariadb.stop()
        return outputs

    @property
    def influx_server(self) -> InfluxServer:
        server: InfluxServer = self.influx.value
        return server


@contextlib.contextmanager
def topology(folder: Path, **kwargs: Any) -> Iterator[Topology]:
    topo = Topology(folder, **kwargs)
    try:
        topo.up()
        yield topo
    finally:
        topo.down()


def main() -> None:  # pragma: no cover - a developer's tool
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="factoryops-topology-"))
    with topology(folder) as topo:
        print(f"API and portal: {topo.api_url}  (root: {ROOT_EMAIL} / {ROOT_PASSWORD})")
        print(f"MQTT: 127.0.0.1:{topo.mqtt_port}   InfluxDB: {topo.influx_url}   S3: {topo.s3.url}")
        print(f"MariaDB: {topo.database_url}")
        for name in topo.telemetry_names + topo.worker_names:
            print(f"{name}: metrics {topo.metrics_url(name)}")
        print(f"files under {folder}; Ctrl-C stops everything")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)


if __name__ == "__main__":
    main()
