"""The MQTT broker port's contract: what the platform relies on from its broker, run against both adapters.

- ``embedded``: :class:`~factoryops.ports.mqtt.broker.MqttBroker` with the registry's ``DeviceAuth``, as
  ``factoryops up`` runs it (docs/mqtt-broker.md).
- ``mosquitto``: a real Mosquitto 2.0 process (the stand-in for EMQX) configured as in production
  (docs/telemetry.md, "Broker-side isolation"): ``allow_anonymous false``, the password file and ACL
  written by :class:`~factoryops.devices.broker_config.MosquittoSync` from the device registry, reloaded
  with SIGHUP; persistence and unlimited queues as the production topology runs it (tests/topology.py).

Devices are registered through the API (``client``, ``make_factory``), so unlike the other contract
suites these tests use the metadata database. Where the adapters answer differently, a test asserts
the common contract and says in a comment what each adapter does.

The clients are paho-mqtt 2 of either protocol (support.mqtt_connect is MQTT 5 only, and a resumed
session needs its message callback in place before the CONNACK).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from factoryops.devices.broker_config import MosquittoSync
from factoryops.devices.mqtt_auth import DeviceAuth
from factoryops.ports.mqtt.broker import MqttBroker
from services import mosquitto
from support import FactoryWorld, auth, free_port, register_device

pytestmark = pytest.mark.timeout(120)

ADAPTERS = ["embedded", "mosquitto"]
V5, V311 = "mqtt5", "mqtt311"
PROTOCOLS = pytest.mark.parametrize("protocol", [V5, V311])
SERVICE_USER, SERVICE_PASSWORD = "factoryops-service", "service-secret-123"
TELEMETRY = "factories/+/devices/+/telemetry"
SHARED = f"$share/factoryops/{TELEMETRY}"
NOT_AUTHORIZED = 0x87  # MQTT 5 PUBACK / SUBACK reason 135

# What a refused CONNECT is answered with. The contract is "refused"; the codes differ:
# the embedded broker says "bad user name or password" (MQTT 5 0x86, 3.1.1 return code 4) for every
# refusal, Mosquitto 2.0 says "not authorized" (MQTT 5 0x87, 3.1.1 return code 5) for a wrong
# password, an unknown user and a client without credentials alike.
REFUSED = {V5: {0x86, 0x87}, V311: {4, 5}}
REFUSAL = {("embedded", V5): 0x86, ("embedded", V311): 4, ("mosquitto", V5): 0x87, ("mosquitto", V311): 5}
# paho turns an MQTT 3.1.1 CONNACK return code into an MQTT 5 reason code; this is the way back.
V311_RETURN_CODE = {0: 0, 132: 1, 133: 2, 136: 3, 134: 4, 135: 5}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def body(seq: int) -> bytes:
    return json.dumps({"seq": seq, "power_kw": 1.5}).encode()


class Inbox:
    """What a subscriber received: (topic, seq) in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[str, int]] = []

    def on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, int(json.loads(message.payload)["seq"])))

    def received(self) -> list[tuple[str, int]]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[str, int]]:
        assert wait_until(lambda: len(self.received()) >= count, timeout), f"{len(self.received())} of {count}"
        return self.received()


