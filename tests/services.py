"""Real services for tests: our own Mosquitto instance on a free port, and process helpers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


@contextmanager
def mosquitto(
    folder: Path, port: int, persistent: bool = False, extra: str = "", anonymous: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """Our own Mosquitto on ``port``. ``persistent``: sessions and queued messages survive a restart."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise RuntimeError("mosquitto is not installed (apt-get install -y mosquitto)")
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "user root",
        f"log_dest file {folder / 'mosquitto.log'}",
    ]
    if persistent:
        # "No data loss": keep sessions on disk and never drop queued QoS 1 messages of a slow subscriber.
        lines += [
            "persistence true",
            f"persistence_location {folder}/",
            "autosave_interval 1",
            "max_queued_messages 0",
            "max_inflight_messages 0",
        ]
    else:
        lines.append("persistence false")
    conf.write_text("\n".join(lines) + "\n" + extra)
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def factoryops(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORYOPS_")}
    full_env.update(env)
    full_env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "factoryops", *args],
        env=full_env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 30.0) -> str:
    """Read the process's output until ``needle`` appears; fail with the output if it does not."""
    import selectors

    assert proc.stdout is not None
    seen: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sel.select(timeout=0.2):
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} did not appear; output so far:\n{''.join(seen)}")


def stop(proc: subprocess.Popen[str], timeout: float = 20.0) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out
