"""A throwaway InfluxDB 1.x for tests and benchmarks: ``influxd`` from the Debian package, on free ports.

Everything it writes (meta, data, WAL, its log) stays in the folder it is given. It never binds
the default ports 8086/8088, so a developer's own InfluxDB or a parallel run is left alone.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

INFLUXD = "/usr/bin/influxd"
INSTALL_HINT = (
    "InfluxDB is not installed: run `apt-get install -y influxdb` (Debian's package provides /usr/bin/influxd)"
)


@dataclass(frozen=True)
class InfluxServer:
    url: str
    folder: Path
    log: Path


def influxd_binary() -> str:
    """The influxd to run; raises RuntimeError with the install command when there is none."""
    found = shutil.which("influxd") or INFLUXD
    if not Path(found).exists():
        raise RuntimeError(INSTALL_HINT)
    return found


def _free_ports(count: int) -> list[int]:
    # Keep every socket open until all are chosen, so the ports differ from each other.
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def _config(folder: Path, http_port: int, rpc_port: int) -> str:
    return f"""\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{folder / "meta"}"
  logging-enabled = false

[data]
  dir = "{folder / "data"}"
  wal-dir = "{folder / "wal"}"
  query-log-enabled = false
  index-version = "inmem"

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  log-enabled = false
  run-interval = "1s"
"""


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"influxd exited with code {proc.returncode}; its log:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/ping", timeout=0.5).status_code == 204:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"influxd did not answer /ping at {url} within {timeout}s; its log:\n{log.read_text()[-4000:]}")


@contextmanager
def influxdb(folder: Path, timeout: float = 30.0, ports: tuple[int, int] | None = None) -> Iterator[InfluxServer]:
    """Run influxd with all its files under ``folder``; stop it (and wait) on exit.

    ``ports`` (HTTP, RPC) lets a test restart the same server on the same address.
    """
    binary = influxd_binary()
    folder.mkdir(parents=True, exist_ok=True)
    http_port, rpc_port = ports or _free_ports(2)
    conf = folder / "influxdb.conf"
    conf.write_text(_config(folder, http_port, rpc_port))
    log = folder / "influxd.log"
    url = f"http://127.0.0.1:{http_port}"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "run", "-config", str(conf)], stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_ready(url, proc, log, timeout)
            yield InfluxServer(url=url, folder=folder, log=log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