@dataclass
class Conn:
    """A paho client (MQTT 5 or 3.1.1) and what the broker answered to its CONNECT."""

    client: mqtt.Client
    protocol: str
    reason: int  # MQTT 5 reason code, or the MQTT 3.1.1 CONNACK return code
    session_present: bool
    acks: dict[int, int] = field(default_factory=dict)  # mid -> PUBACK reason (always 0 on 3.1.1)
    subacks: dict[int, list[int]] = field(default_factory=dict)  # mid -> SUBACK codes
    lock: threading.Lock = field(default_factory=threading.Lock)
    gone: threading.Event = field(default_factory=threading.Event)

    def subscribe(self, topic_filter: str, qos: int = 1) -> int:
        """Subscribes and returns the SUBACK code (the granted QoS, or >= 0x80 when refused)."""
        _, mid = self.client.subscribe(topic_filter, qos=qos)
        assert mid is not None
        assert wait_until(lambda: mid in self.subacks), f"no SUBACK for {topic_filter}"
        return self.subacks[mid][0]

    def publish(self, topic: str, seqs: range | list[int], timeout: float = 60.0) -> list[int]:
        """Publishes {"seq": n} at QoS 1 for every n; returns the PUBACK reasons in order."""
        mids = [self.client.publish(topic, body(seq), qos=1).mid for seq in seqs]
        assert wait_until(lambda: all(m in self.acks for m in mids), timeout), "publishes not acknowledged"
        return [self.acks[m] for m in mids]

    def close(self) -> None:
        if self.client.is_connected():
            self.client.disconnect()
            self.gone.wait(5)
        self.client.loop_stop()


@dataclass
class Broker:
    """One adapter of the broker port, running, and the clients a test opened on it."""

    kind: str
    port: int
    sync: MosquittoSync | None = None
    log_file: Path | None = None
    embedded: MqttBroker | None = None
    opened: list[Conn] = field(default_factory=list)

    def apply_registry(self) -> None:
        """Makes the registry's current state the broker's. The embedded broker reads the registry at
        every CONNECT; Mosquitto needs the files rewritten and a reload, as the worker does every 5 s."""
        if self.sync is None:
            return
        before = self._log().count("Reloading config.")
        if self.sync.sync():
            # Mosquitto logs this line and reloads in the same turn of its single-threaded loop,
            # so a CONNECT sent after the line is there is checked against the new files.
            assert wait_until(lambda: self._log().count("Reloading config.") > before), "Mosquitto did not reload"

    def _log(self) -> str:
        assert self.log_file is not None
        return self.log_file.read_text() if self.log_file.exists() else ""

    def wait_session_offline(self, client_id: str) -> None:
        """Waits until the broker has seen ``client_id`` leave (its session stays)."""
        if self.embedded is not None:
            embedded = self.embedded
            assert wait_until(lambda: embedded.stats()["sessions"].get(client_id, {}).get("connected") is False)
        else:
            assert wait_until(lambda: f"Client {client_id} disconnected" in self._log()), "still connected"

    def attempt(self, creds: dict[str, Any], topic: str, protocol: str = V5) -> int | None:
        """One QoS 1 publish from a connection of its own: the PUBACK reason, or None when the broker
        closed the connection without one."""
        conn = self.connect(creds["username"], creds["password"], f"{creds['client_id']}-{len(self.opened)}", protocol)
        assert conn.reason == 0
        mid = conn.client.publish(topic, body(999), qos=1).mid
        assert wait_until(lambda: mid in conn.acks or conn.gone.is_set()), "neither PUBACK nor disconnect"
        time.sleep(0.05)  # a PUBACK read just before the close
        conn.close()
        return conn.acks.get(mid)

    def connect(
        self,
        username: str | None,
        password: str | None,
        client_id: str,
        protocol: str = V5,
        clean: bool = True,
        session_expiry: int = 0,
        inbox: Inbox | None = None,
    ) -> Conn:
        """A client of either protocol; ``inbox`` receives from the moment the session is resumed."""
        v5 = protocol == V5
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else clean,
            reconnect_on_failure=False,
        )
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        if username is not None:
            client.username_pw_set(username, password)
        answered = threading.Event()
        conn = Conn(client, protocol, -1, False)
        self.opened.append(conn)

        def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
            conn.reason = int(reason.value) if v5 else V311_RETURN_CODE[int(reason.value)]
            conn.session_present = bool(flags.session_present)
            answered.set()

        def on_publish(c: Any, u: Any, mid: int, reason: Any, props: Any) -> None:
            with conn.lock:
                conn.acks[mid] = int(reason.value)

        def on_subscribe(c: Any, u: Any, mid: int, reasons: list[Any], props: Any) -> None:
            with conn.lock:
                conn.subacks[mid] = [int(r.value) for r in reasons]

        def on_disconnect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
            conn.gone.set()

        client.on_connect, client.on_publish, client.on_subscribe = on_connect, on_publish, on_subscribe
        client.on_disconnect = on_disconnect
        if inbox is not None:
            client.on_message = inbox.on_message
        if v5:
            props = Properties(PacketTypes.CONNECT)
            if session_expiry:
                props.SessionExpiryInterval = session_expiry
            client.connect("127.0.0.1", self.port, clean_start=clean, properties=props)
        else:
            client.connect("127.0.0.1", self.port)
        client.loop_start()
        assert answered.wait(10), "no CONNACK"
        if conn.reason != 0:
            client.loop_stop()
        return conn

    def close_clients(self) -> None:
        for conn in self.opened:
            conn.close()


