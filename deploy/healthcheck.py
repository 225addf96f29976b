#!/usr/bin/env python3
"""Container health checks of the FactoryOps services (installed as ``factoryops-healthcheck``).

    factoryops-healthcheck api        GET /healthz of the API in this container answers 200
    factoryops-healthcheck telemetry  `factoryops telemetry` runs and holds a TCP connection to the broker
    factoryops-healthcheck worker     `factoryops worker` runs and holds a TCP connection to the database

Exit 0 when healthy, 1 otherwise, with one line saying why (``docker inspect`` shows it). Only the
standard library: Docker runs this every 30 s in every container, so it must cost milliseconds,
not the second it takes to import the platform. The telemetry process keeps one MQTT connection
open while it works and the worker checks its database connection every few seconds (pooled), so
an established connection to the right host and port is what "working" looks like from outside.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

# The settings' own defaults (factoryops.core.settings); tests/test_deploy_compose.py keeps them equal.
DEFAULT_HTTP_PORT = 8000
DEFAULT_MQTT_HOST = "127.0.0.1"
DEFAULT_MQTT_PORT = 18830
DEFAULT_MYSQL_PORT = 3306

INIT_PROCESSES = {"docker-init", "tini"}
TCP_ESTABLISHED = "01"
PROC = Path("/proc")


def running(subcommand: str, proc: Path = PROC) -> bool:
    """A live process of this container runs ``factoryops <subcommand>``."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):  # the process ended while we looked
            continue
        if state in ("Z", "X"):
            continue
        words = [w.decode(errors="replace") for w in argv if w]
        if words and words[0].rsplit("/", 1)[-1] in INIT_PROCESSES:  # `init: true`: its argv names our command
            continue
        for i, word in enumerate(words[:-1]):
            if (word == "factoryops" or word.endswith("/factoryops")) and words[i + 1] == subcommand:
                return True
    return False


def _proc_net_address(field: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``0100007F:0050`` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host order."""
    hex_ip, hex_port = field.split(":")
    raw = bytes.fromhex(hex_ip)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)) if sys.byteorder == "little" else raw
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped, int(hex_port, 16)
    return address, int(hex_port, 16)


def established_peers(proc: Path = PROC) -> Iterator[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """Remote (address, port) of every established TCP connection in this network namespace."""
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == TCP_ESTABLISHED:
                yield _proc_net_address(fields[2])


def connected_to(host: str, port: int, proc: Path = PROC) -> bool:
    """An established TCP connection to ``host:port`` exists (host resolved like the process does)."""
    try:
        addresses = {
            ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        }
    except (OSError, ValueError):
        return False
    return any(address in addresses and peer_port == port for address, peer_port in established_peers(proc))


def check_api(env: Mapping[str, str]) -> str | None:
    port = int(env.get("FACTORYOPS_HTTP__PORT") or DEFAULT_HTTP_PORT)
    https = bool(env.get("FACTORYOPS_HTTP__TLS_CERT_FILE"))
    context = None
    if https:  # our own certificate names the plant's host, not 127.0.0.1: only liveness is checked here
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    url = f"{'https' if https else 'http'}://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return f"{url} did not answer: {exc}"
    return None if status == 200 else f"{url} answered HTTP {status}"


def check_telemetry(env: Mapping[str, str], proc: Path = PROC) -> str | None:
    if not running("telemetry", proc):
        return "no `factoryops telemetry` process is running"
    host = env.get("FACTORYOPS_MQTT__HOST") or DEFAULT_MQTT_HOST
    port = int(env.get("FACTORYOPS_MQTT__PORT") or DEFAULT_MQTT_PORT)
    if not connected_to(host, port, proc):
        return f"the telemetry service is not connected to the MQTT broker {host}:{port} (see its log)"
    return None


def check_worker(env: Mapping[str, str], proc: Path = PROC) -> str | None:
    if not running("worker", proc):
        return "no `factoryops worker` process is running"
    url = urlsplit(env.get("FACTORYOPS_DATABASE__URL") or "")
    if url.scheme.startswith("mysql") and url.hostname:
        port = url.port or DEFAULT_MYSQL_PORT
        if not connected_to(url.hostname, port, proc):
            return f"the worker is not connected to the database {url.hostname}:{port} (see its log)"
    return None


CHECKS = {"api": check_api, "telemetry": check_telemetry, "worker": check_worker}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: factoryops-healthcheck {{{'|'.join(CHECKS)}}}", file=sys.stderr)
        return 2
    problem = CHECKS[argv[0]](os.environ)
    print(problem or "healthy")
    return 1 if problem else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
