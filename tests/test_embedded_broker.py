"""The embedded MQTT broker (ports/mqtt/broker.py) against real clients: paho-mqtt 2 on MQTT 3.1.1 and 5.0.

Every test runs its own broker on a free port (port 0) over real sockets. Where paho hides what the
broker sent (the MQTT 3.1.1 CONNACK code, a DISCONNECT reason), a raw socket client reads the bytes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from factoryops.ports.mqtt.broker import AllowAll, AuthHook, MqttBroker
from factoryops.ports.mqtt.broker_codec import FrameBuffer, PacketReader, encode_properties, encode_str, packet
from factoryops.ports.mqtt.broker_topics import TopicTree, parse_subscription, topic_matches

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"
V3 = mqtt.MQTTv311
V5 = mqtt.MQTTv5
BOTH = pytest.mark.parametrize("version", [V3, V5], ids=["mqtt311", "mqtt5"])


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class Peer:
    """A paho client that records what the broker told it."""

    def __init__(
        self,
        port: int,
        client_id: str,
        *,
        version: mqtt.MQTTProtocolVersion = V5,
        clean: bool = True,
        session_expiry: int | None = None,
        receive_maximum: int | None = None,
        username: str | None = None,
        password: str | None = None,
        manual_ack: bool = False,
    ) -> None:
        self.port = port
        self.version = version
        self.clean = clean
        self.session_expiry = session_expiry
        self.receive_maximum = receive_maximum
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=version,
            clean_session=clean if version == V3 else None,
            reconnect_on_failure=False,
            manual_ack=manual_ack,
        )
        self.client.max_inflight_messages_set(1000)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.lock = threading.Lock()
        self.messages: list[mqtt.MQTTMessage] = []
        self.published: dict[int, Any] = {}  # mid -> PUBACK reason code
        self.subacks: dict[int, list[Any]] = {}
        self.connack: Any = None
        self.session_present: bool | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_reason: Any = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connack = reason
        self.session_present = flags.session_present
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.disconnect_reason = reason
        self.disconnected.set()
        self.connected.set()  # a refused CONNECT also ends here

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(message)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self.lock:
            self.published[mid] = reason

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[Any], props: Any) -> None:
        with self.lock:
            self.subacks[mid] = reasons

    def connect(self, keepalive: int = 60) -> Any:
        self.connected.clear()
        self.disconnected.clear()
        if self.version == V5:
            props = Properties(PacketTypes.CONNECT)
            if self.session_expiry is not None:
                props.SessionExpiryInterval = self.session_expiry
            if self.receive_maximum is not None:
                props.ReceiveMaximum = self.receive_maximum
            self.client.connect(HOST, self.port, keepalive, clean_start=self.clean, properties=props)
        else:
            self.client.connect(HOST, self.port, keepalive)
        self.client.loop_start()
        assert self.connected.wait(5), "no CONNACK"
        return self.connack

    def subscribe(self, topic_filter: str, qos: int = 1) -> list[int]:
        _, mid = self.client.subscribe(topic_filter, qos)
        assert mid is not None
        assert wait_until(lambda: mid in self.subacks), "no SUBACK"
        return [int(code.value) if hasattr(code, "value") else int(code) for code in self.subacks[mid]]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> int:
        return self.client.publish(topic, payload, qos, retain).mid

    def puback(self, mid: int) -> int:
        assert wait_until(lambda: mid in self.published), "no PUBACK"
        return int(self.published[mid].value)

    def received(self) -> list[mqtt.MQTTMessage]:
        with self.lock:
            return list(self.messages)

    def wait_messages(self, count: int, timeout: float = 10.0) -> list[mqtt.MQTTMessage]:
        assert wait_until(lambda: len(self.messages) >= count, timeout), f"{len(self.messages)} of {count} messages"
        return self.received()

    def close(self) -> None:
        if self.client.is_connected():
            self.client.disconnect()
            self.disconnected.wait(5)
        self.client.loop_stop()


@pytest.fixture
def make_broker() -> Iterator[Callable[..., MqttBroker]]:
    brokers: list[MqttBroker] = []

    def make(**options: Any) -> MqttBroker:
        broker = MqttBroker(HOST, 0, **options).start_in_thread()
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        broker.stop_in_thread()


@pytest.fixture
def peers() -> Iterator[Callable[..., Peer]]:
    made: list[Peer] = []

    def make(port: int, client_id: str, **options: Any) -> Peer:
        peer = Peer(port, client_id, **options)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()


def publish_all(peer: Peer, topic: str, count: int, qos: int = 1) -> None:
    mids = [peer.publish(topic, str(i).encode(), qos) for i in range(count)]
    if qos:
        assert wait_until(lambda: all(mid in peer.published for mid in mids), 20), "publishes not acknowledged"


# --- raw client for what paho does not show ---------------------------------------------------


def raw_connect(
    port: int,
    client_id: str,
    *,
    version: int = 5,
    keepalive: int = 60,
    username: str | None = None,
    password: str | None = None,
) -> socket.socket:
    flags = 0x02
    payload = encode_str(client_id)
    if username is not None:
        flags |= 0x80
        payload += encode_str(username)
    if password is not None:
        flags |= 0x40
        payload += encode_str(password)
    props = b"\x00" if version == 5 else b""
    body = encode_str("MQTT") + bytes((version, flags)) + keepalive.to_bytes(2, "big") + props + payload
    sock = socket.create_connection((HOST, port), timeout=5)
    sock.sendall(packet(0x10, body))
    return sock


class RawReader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.frames = FrameBuffer(1 << 28)

    def next(self, timeout: float = 5.0) -> tuple[int, bytes] | None:
        """The next packet, or None when the broker closed the connection."""
        self.sock.settimeout(timeout)
        while (frame := self.frames.next()) is None:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.frames.feed(data)
        return frame


# --- topics --------------------------------------------------------------------------------


MATCH_CASES = [
    ("factories/+/devices/+/telemetry", "factories/A/devices/d1/telemetry", True),
    ("factories/+/devices/+/telemetry", "factories/A/devices/d1/status", False),
    ("factories/#", "factories", True),
    ("factories/#", "factories/A/devices/d1", True),
    ("#", "factories/A", True),
    ("#", "$SYS/broker/load", False),
    ("+/broker/load", "$SYS/broker/load", False),
    ("$SYS/#", "$SYS/broker/load", True),
    ("$SYS/+/load", "$SYS/broker/load", True),
    ("a/+", "a", False),
    ("a/+", "a/", True),
    ("+/+", "/x", True),
    ("a/b", "a/b/c", False),
    ("a/b/c", "a/b", False),
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), MATCH_CASES)
def test_topic_matching_and_the_tree_agree(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected
    tree: TopicTree[str] = TopicTree()
    tree.put(topic_filter, "client", topic_filter)
    tree.put("unrelated/filter", "client", "x")
    assert bool(tree.match(topic)) is expected
    tree.remove(topic_filter, "client")
    tree.remove("unrelated/filter", "client")
    assert not tree.match(topic)
    assert not tree._root.children  # emptied branches are pruned


def test_subscription_filters_are_validated() -> None:
    assert parse_subscription("$share/telemetry/factories/+/devices/+/telemetry") == (
        "telemetry",
        "factories/+/devices/+/telemetry",
    )
    assert parse_subscription("a/#") == (None, "a/#")
    for bad in ("a/#/b", "a/b#", "a+/b", "", "$share/g", "$share//a", "$share/g+/a", "$share/g/a/#/b"):
        assert parse_subscription(bad) is None, bad


def test_property_codec_round_trip() -> None:
    wire = encode_properties(((0x11, 300), (0x26, ("k", "v")), (0x26, ("k2", "v2")), (0x1F, "why"), (0x0B, 200)))
    assert PacketReader(wire).properties() == {
        0x11: 300,
        0x26: [("k", "v"), ("k2", "v2")],
        0x1F: "why",
        0x0B: [200],
    }


# --- round trips -------------------------------------------------------------------------------


@BOTH
def test_publish_subscribe_round_trip(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer], version: mqtt.MQTTProtocolVersion
) -> None:
    broker = make_broker()
    sub = peers(broker.port, "sub", version=version)
    assert sub.connect() == 0
    assert sub.subscribe("factories/A/devices/d1/telemetry", 1) == [1]
    assert sub.subscribe("factories/A/devices/d1/qos0", 0) == [0]
    pub = peers(broker.port, "pub", version=version)
    assert pub.connect() == 0
    mid = pub.publish("factories/A/devices/d1/telemetry", b'{"power_kw": 41.2}', 1)
    assert pub.puback(mid) == 0
    pub.publish("factories/A/devices/d1/qos0", b"zero", 0)
    got = sub.wait_messages(2)
    assert [(m.topic, m.payload, m.qos, m.retain) for m in got] == [
        ("factories/A/devices/d1/telemetry", b'{"power_kw": 41.2}', 1, False),
        ("factories/A/devices/d1/qos0", b"zero", 0, False),
    ]
    stats = broker.stats()
    assert stats["messages_in"] == 2 and stats["messages_out"] == 2 and stats["connections_current"] == 2


def test_mqtt5_properties_are_forwarded_and_no_subscriber_is_reported(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker()
    pub = peers(broker.port, "pub")
    pub.connect()
    mid = pub.publish("nobody/listens", b"x", 1)
    assert pub.puback(mid) == 0x10  # No matching subscribers (informational, as Mosquitto)
    sub = peers(broker.port, "sub")
    sub.connect()
    sub.subscribe("with/props", 1)
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.UserProperty = ("firmware", "2.1")
    props.MessageExpiryInterval = 60
    pub.client.publish("with/props", b"{}", 1, properties=props)
    (message,) = sub.wait_messages(1)
    forwarded: Any = message.properties
    assert forwarded.ContentType == "application/json"
    assert forwarded.UserProperty == [("firmware", "2.1")]
    assert 0 < forwarded.MessageExpiryInterval <= 60


@BOTH
def test_wildcards_and_dollar_topics(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer], version: mqtt.MQTTProtocolVersion
) -> None:
    broker = make_broker()
    plus = peers(broker.port, "plus", version=version)
    hash_all = peers(broker.port, "all", version=version)
    overlap = peers(broker.port, "overlap", version=version)
    for peer in (plus, hash_all, overlap):
        peer.connect()
    plus.subscribe("factories/+/devices/+/telemetry")
    hash_all.subscribe("#")
    overlap.subscribe("factories/#", 0)
    overlap.subscribe("factories/A/devices/+/telemetry", 1)
    pub = peers(broker.port, "pub", version=version)
    pub.connect()
    for topic in ("factories/A/devices/d1/telemetry", "factories/B/devices/d7/status", "$SYS/x", "other"):
        pub.publish(topic, topic.encode(), 1)
    pub.publish("done", b"", 1)
    hash_all.wait_messages(4)
    assert [m.topic for m in hash_all.received()] == [
        "factories/A/devices/d1/telemetry",
        "factories/B/devices/d7/status",
        "other",
        "done",
    ]
    assert wait_until(lambda: len(overlap.received()) >= 2)
    assert [m.topic for m in plus.received()] == ["factories/A/devices/d1/telemetry"]
    # Overlapping filters give one copy, at the highest QoS granted.
    assert [(m.topic, m.qos) for m in overlap.received()] == [
        ("factories/A/devices/d1/telemetry", 1),
        ("factories/B/devices/d7/status", 0),
    ]


# --- shared subscriptions ----------------------------------------------------------------------


def test_shared_subscription_splits_messages_without_loss_or_duplicates(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker()
    members = [peers(broker.port, f"telemetry-{i}", version=v) for i, v in enumerate((V5, V3))]
    for member in members:
        member.connect()
        assert member.subscribe("$share/factoryops/factories/+/devices/+/telemetry") == [1]
    plain = peers(broker.port, "plain")
    plain.connect()
    plain.subscribe("factories/+/devices/+/telemetry")
    publishers = [peers(broker.port, f"dev-{i}") for i in range(4)]
    for p in publishers:
        p.connect()
    threads = [
        threading.Thread(target=publish_all, args=(p, f"factories/A/devices/d{i}/telemetry", 250))
        for i, p in enumerate(publishers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wait_until(lambda: sum(len(m.received()) for m in members) >= 1000)
    time.sleep(0.2)  # anything extra (a duplicate) would arrive now
    got = [(m.topic, m.payload) for member in members for m in member.received()]
    assert len(got) == 1000 and len(set(got)) == 1000
    assert all(len(member.received()) >= 200 for member in members)  # round robin: both carry load
    assert len(plain.wait_messages(1000)) == 1000  # a normal subscription still gets every message


def test_shared_group_queues_for_persistent_members_when_none_is_connected(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker()
    members = [peers(broker.port, f"svc-{i}", clean=False, session_expiry=300) for i in range(2)]
    for member in members:
        member.connect()
        member.subscribe("$share/g/t/#")
        member.close()
    pub = peers(broker.port, "pub")
    pub.connect()
    publish_all(pub, "t/x", 200)
    stats = broker.stats()
    assert stats["sessions"]["svc-0"]["queued"] + stats["sessions"]["svc-1"]["queued"] == 200
    again = [peers(broker.port, f"svc-{i}", clean=False, session_expiry=300) for i in range(2)]
    for member in again:
        member.connect()
        assert member.session_present
    assert wait_until(lambda: sum(len(m.received()) for m in again) == 200)
    assert sorted(int(m.payload) for member in again for m in member.received()) == list(range(200))


def test_unacknowledged_shared_messages_move_to_another_member_when_a_session_ends(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker()
    stuck = peers(broker.port, "stuck", manual_ack=True)  # clean session: it ends at disconnect
    healthy = peers(broker.port, "healthy")
    for member in (stuck, healthy):
        member.connect()
        member.subscribe("$share/g/t/#")
    pub = peers(broker.port, "pub")
    pub.connect()
    publish_all(pub, "t/x", 100)
    assert wait_until(lambda: len(stuck.received()) + len(healthy.received()) == 100)
    assert stuck.received()  # it holds some, never acknowledged
    stuck.close()
    assert wait_until(lambda: len(healthy.received()) == 100)
    assert sorted(int(m.payload) for m in healthy.received()) == list(range(100))


# --- sessions ------------------------------------------------------------------------------


@BOTH
def test_persistent_session_gets_queued_messages_in_order(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer], version: mqtt.MQTTProtocolVersion
) -> None:
    broker = make_broker()
    options: dict[str, Any] = {"version": version, "clean": False, "session_expiry": 300}
    sub = peers(broker.port, "telemetry", **options)
    sub.connect()
    assert sub.session_present is False
    sub.subscribe("factories/+/devices/+/telemetry")
    sub.close()
    pub = peers(broker.port, "device", version=version)
    pub.connect()
    publish_all(pub, "factories/A/devices/d1/telemetry", 5000)
    assert broker.stats()["sessions"]["telemetry"] == {"connected": False, "queued": 5000, "inflight": 0, "dropped": 0}
    again = peers(broker.port, "telemetry", **options)
    again.connect()
    assert again.session_present is True
    got = again.wait_messages(5000, timeout=20)
    assert [int(m.payload) for m in got] == list(range(5000))
    assert wait_until(lambda: broker.stats()["sessions"]["telemetry"]["inflight"] == 0)


def test_clean_start_discards_the_previous_session(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker()
    sub = peers(broker.port, "c", clean=False, session_expiry=300)
    sub.connect()
    sub.subscribe("t")
    sub.close()
    fresh = peers(broker.port, "c", clean=True, session_expiry=300)
    fresh.connect()
    assert fresh.session_present is False
    assert broker.stats()["sessions"]["c"]["queued"] == 0
    pub = peers(broker.port, "p")
    pub.connect()
    assert pub.puback(pub.publish("t", b"x")) == 0x10  # the old subscription went with the session


def test_session_expiry_interval_ends_the_session(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker()
    sub = peers(broker.port, "short", clean=False, session_expiry=1)
    sub.connect()
    sub.subscribe("t")
    sub.close()
    assert "short" in broker.stats()["sessions"]
    assert wait_until(lambda: "short" not in broker.stats()["sessions"], 3)


@BOTH
def test_unacknowledged_message_is_redelivered_with_dup(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer], version: mqtt.MQTTProtocolVersion
) -> None:
    broker = make_broker()
    options: dict[str, Any] = {"version": version, "clean": False, "session_expiry": 300}
    sub = peers(broker.port, "svc", manual_ack=True, **options)
    sub.connect()
    sub.subscribe("t/#")
    pub = peers(broker.port, "pub", version=version)
    pub.connect()
    publish_all(pub, "t/1", 3)
    first = sub.wait_messages(3)
    assert not any(m.dup for m in first)
    sub.client.ack(first[0].mid, 1)  # only the first is acknowledged
    assert wait_until(lambda: broker.stats()["sessions"]["svc"]["inflight"] == 2)
    sub.close()
    again = peers(broker.port, "svc", **options)
    again.connect()
    got = again.wait_messages(2)
    assert [(m.payload, m.dup) for m in got] == [(b"1", True), (b"2", True)]
    time.sleep(0.2)
    assert len(again.received()) == 2


def test_receive_maximum_bounds_messages_in_flight(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker()
    sub = peers(broker.port, "slow", manual_ack=True, receive_maximum=5)
    sub.connect()
    sub.subscribe("t")
    pub = peers(broker.port, "pub")
    pub.connect()
    publish_all(pub, "t", 20)
    sub.wait_messages(5)
    time.sleep(0.3)
    assert len(sub.received()) == 5
    assert broker.stats()["sessions"]["slow"]["queued"] == 15
    acked: set[int] = set()

    def ack_all() -> bool:
        for m in sub.received():
            if m.mid not in acked:
                acked.add(m.mid)
                sub.client.ack(m.mid, 1)
        return len(sub.received()) == 20

    assert wait_until(ack_all)
    assert [int(m.payload) for m in sub.received()] == list(range(20))


def test_queue_limit_drops_and_counts(make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]) -> None:
    broker = make_broker(max_queued=10)
    sub = peers(broker.port, "s", clean=False, session_expiry=300)
    sub.connect()
    sub.subscribe("t")
    sub.close()
    pub = peers(broker.port, "p")
    pub.connect()
    publish_all(pub, "t", 15)
    stats = broker.stats()
    assert stats["dropped_queue_full"] == 5
    assert stats["sessions"]["s"] == {"connected": False, "queued": 10, "inflight": 0, "dropped": 5}
    again = peers(broker.port, "s", clean=False, session_expiry=300)
    again.connect()
    assert [int(m.payload) for m in again.wait_messages(10)] == list(range(10))


# --- authentication and authorisation ------------------------------------------------------------


@dataclass(frozen=True)
class Who:
    kind: str  # "device" or "service"
    factory: str | None = None
    device: str | None = None


class PlantHook:
    """A device may publish only on its own telemetry topic and subscribe to nothing; the service may do all."""

    accounts = {
        "dev-a-d1": ("secret-1", Who("device", "A", "d1")),
        "telemetry": ("secret-t", Who("service")),
    }

    def authenticate(self, client_id: str, username: str | None, password: str | None) -> Who | None:
        entry = self.accounts.get(username or "")
        return entry[1] if entry is not None and entry[0] == password else None

    def may_publish(self, identity: Who, topic: str) -> bool:
        if identity.kind == "service":
            return True
        return topic == f"factories/{identity.factory}/devices/{identity.device}/telemetry"

    def may_subscribe(self, identity: Who, topic_filter: str) -> bool:
        return identity.kind == "service"


def test_hook_classes_satisfy_the_protocol() -> None:
    hooks: list[AuthHook] = [PlantHook(), AllowAll()]
    assert all(hook.may_publish(hook.authenticate("c", "telemetry", "secret-t"), "x") for hook in hooks)


def test_bad_password_is_refused_with_0x86_on_mqtt5(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker(auth=PlantHook())
    peer = peers(broker.port, "d1", username="dev-a-d1", password="wrong")
    assert peer.connect() == 134
    assert not peer.client.is_connected()
    assert peers(broker.port, "d1", username="dev-a-d1", password="secret-1").connect() == 0
    assert broker.stats()["connections_refused"] == 1


def test_bad_password_is_refused_with_4_on_mqtt311(make_broker: Callable[..., MqttBroker]) -> None:
    broker = make_broker(auth=PlantHook())
    with raw_connect(broker.port, "d1", version=4, username="dev-a-d1", password="wrong") as sock:
        reader = RawReader(sock)
        assert reader.next() == (0x20, b"\x00\x04")
        assert reader.next() is None  # and the connection is closed
    with raw_connect(broker.port, "d1", version=4, username="nobody") as sock:
        assert RawReader(sock).next() == (0x20, b"\x00\x04")


def test_device_of_factory_a_cannot_publish_into_factory_b_mqtt5(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker(auth=PlantHook())
    service = peers(broker.port, "svc", username="telemetry", password="secret-t")
    service.connect()
    service.subscribe("factories/+/devices/+/telemetry")
    device = peers(broker.port, "d1", username="dev-a-d1", password="secret-1")
    device.connect()
    denied = device.publish("factories/B/devices/d1/telemetry", b'{"power_kw": 1}', 1)
    assert device.puback(denied) == 135  # Not authorized
    denied_qos0 = device.publish("factories/B/devices/d1/telemetry", b'{"power_kw": 2}', 0)
    allowed = device.publish("factories/A/devices/d1/telemetry", b'{"power_kw": 3}', 1)
    assert denied_qos0 and device.puback(allowed) == 0
    # The allowed message follows the denied ones on the same connection: once it is here, they are not coming.
    (only,) = service.wait_messages(1)
    time.sleep(0.2)
    assert [m.topic for m in service.received()] == ["factories/A/devices/d1/telemetry"]
    assert only.payload == b'{"power_kw": 3}'
    assert broker.stats()["publishes_denied"] == 2


def test_denied_publish_on_mqtt311_is_acknowledged_and_dropped(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker(auth=PlantHook())
    service = peers(broker.port, "svc", username="telemetry", password="secret-t")
    service.connect()
    service.subscribe("factories/#")
    device = peers(broker.port, "d1", version=V3, username="dev-a-d1", password="secret-1")
    device.connect()
    assert device.puback(device.publish("factories/B/devices/d1/telemetry", b"x", 1)) == 0
    assert device.puback(device.publish("factories/A/devices/d1/telemetry", b"y", 1)) == 0
    assert [m.payload for m in service.wait_messages(1)] == [b"y"]
    time.sleep(0.2)
    assert len(service.received()) == 1
    assert device.client.is_connected()


@BOTH
def test_denied_subscription(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer], version: mqtt.MQTTProtocolVersion
) -> None:
    broker = make_broker(auth=PlantHook())
    device = peers(broker.port, "d1", version=version, username="dev-a-d1", password="secret-1")
    device.connect()
    assert device.subscribe("factories/B/#") == [0x87 if version == V5 else 0x80]
    assert device.subscribe("$share/g/factories/#") == [0x87 if version == V5 else 0x80]
    assert device.client.is_connected()
    assert broker.stats()["subscriptions_denied"] == 2


# --- limits and refusals -------------------------------------------------------------------------


def test_oversize_packet_disconnects_with_0x95(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker(max_packet_size=1024)
    with raw_connect(broker.port, "raw") as sock:
        reader = RawReader(sock)
        first, body = reader.next() or (0, b"")
        assert first == 0x20 and body[1] == 0
        connack = PacketReader(body[2:]).properties()
        assert connack[0x27] == 1024 and connack[0x24] == 1  # Maximum Packet Size, Maximum QoS
    peer = peers(broker.port, "big")
    peer.connect()
    peer.publish("t", b"x" * 2000, 1)
    assert peer.disconnected.wait(5)
    assert peer.disconnect_reason == 0x95
    small = peers(broker.port, "v3", version=V3)
    small.connect()
    small.publish("t", b"x" * 2000, 0)
    assert small.disconnected.wait(5)  # MQTT 3.1.1: the connection is closed


def test_qos2_is_refused_with_0x9b(make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]) -> None:
    broker = make_broker()
    sub = peers(broker.port, "sub")
    sub.connect()
    assert sub.subscribe("t", 2) == [1]  # a QoS 2 subscription is granted QoS 1
    peer = peers(broker.port, "q2")
    peer.connect()
    peer.publish("t", b"x", 2)
    assert peer.disconnected.wait(5)
    assert peer.disconnect_reason == 0x9B


def test_topic_alias_is_refused_with_0x94(make_broker: Callable[..., MqttBroker]) -> None:
    broker = make_broker()
    with raw_connect(broker.port, "alias") as sock:
        reader = RawReader(sock)
        assert reader.next() is not None  # CONNACK (Topic Alias Maximum absent: 0)
        sock.sendall(packet(0x30, encode_str("t") + encode_properties(((0x23, 1),)) + b"x"))
        first, body = reader.next() or (0, b"")
        assert (first, body[0]) == (0xE0, 0x94)
        assert reader.next() is None


def test_keepalive_timeout_closes_a_silent_client(make_broker: Callable[..., MqttBroker]) -> None:
    broker = make_broker()
    start = time.monotonic()
    with raw_connect(broker.port, "silent", keepalive=1) as sock:
        reader = RawReader(sock)
        assert reader.next() is not None  # CONNACK
        first, body = reader.next() or (0, b"")
        assert (first, body[0]) == (0xE0, 0x8D)  # DISCONNECT, Keep Alive timeout
        assert reader.next() is None
    assert 1.4 <= time.monotonic() - start < 3.5
    assert broker.stats()["keepalive_timeouts"] == 1


def test_will_is_published_when_a_client_vanishes(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker()
    watcher = peers(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("status/#")
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev", protocol=V5)
    device.will_set("status/dev", b"offline", 1)
    device.connect(HOST, broker.port)
    device.loop(1)
    raw = device.socket()
    assert raw is not None
    raw.close()  # vanish without DISCONNECT
    (will,) = watcher.wait_messages(1)
    assert (will.topic, will.payload) == ("status/dev", b"offline")


def test_will_delay_is_cancelled_when_the_client_comes_back(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]
) -> None:
    broker = make_broker()
    watcher = peers(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("status/#")

    def vanish() -> None:
        device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev", protocol=V5)
        will_props = Properties(PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = 1
        device.will_set("status/dev", b"offline", 1, properties=will_props)
        connect_props = Properties(PacketTypes.CONNECT)
        connect_props.SessionExpiryInterval = 60
        device.connect(HOST, broker.port, clean_start=False, properties=connect_props)
        device.loop(1)
        raw = device.socket()
        assert raw is not None
        raw.close()

    vanish()
    time.sleep(0.3)
    vanish()  # back within the delay: the first will is not sent
    time.sleep(0.5)
    assert watcher.received() == []
    (will,) = watcher.wait_messages(1, timeout=3)  # the second one is, a second after it vanished
    assert will.payload == b"offline"


def test_queued_messages_expire(make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer]) -> None:
    broker = make_broker()
    sub = peers(broker.port, "s", clean=False, session_expiry=300)
    sub.connect()
    sub.subscribe("t")
    sub.close()
    pub = peers(broker.port, "p")
    pub.connect()
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = 1
    pub.puback(pub.client.publish("t", b"short-lived", 1, properties=props).mid)
    pub.puback(pub.publish("t", b"lasting"))
    time.sleep(1.2)
    again = peers(broker.port, "s", clean=False, session_expiry=300)
    again.connect()
    assert [m.payload for m in again.wait_messages(1)] == [b"lasting"]
    time.sleep(0.2)
    assert len(again.received()) == 1
    assert broker.stats()["dropped_expired"] == 1


# --- retained messages -------------------------------------------------------------------------


@BOTH
def test_retained_message_reaches_a_late_subscriber(
    make_broker: Callable[..., MqttBroker], peers: Callable[..., Peer], version: mqtt.MQTTProtocolVersion
) -> None:
    broker = make_broker()
    pub = peers(broker.port, "pub", version=version)
    pub.connect()
    pub.puback(pub.publish("factories/A/devices/d1/config", b"v1", 1, retain=True))
    late = peers(broker.port, "late", version=version)
    late.connect()
    late.subscribe("factories/A/devices/+/config")
    (message,) = late.wait_messages(1)
    assert (message.payload, message.retain) == (b"v1", True)
    pub.puback(pub.publish("factories/A/devices/d1/config", b"", 1, retain=True))  # an empty payload clears it
    assert broker.stats()["retained"] == 0
    later = peers(broker.port, "later", version=version)
    later.connect()
    later.subscribe("factories/#")
    pub.publish("factories/marker", b"m", 1)
    assert [m.payload for m in later.wait_messages(1)] == [b"m"]


# --- lifecycle ---------------------------------------------------------------------------------


def test_stop_with_connected_clients_returns_promptly(peers: Callable[..., Peer]) -> None:
    broker = MqttBroker(HOST, 0).start_in_thread()
    clients = [peers(broker.port, f"c{i}", version=V5 if i % 2 else V3) for i in range(6)]
    for client in clients:
        client.connect()
        client.subscribe("t")
    idle = raw_connect(broker.port, "raw")  # connected, never reads
    start = time.monotonic()
    broker.stop_in_thread()
    assert time.monotonic() - start < 3
    assert all(client.disconnected.wait(5) for client in clients)
    assert [c.disconnect_reason for c in clients if c.version == V5] == [0x8B] * 3  # Server shutting down
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection((HOST, broker.port), timeout=1).close()


def test_context_manager_and_session_takeover(peers: Callable[..., Peer]) -> None:
    with MqttBroker(HOST, 0) as broker:
        first = peers(broker.port, "same")
        first.connect()
        second = peers(broker.port, "same")
        second.connect()
        assert first.disconnected.wait(5)
        assert first.disconnect_reason == 0x8E  # Session taken over
        assert second.client.is_connected()
        assert broker.stats()["connections_current"] == 1