@pytest.fixture(params=ADAPTERS)
def broker(request: pytest.FixtureRequest, client: TestClient, tmp_path: Path) -> Iterator[Broker]:
    """A running broker of each adapter, admitting the devices of the test database's registry."""
    platform = client.app.state.platform  # type: ignore[attr-defined]
    if request.param == "embedded":
        embedded = MqttBroker(
            "127.0.0.1", 0, auth=DeviceAuth(platform.db, SERVICE_USER, SERVICE_PASSWORD), recheck_seconds=0.5
        )
        embedded.start_in_thread()
        running = Broker("embedded", embedded.port, embedded=embedded)
        try:
            yield running
        finally:
            running.close_clients()
            embedded.stop_in_thread()
        return
    folder = tmp_path / "mosquitto"
    files, pid_file = folder / "auth", folder / "mosquitto.pid"
    sync = MosquittoSync(platform.db, files, SERVICE_USER, SERVICE_PASSWORD)
    sync.sync()  # the files must exist before Mosquitto starts; there is no process to signal yet
    sync.pid_file = pid_file
    extra = f"password_file {files / 'passwords'}\nacl_file {files / 'acl'}\npid_file {pid_file}\n"
    port = free_port()
    with mosquitto(folder, port, persistent=True, extra=extra, anonymous=False):
        running = Broker("mosquitto", port, sync=sync, log_file=folder / "mosquitto.log")
        try:
            yield running
        finally:
            running.close_clients()


def devices(client: TestClient, world: FactoryWorld, *device_ids: str) -> list[dict[str, Any]]:
    return [register_device(client, world, device_id) for device_id in device_ids]


# -- 1. credentials ----------------------------------------------------------------------------


@PROTOCOLS
def test_a_registered_device_connects_and_wrong_credentials_are_refused(
    broker: Broker, client: TestClient, make_factory: Callable[..., FactoryWorld], protocol: str
) -> None:
    a = make_factory(with_admins=False)
    b = make_factory(with_admins=False)
    creds, other = register_device(client, a, "press-1"), register_device(client, b, "press-1")
    broker.apply_registry()

    device = broker.connect(creds["username"], creds["password"], creds["client_id"], protocol)
    assert device.reason == 0 and device.client.is_connected()
    service = broker.connect(SERVICE_USER, SERVICE_PASSWORD, "svc", protocol)
    assert service.reason == 0

    attempts = {
        "wrong password": (creds["username"], "wrong-password"),
        "another device's password": (creds["username"], other["password"]),
        "empty password": (creds["username"], ""),
        "unknown device": (f"{a.id}/press-404", creds["password"]),
        "wrong service password": (SERVICE_USER, "not-the-service-secret"),
        "no credentials": (None, None),
    }
    answers = {}
    for i, (what, (username, password)) in enumerate(attempts.items()):
        refused = broker.connect(username, password, f"intruder-{i}", protocol)
        answers[what] = refused.reason
        assert not refused.client.is_connected()
    assert all(code in REFUSED[protocol] for code in answers.values()), answers
    assert answers == dict.fromkeys(attempts, REFUSAL[(broker.kind, protocol)])


