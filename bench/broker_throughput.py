"""Throughput of the embedded MQTT broker through a shared subscription, QoS 1 end to end.

Publisher threads (paho) publish to per-device telemetry topics; the members of the shared
subscription `$share/factoryops/factories/+/devices/+/telemetry` (as the telemetry service uses)
run in another process, and the broker in a third, so that paho's own cost does not share a GIL
with the broker. It prints messages/s from the first publish to the last message received, checks
that none was lost or duplicated, and the broker's counters and the CPU time of each process.

`--clients paho` (default) is what Python devices and the telemetry service see; paho itself costs
several times the broker's CPU, so on a 2-core machine it bounds the figure. `--clients raw` uses
minimal socket clients (pipelined QoS 1 publishes, batched acknowledgements) to measure the broker.

    .venv/bin/python bench/broker_throughput.py [--clients paho|raw] [--messages 20000] [--publishers 4] [--members 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as mqtt

from factoryops.ports.mqtt.broker import MqttBroker
from factoryops.ports.mqtt.broker_codec import FrameBuffer, PacketReader, encode_str, packet

HOST = "127.0.0.1"
SHARED = "$share/factoryops/factories/+/devices/+/telemetry"


def run_broker(conn: Connection) -> None:
    async def main() -> None:
        broker = MqttBroker(HOST, 0)
        await broker.start()
        conn.send(broker.port)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        stats = broker.stats()
        stats["cpu_seconds"] = round(time.process_time(), 2)
        conn.send(stats)
        await broker.stop()

    asyncio.run(main())


PAYLOAD = b'{"voltage_l1": 229.8, "voltage_l2": 230.1, "current_l1": 12.5, "power_kw": 41.2, "energy_kwh": 1234.5'


def raw_connect(client_id: str, port: int) -> tuple[socket.socket, FrameBuffer]:
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = encode_str("MQTT") + bytes((5, 0x02)) + (60).to_bytes(2, "big") + b"\x00" + encode_str(client_id)
    sock.sendall(packet(0x10, body))
    frames = FrameBuffer(1 << 28)
    while frames.next() is None:  # CONNACK
        frames.feed(sock.recv(65536))
    return sock, frames


def run_raw_members(port: int, members: int, expected: int, conn: Connection) -> None:
    """Shared-subscription members that acknowledge every QoS 1 message, batched per read."""
    seen: list[tuple[bytes, bytes]] = []
    last = [0.0]
    done = threading.Event()
    lock = threading.Lock()

    def member(index: int, ready: threading.Event) -> None:
        sock, frames = raw_connect(f"telemetry-{index}", port)
        sock.sendall(packet(0x82, (1).to_bytes(2, "big") + b"\x00" + encode_str(SHARED) + b"\x01"))
        while frames.next() is None:  # SUBACK
            frames.feed(sock.recv(65536))
        ready.set()
        sock.settimeout(1.0)
        while not done.is_set():
            try:
                data = sock.recv(262144)
            except TimeoutError:
                continue
            if not data:
                return
            frames.feed(data)
            acks = []
            got = []
            while (frame := frames.next()) is not None:
                if frame[0] >> 4 != 3:  # not a PUBLISH: the broker is shutting down
                    return
                reader = PacketReader(frame[1])
                topic = reader.data[: 2 + reader.u16()]
                reader.pos = len(topic)
                packet_id = reader.u16()
                reader.properties()
                got.append((topic, reader.rest()))
                acks.append(b"\x40\x02" + packet_id.to_bytes(2, "big"))
            sock.sendall(b"".join(acks))
            with lock:
                seen.extend(got)
                last[0] = time.monotonic()
                if len(seen) >= expected:
                    done.set()
        sock.close()

    threads = []
    for i in range(members):
        ready = threading.Event()
        thread = threading.Thread(target=member, args=(i, ready), daemon=True)
        thread.start()
        ready.wait(10)
        threads.append(thread)
    conn.send("ready")
    done.wait(float(conn.recv()))
    with lock:
        conn.send((len(seen), len(set(seen)), last[0], time.process_time()))


def raw_publish(port: int, index: int, count: int, acked: threading.Event) -> None:
    """Pipelined QoS 1 publishes, at most `window` unacknowledged, as a fast device gateway would."""
    sock, frames = raw_connect(f"device-{index}", port)
    window = 500
    sent = done = 0
    while done < count:
        batch = []
        while sent < count and sent - done < window:
            topic = encode_str(f"factories/A/devices/d{index}-{sent % 50}/telemetry")
            packet_id = sent % 65535 + 1
            body = topic + packet_id.to_bytes(2, "big") + b"\x00" + PAYLOAD + b', "seq": %d}' % sent
            batch.append(packet(0x32, body))
            sent += 1
        if batch:
            sock.sendall(b"".join(batch))
        frames.feed(sock.recv(65536))
        while frames.next() is not None:
            done += 1
    acked.set()
    sock.sendall(b"\xe0\x00")
    sock.close()


def run_members(port: int, members: int, expected: int, conn: Connection) -> None:
    lock = threading.Lock()
    seen: list[tuple[str, bytes]] = []
    last = [0.0]
    done = threading.Event()
    clients = []

    for i in range(members):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"telemetry-{i}", protocol=mqtt.MQTTv5)
        subscribed = threading.Event()

        def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
            with lock:
                seen.append((m.topic, bytes(m.payload)))
                last[0] = time.monotonic()
                if len(seen) >= expected:
                    done.set()

        client.on_message = on_message
        client.on_subscribe = lambda *a, ev=subscribed: ev.set()
        client.connect(HOST, port)
        client.loop_start()
        client.subscribe(SHARED, 1)
        subscribed.wait(10)
        clients.append(client)
    conn.send("ready")
    done.wait(float(conn.recv()))
    with lock:
        conn.send((len(seen), len(set(seen)), last[0], time.process_time()))
    for client in clients:
        client.disconnect()
        client.loop_stop()


def publish(port: int, index: int, count: int, acked: threading.Event) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"device-{index}", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    remaining = [count]
    lock = threading.Lock()

    def on_publish(c: mqtt.Client, u: Any, mid: int, reason: Any, props: Any) -> None:
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                acked.set()

    client.on_publish = on_publish
    client.connect(HOST, port)
    client.loop_start()
    for i in range(count):
        client.publish(f"factories/A/devices/d{index}-{i % 50}/telemetry", PAYLOAD + b', "seq": %d}' % i, 1)
    acked.wait(120)
    client.disconnect()
    client.loop_stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", choices=("paho", "raw"), default="paho")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--members", type=int, default=2, help="members of the shared subscription")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")

    broker_conn, broker_child = ctx.Pipe()
    broker_proc = ctx.Process(target=run_broker, args=(broker_child,), daemon=True)
    broker_proc.start()
    port = broker_conn.recv()

    members_conn, members_child = ctx.Pipe()
    per_publisher = args.messages // args.publishers
    expected = per_publisher * args.publishers
    target = run_members if args.clients == "paho" else run_raw_members
    members_proc = ctx.Process(target=target, args=(port, args.members, expected, members_child), daemon=True)
    members_proc.start()
    assert members_conn.recv() == "ready"

    events = [threading.Event() for _ in range(args.publishers)]
    publisher = publish if args.clients == "paho" else raw_publish
    threads = [
        threading.Thread(target=publisher, args=(port, i, per_publisher, events[i])) for i in range(args.publishers)
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    members_conn.send(120.0)
    received, distinct, last, members_cpu = members_conn.recv()
    for thread in threads:
        thread.join()
    published_in = time.monotonic() - start
    broker_conn.send("stop")
    stats = broker_conn.recv()
    broker_proc.join(10)
    members_proc.join(10)

    elapsed = last - start
    print(f"published {expected} QoS 1 messages from {args.publishers} {args.clients} publisher threads")
    print(f"received  {received} ({distinct} distinct) by {args.members} members of {SHARED}")
    print(
        f"end to end: {elapsed:.2f} s -> {received / elapsed:,.0f} msg/s"
        f" (all publishes acknowledged after {published_in:.2f} s)"
    )
    sessions = stats.pop("sessions")
    print("broker:", {k: v for k, v in stats.items() if v})
    print(
        f"cpu seconds: broker {stats['cpu_seconds']}, members {members_cpu:.2f}, publishers {time.process_time():.2f}"
    )
    print("per member:", {k: v for k, v in sessions.items() if k.startswith("telemetry")})
    lost = expected - distinct
    duplicated = received - distinct
    print(f"lost {lost}, duplicated {duplicated}")
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
