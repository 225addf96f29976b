"""A throwaway S3 endpoint for tests and benchmarks: ``moto_server`` on a free port of 127.0.0.1.

moto keeps everything in memory, so a restart starts empty. It speaks real S3 over HTTP, so the S3
adapter is tested through boto3 and the network exactly as it talks to MinIO in production.
:meth:`MotoServer.stop` and :meth:`MotoServer.start` take the endpoint away and bring it back on
the same address, for the "object store unreachable" fault tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

INSTALL_HINT = "moto_server is not installed: run `.venv/bin/pip install 'moto[server]'`"
# moto accepts any credentials; these only have to be present and stable.
ACCESS_KEY = "factoryops-test"
SECRET_KEY = "factoryops-test-secret"
REGION = "us-east-1"


def moto_binary() -> str:
    """The moto_server to run (next to this Python first); raises RuntimeError with the install hint."""
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return found


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """One moto_server process on a fixed address; it can be stopped and started again there."""

    def __init__(self, folder: Path, port: int | None = None, timeout: float = 30.0) -> None:
        self.binary = moto_binary()
        self.folder = folder
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "moto_server.log"
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (empty: moto keeps nothing across restarts) and wait until it answers."""
        if self.running:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                [self.binary, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self._wait_ready()

    def stop(self) -> None:
        """Stop the server and wait until its port is closed."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The endpoint is down inside the block and up again (empty) after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise RuntimeError(f"moto_server exited with code {code}; its log:\n{self._log_tail()}")
            try:
                # Any HTTP answer means the server is listening; "/" lists buckets.
                httpx.get(self.url + "/", timeout=0.5)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"moto_server did not answer at {self.url} within {self.timeout}s; its log:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else "(no log)"


@contextmanager
def moto_server(folder: Path, port: int | None = None, timeout: float = 30.0) -> Iterator[MotoServer]:
    """Run moto_server with its log under ``folder``; stop it (and wait) on exit."""
    server = MotoServer(folder, port=port, timeout=timeout)
    server.start()
    try:
        yield server
    finally:
        server.stop()