# -- 2. publishing -----------------------------------------------------------------------------


@PROTOCOLS
def test_a_device_reaches_the_service_on_its_own_topic_only(
    broker: Broker, client: TestClient, make_factory: Callable[..., FactoryWorld], protocol: str
) -> None:
    a = make_factory(with_admins=False)
    b = make_factory(with_admins=False)
    mine, neighbour = devices(client, a, "press-1", "press-2")
    (namesake,) = devices(client, b, "press-1")  # same device id, another factory
    broker.apply_registry()
    inbox = Inbox()
    service = broker.connect(SERVICE_USER, SERVICE_PASSWORD, "svc", V5, inbox=inbox)
    assert service.subscribe(TELEMETRY) == 1

    device = broker.connect(mine["username"], mine["password"], mine["client_id"], protocol)
    assert device.reason == 0
    assert device.publish(mine["topic"], [0]) == [0]
    forbidden = [neighbour["topic"], namesake["topic"], f"factories/{a.id}/devices/press-1/commands"]
    denied = [broker.attempt(mine, topic, protocol) for topic in forbidden]
    # The service account reads telemetry; it cannot write a device's telemetry.
    denied.append(broker.attempt({**mine, "username": SERVICE_USER, "password": SERVICE_PASSWORD}, mine["topic"]))
    if protocol == V5:
        assert denied == [NOT_AUTHORIZED] * 4  # PUBACK 135 (Not authorized) on both adapters
    else:
        # MQTT 3.1.1 cannot say "not authorized"; the server either acknowledges and drops the message
        # or closes the connection [MQTT-3.3.5-2]. Both adapters acknowledge (Mosquitto then closes, below).
        assert denied[:3] == [0] * 3, denied
    assert denied[3] == NOT_AUTHORIZED  # the service account is always on MQTT 5 here
    # Adapters differ on the connection: the embedded broker keeps it; Mosquitto 2.0.11 with
    # max_queued_messages 0 (the production topology's setting, tests/services.py) closes it after any
    # denied PUBLISH ("Bad socket read/write ...: Unknown error"), so each attempt has a connection of its own.
    assert device.publish(mine["topic"], [1]) == [0]
    # The last publish is the marker: a message let through would have been routed before it.
    assert inbox.wait_for(2) == [(mine["topic"], 0), (mine["topic"], 1)]


# -- 3. subscribing ----------------------------------------------------------------------------


@PROTOCOLS
def test_a_device_cannot_read_other_devices_telemetry(
    broker: Broker, client: TestClient, make_factory: Callable[..., FactoryWorld], protocol: str
) -> None:
    a = make_factory(with_admins=False)
    b = make_factory(with_admins=False)
    eve, victim = devices(client, a, "press-1", "press-2")
    (elsewhere,) = devices(client, b, "press-9")
    broker.apply_registry()
    service_inbox, eve_inbox = Inbox(), Inbox()
    service = broker.connect(SERVICE_USER, SERVICE_PASSWORD, "svc", V5, inbox=service_inbox)
    assert service.subscribe(TELEMETRY) == 1
    spy = broker.connect(eve["username"], eve["password"], eve["client_id"], protocol, inbox=eve_inbox)
    assert spy.reason == 0
    filters = [TELEMETRY, victim["topic"], elsewhere["topic"], f"factories/{a.id}/#", "#", SHARED, eve["topic"]]
    granted = {f: spy.subscribe(f) for f in filters}
    # The adapters differ in how: the embedded broker refuses each of them in the SUBACK (0x87 on
    # MQTT 5, 0x80 on 3.1.1), even the device's own topic (it may write there, not read); Mosquitto 2.0
    # grants them all (QoS 1) and checks its ACL's "read" on every message instead, so nothing arrives.
    # The contract is the union: refused, or granted and never fed. Both keep the connection.
    assert set(granted.values()) <= {NOT_AUTHORIZED if protocol == V5 else 0x80, 1}, granted
    assert spy.client.is_connected()

    for creds in (victim, elsewhere, eve):
        sender = broker.connect(creds["username"], creds["password"], f"{creds['client_id']}-tx")
        assert sender.publish(creds["topic"], [7]) == [0]
    assert sorted(service_inbox.wait_for(3)) == sorted((c["topic"], 7) for c in (victim, elsewhere, eve))
    time.sleep(0.3)  # the service has them all; the same routing would have given eve hers by now
    assert eve_inbox.received() == []


