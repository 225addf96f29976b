"""Real services for tests: our own Mosquitto instance on a free port, a QoS 1 publisher that
knows what the broker acknowledged, and process helpers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt


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
        f"allow_anonymous {'true' if anonymous else 'false'}",
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


class AckedPublisher:
    """Publishes {"seq": n, ...} at QoS 1 to a factory's device telemetry topics from a persistent
    session (``clean_session=False``); knows which messages the broker acknowledged.

    ``defaults`` are fields every message carries unless :meth:`publish` is given them.
    """

    def __init__(self, port: int, factory_id: str, client_id: str, defaults: dict[str, float] | None = None) -> None:
        self.factory_id = factory_id
        self.defaults = defaults or {}
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 1)  # type: ignore[arg-type]
        self._acked: set[int] = set()
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.sent: list[tuple[str, int, mqtt.MQTTMessageInfo]] = []
        self.sent_at: dict[tuple[str, int], float] = {}
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self._acked.add(mid)

    def publish(self, device: str, seq: int, **fields: float) -> None:
        body = {"seq": seq, **self.defaults, **fields}
        topic = f"factories/{self.factory_id}/devices/{device}/telemetry"
        self.sent_at[(device, seq)] = time.time()
        self.sent.append((device, seq, self.client.publish(topic, json.dumps(body), qos=1)))
        if len(self.sent) > 60_000:
            raise AssertionError("an AckedPublisher must stay below 65,535 messages: paho's message ids would wrap")

    def stream(self, devices: Sequence[str], first: int, seconds: float, rate: float) -> int:
        """Publishes round-robin over ``devices`` at ``rate`` messages/s; returns the next seq."""
        seq = first
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.publish(devices[seq % len(devices)], seq)
            seq += 1
            time.sleep(1 / rate)
        return seq

    def acked(self) -> dict[str, set[int]]:
        """The seqs the broker acknowledged, per device."""
        with self._lock:
            mids = set(self._acked)
        out: dict[str, set[int]] = {}
        for device, seq, info in self.sent:
            if info.mid in mids:
                out.setdefault(device, set()).add(seq)
        return out

    def acked_count(self) -> int:
        return sum(map(len, self.acked().values()))

    def wait_acked(self, timeout: float) -> None:
        """Waits until every message sent so far is acknowledged, or ``timeout`` has passed."""
        deadline = time.monotonic() + timeout
        while self.acked_count() < len(self.sent) and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


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


class _Output:
    """Collects a process's output lines in a background thread (a select() on the pipe would miss
    lines already sitting in Python's buffer)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.cursor = 0
        self.changed = threading.Condition()
        self.done = False
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.done = True
            self.changed.notify_all()


_outputs: dict[int, _Output] = {}


def _output(proc: subprocess.Popen[str]) -> _Output:
    if proc.pid not in _outputs:
        _outputs[proc.pid] = _Output(proc)
    return _outputs[proc.pid]


def read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 30.0) -> str:
    """Reads on from where the last call stopped until a line contains ``needle``; returns the output so far."""
    out = _output(proc)
    deadline = time.monotonic() + timeout
    with out.changed:
        while True:
            while out.cursor < len(out.lines):
                line = out.lines[out.cursor]
                out.cursor += 1
                if needle in line:
                    return "".join(out.lines[: out.cursor])
            remaining = deadline - time.monotonic()
            if out.done or remaining <= 0:
                raise AssertionError(f"{needle!r} did not appear; output so far:\n{''.join(out.lines)}")
            out.changed.wait(remaining)


def stop(proc: subprocess.Popen[str], timeout: float = 20.0) -> tuple[int, str]:
    """SIGTERM, wait, and return the exit code with the whole output."""
    proc.send_signal(signal.SIGTERM)
    if proc.pid in _outputs:
        proc.wait(timeout=timeout)
        out = _outputs.pop(proc.pid)
        out._thread.join(5)
        return proc.returncode, "".join(out.lines)
    text, _ = proc.communicate(timeout=timeout)
    return proc.returncode, text
