"""Fixtures of the port contract suites: every adapter of a port, on the real service it talks to.

InfluxDB is the Debian package's ``influxd``, started once per session on free ports with all its
files in a temporary folder (``tests/influx.py``). Each test gets a database of its own, so tests
can change the global retention without disturbing each other.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import httpx
import pytest

from factoryops.ports.timeseries.base import DEFAULT_RETENTION, TimeseriesStore
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore
from influx import InfluxServer, influxd_binary, influxdb

ADAPTERS = ["embedded", "influxdb"]


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    try:
        influxd_binary()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    with influxdb(tmp_path_factory.mktemp("influxdb")) as server:
        yield server


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TimeseriesStore:
    if kind == "embedded":
        return EmbeddedTimeseriesStore(tmp_path_factory.mktemp("timeseries"), retention=DEFAULT_RETENTION)
    server: InfluxServer = request.getfixturevalue("influx_server")
    return InfluxTimeseriesStore(
        server.url, database=f"contract_{secrets.token_hex(6)}", retention=DEFAULT_RETENTION, timeout=60
    )


def drop_store(store: TimeseriesStore) -> None:
    if isinstance(store, InfluxTimeseriesStore):
        httpx.post(f"{store.url}/query", data={"q": f'DROP DATABASE "{store.database}"'}, timeout=30)
    store.close()


@pytest.fixture(params=ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimeseriesStore]:
    """A fresh, empty store of each adapter, with the default retention."""
    built = make_store(request.param, request, tmp_path_factory)
    try:
        yield built
    finally:
        drop_store(built)


@pytest.fixture()
def influx_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InfluxTimeseriesStore]:
    """A fresh InfluxDB-backed store alone, for the adapter's own checks."""
    built = make_store("influxdb", request, tmp_path_factory)
    assert isinstance(built, InfluxTimeseriesStore)
    try:
        yield built
    finally:
        drop_store(built)


@pytest.fixture()
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The MQTT broker's contract registers devices through the API and authenticates them from the
# registry, so it runs on both metadata databases like the rest of the suite.
NEEDS_DATABASE = ("test_mqtt_broker_contract.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The store contract suites talk to the stores only, never to the metadata database."""
    for item in items:
        path = str(item.fspath)
        if "/contract/" in path and not path.endswith(NEEDS_DATABASE):
            item.add_marker(pytest.mark.nodb)