# -- 4. shared subscription --------------------------------------------------------------------


def test_a_shared_subscription_delivers_every_message_once_across_its_members(
    broker: Broker, client: TestClient, make_factory: Callable[..., FactoryWorld]
) -> None:
    a = make_factory(with_admins=False)
    b = make_factory(with_admins=False)
    fleet = devices(client, a, "press-1", "press-2") + devices(client, b, "press-1", "oven-1")
    broker.apply_registry()
    per_device = 500
    inboxes = [Inbox(), Inbox()]
    for i, inbox in enumerate(inboxes):
        member = broker.connect(SERVICE_USER, SERVICE_PASSWORD, f"telemetry-{i + 1}", V5, inbox=inbox)
        assert member.subscribe(SHARED) == 1
    senders = [broker.connect(d["username"], d["password"], d["client_id"]) for d in fleet]
    started = time.monotonic()
    results: dict[str, list[int]] = {}

    def send(conn: Conn, topic: str) -> None:
        results[topic] = conn.publish(topic, range(per_device))

    threads = [threading.Thread(target=send, args=(s, d["topic"])) for s, d in zip(senders, fleet, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert {topic: set(reasons) for topic, reasons in results.items()} == {d["topic"]: {0} for d in fleet}
    total = per_device * len(fleet)
    assert wait_until(lambda: sum(len(i.received()) for i in inboxes) >= total, 60), "messages lost"
    time.sleep(0.5)  # a duplicate would come now
    received = [m for inbox in inboxes for m in inbox.received()]
    counts = Counter(received)
    assert len(received) == total and set(counts.values()) == {1}
    assert set(counts) == {(d["topic"], seq) for d in fleet for seq in range(per_device)}
    # Both adapters deal round robin, so each member takes a real share.
    shares = [len(i.received()) for i in inboxes]
    assert min(shares) >= total // 4, shares
    assert time.monotonic() - started < 60


# -- 5. persistent session ---------------------------------------------------------------------


@PROTOCOLS
@pytest.mark.parametrize("topic_filter", [TELEMETRY, SHARED], ids=["plain", "shared"])
def test_a_persistent_session_keeps_what_arrives_while_the_service_is_away(
    broker: Broker,
    client: TestClient,
    make_factory: Callable[..., FactoryWorld],
    protocol: str,
    topic_filter: str,
) -> None:
    a = make_factory(with_admins=False)
    fleet = devices(client, a, "press-1", "press-2", "press-3")
    broker.apply_registry()
    # MQTT 5: Clean Start 0 and a Session Expiry Interval; MQTT 3.1.1: clean session 0.
    first = broker.connect(SERVICE_USER, SERVICE_PASSWORD, "telemetry-1", protocol, clean=False, session_expiry=600)
    assert first.reason == 0 and first.session_present is False
    assert first.subscribe(topic_filter) == 1
    first.close()
    broker.wait_session_offline("telemetry-1")

    # Fewer than either queue limit: the embedded broker queues 100,000 per session by default; the
    # production topology's Mosquitto runs with max_queued_messages 0 (no limit).
    per_device = 100
    senders = [broker.connect(d["username"], d["password"], d["client_id"]) for d in fleet]
    mids: list[tuple[Conn, int]] = []
    for seq in range(per_device):  # interleaved over the devices
        for sender, d in zip(senders, fleet, strict=True):
            mids.append((sender, sender.client.publish(d["topic"], body(seq), qos=1).mid))
    assert wait_until(lambda: all(m in s.acks for s, m in mids), 30), "publishes not acknowledged"
    # 0, not 16 (No matching subscribers): the absent session's subscription counts, on both.
    assert {s.acks[m] for s, m in mids} == {0}

    inbox = Inbox()
    again = broker.connect(
        SERVICE_USER, SERVICE_PASSWORD, "telemetry-1", protocol, clean=False, session_expiry=600, inbox=inbox
    )
    assert again.reason == 0 and again.session_present is True
    received = inbox.wait_for(per_device * len(fleet))
    for d in fleet:
        assert [seq for topic, seq in received if topic == d["topic"]] == list(range(per_device)), d["topic"]
    time.sleep(0.3)
    assert len(inbox.received()) == per_device * len(fleet)  # and nothing twice


# -- 6. disabling a device ---------------------------------------------------------------------


@PROTOCOLS
def test_a_disabled_device_can_no_longer_connect(
    broker: Broker, client: TestClient, make_factory: Callable[..., FactoryWorld], protocol: str
) -> None:
    a = make_factory(with_admins=False)
    creds, bystander = devices(client, a, "press-1", "press-2")
    broker.apply_registry()
    before = broker.connect(creds["username"], creds["password"], creds["client_id"], protocol)
    assert before.reason == 0

    r = client.patch("/api/v1/devices/press-1", headers=auth(a.super_token), json={"enabled": False})
    assert r.status_code == 200, r.text
    broker.apply_registry()
    refused = broker.connect(creds["username"], creds["password"], "press-1-again", protocol)
    assert refused.reason in REFUSED[protocol]
    assert refused.reason == REFUSAL[(broker.kind, protocol)]
    other = broker.connect(bystander["username"], bystander["password"], bystander["client_id"], protocol)
    assert other.reason == 0  # the other devices are untouched
    # The connection the device already had is closed too: Mosquitto drops it when the reload takes its
    # user out of the password file; the embedded broker rechecks its connected devices against the
    # registry (every recheck_seconds: 5 s by default, 0.5 s here).
    assert before.gone.wait(15), "the disabled device is still connected"
    time.sleep(1.5)  # a recheck or reload later, the other device is still connected
    assert not other.gone.is_set() and other.client.is_connected()

    r = client.patch("/api/v1/devices/press-1", headers=auth(a.super_token), json={"enabled": True})
    assert r.status_code == 200, r.text
    broker.apply_registry()
    back = broker.connect(creds["username"], creds["password"], creds["client_id"], protocol)
    assert back.reason == 0


@PROTOCOLS
def test_rotated_credentials_end_the_old_connection(
    broker: Broker, client: TestClient, make_factory: Callable[..., FactoryWorld], protocol: str
) -> None:
    a = make_factory(with_admins=False)
    [creds] = devices(client, a, "press-1")
    broker.apply_registry()
    old = broker.connect(creds["username"], creds["password"], creds["client_id"], protocol)
    assert old.reason == 0
    r = client.post("/api/v1/devices/press-1/rotate-credentials", headers=auth(a.super_token))
    assert r.status_code == 200, r.text
    fresh = r.json()["mqtt"]
    broker.apply_registry()
    assert old.gone.wait(15), "the connection with the old password is still up"
    refused = broker.connect(creds["username"], creds["password"], "press-1-old", protocol)
    assert refused.reason == REFUSAL[(broker.kind, protocol)]
    new = broker.connect(fresh["username"], fresh["password"], "press-1-new", protocol)
    assert new.reason == 0
    time.sleep(1.5)  # the new credentials survive the next recheck or reload
    assert not new.gone.is_set() and new.client.is_connected()
