"""The in-process MQTT broker of `factoryops up` and of the tests: MQTT 3.1.1 and 5.0 over TCP, pure asyncio.

It exists so that the embedded platform enforces the same broker-side rules as production
(Mosquitto / EMQX): every client is authenticated and every publish and subscription authorised
through an `AuthHook`, and MQTT 5 clients get the reason codes (0x86 bad credentials, 0x87 not
authorised). It is meant for one plant on one machine; `docs/mqtt-broker.md` lists what it
supports and what it leaves out (QoS 2, topic aliases, enhanced authentication, persistence
across restarts). Nothing here knows about factories or devices: identities are opaque objects
the hook returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Protocol

from factoryops.ports.mqtt.broker_codec import (
    ADMINISTRATIVE_ACTION,
    ASSIGNED_CLIENT_IDENTIFIER,
    AUTHENTICATION_METHOD,
    BAD_AUTHENTICATION_METHOD,
    BAD_USERNAME_OR_PASSWORD,
    CLIENT_IDENTIFIER_NOT_VALID,
    CONNECT,
    DISCONNECT,
    DISCONNECT_WITH_WILL,
    EMPTY_PROPERTIES,
    FORWARDED_PUBLISH_PROPERTIES,
    GRANTED_QOS_1,
    KEEP_ALIVE_TIMEOUT,
    MALFORMED_PACKET,
    MAXIMUM_PACKET_SIZE,
    MAXIMUM_QOS,
    MESSAGE_EXPIRY_INTERVAL,
    NEVER_EXPIRES,
    NO_MATCHING_SUBSCRIBERS,
    NO_SUBSCRIPTION_EXISTED,
    NOT_AUTHORIZED,
    PACKET_TOO_LARGE,
    PINGREQ,
    PROTOCOL_ERROR,
    PUBACK,
    PUBLISH,
    QOS_NOT_SUPPORTED,
    REASON_STRING,
    RECEIVE_MAXIMUM,
    REQUEST_PROBLEM_INFORMATION,
    SERVER_SHUTTING_DOWN,
    SERVER_UNAVAILABLE,
    SESSION_EXPIRY_INTERVAL,
    SESSION_TAKEN_OVER,
    SUBSCRIBE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE,
    SUCCESS,
    TOPIC_ALIAS,
    TOPIC_ALIAS_INVALID,
    TOPIC_FILTER_INVALID,
    TOPIC_NAME_INVALID,
    UNSUBSCRIBE,
    USER_PROPERTY,
    V3_BAD_CREDENTIALS,
    V3_IDENTIFIER_REJECTED,
    V3_SERVER_UNAVAILABLE,
    V3_SUBACK_FAILURE,
    V3_UNACCEPTABLE_PROTOCOL,
    WILL_DELAY_INTERVAL,
    FrameBuffer,
    MalformedPacket,
    PacketReader,
    PacketTooLarge,
    ProtocolError,
    encode_properties,
    encode_str,
    encode_varint,
    packet,
)
from factoryops.ports.mqtt.broker_session import (
    BrokerStats,
    Message,
    Pending,
    Session,
    SharedGroup,
    Subscription,
)
from factoryops.ports.mqtt.broker_topics import TopicTree, parse_subscription, topic_matches, valid_topic_name

__all__ = ["AllowAll", "AnonymousIdentity", "AuthHook", "BrokerStats", "MqttBroker"]

log = logging.getLogger(__name__)

MQTT_MAX_PACKET = 268_435_460  # the largest packet the remaining-length encoding can describe
_READ_CHUNK = 65_536


class AuthHook(Protocol):
    """Who may connect, publish and subscribe. The broker calls it; the platform implements it.

    `authenticate` runs in a worker thread (it may read a database or hash a password); the two
    `may_*` checks run on the broker's event loop for every PUBLISH and SUBSCRIBE, so they must be
    quick and must not block (answer from memory). An exception from any of them refuses the
    request. Identities must compare equal (``==``) across connections of the same principal, a
    frozen dataclass does: a persistent session is resumed only by the identity that created it.
    """

    def authenticate(self, client_id: str, username: str | None, password: str | None) -> Any | None:
        """The identity of a client, or None to refuse it (CONNACK 0x86 on MQTT 5, 0x04 on 3.1.1)."""
        ...

    def may_publish(self, identity: Any, topic: str) -> bool: ...

    def may_subscribe(self, identity: Any, topic_filter: str) -> bool:
        """`topic_filter` as the client sent it, a `$share/<group>/` prefix included, so that a hook
        matching patterns refuses shared subscriptions it does not expect."""
        ...


class RevocationHook(Protocol):
    """Optional part of an auth hook: which connected clients have lost their right to be connected
    (a disabled device, rotated credentials). The broker asks every ``recheck_seconds`` from a worker
    thread with ``{client_id: identity}`` of the live connections and disconnects the ids returned
    (MQTT 5: 0x98 administrative action), ending their sessions."""

    def revoked(self, clients: dict[str, Any]) -> set[str]: ...


@dataclass(frozen=True)
class AnonymousIdentity:
    username: str | None


class AllowAll:
    """Development hook: every client connects, publishes and subscribes. Never for a plant network."""

    def authenticate(self, client_id: str, username: str | None, password: str | None) -> AnonymousIdentity:
        return AnonymousIdentity(username)

    def may_publish(self, identity: Any, topic: str) -> bool:
        return True

    def may_subscribe(self, identity: Any, topic_filter: str) -> bool:
        return True


@dataclass(slots=True)
class _Will:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    forwarded: tuple[tuple[int, Any], ...]
    expiry_interval: int | None
    delay: int


class _Connection:
    """One client's TCP connection: protocol state, and writes coalesced into one send per loop turn."""

    def __init__(self, broker: MqttBroker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.broker = broker
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        self.loop = asyncio.get_running_loop()
        self.version = 4
        self.client_id = ""
        self.identity: Any = None
        self.session: Session | None = None
        self.window = broker.max_inflight
        self.client_max_packet = MQTT_MAX_PACKET
        self.problem_info = True
        self.will: _Will | None = None
        self.keepalive = 0
        self.keepalive_timer: asyncio.TimerHandle | None = None
        self.last_rx = self.loop.time()
        self.accepted = False  # CONNACK 0x00 sent
        self.closed = False
        self.lost = False  # _connection_lost ran
        self.clean_disconnect = False  # DISCONNECT received: the will is not sent
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        self._out.append(data)
        self._out_bytes += len(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out:
            if not self.transport.is_closing():
                self.transport.write(b"".join(self._out))
            self._out.clear()
            self._out_bytes = 0

    def send_publish(self, pending: Pending, packet_id: int, dup: bool) -> bool:
        if self.closed:
            return False
        message = pending.message
        qos = pending.qos
        stats = self.broker.counters
        if qos == 0 and self._out_bytes + self.transport.get_write_buffer_size() > self.broker.max_buffered_bytes:
            stats.dropped_slow_consumer += 1
            return False
        if self.version == 5:
            if message.expires_at is None:
                props = message.properties_wire
            else:
                remaining = max(1, math.ceil(message.expires_at - time.monotonic()))
                props = encode_properties((*message.forwarded, (MESSAGE_EXPIRY_INTERVAL, remaining)))
        else:
            props = b""
        length = len(message.topic_wire) + len(props) + len(message.payload) + (2 if qos else 0)
        header = encode_varint(length)
        if 1 + len(header) + length > self.client_max_packet:
            stats.dropped_too_large += 1
            return False
        first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if pending.retain else 0)
        out = self._out
        out.append(bytes((first,)) + header + message.topic_wire)
        if qos:
            out.append(packet_id.to_bytes(2, "big"))
        if props:
            out.append(props)
        out.append(message.payload)
        self._out_bytes += length
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        stats.messages_out += 1
        return True

    def reason_properties(self, reason: str | None) -> bytes:
        if reason and self.problem_info:
            return encode_properties(((REASON_STRING, reason),))
        return EMPTY_PROPERTIES

    def send_puback(self, packet_id: int, reason_code: int, reason: str | None = None) -> None:
        if self.version == 5 and reason_code:
            self.send(
                packet(0x40, packet_id.to_bytes(2, "big") + bytes((reason_code,)) + self.reason_properties(reason))
            )
        else:
            self.send(b"\x40\x02" + packet_id.to_bytes(2, "big"))

    def close(self, reason_code: int | None = None, reason: str | None = None) -> None:
        """Close the connection, telling an MQTT 5 client why when there is a reason code."""
        if self.closed:
            return
        if reason_code is not None and self.version == 5 and self.accepted:
            props = encode_properties(((REASON_STRING, reason),)) if reason else EMPTY_PROPERTIES
            self.send(packet(0xE0, bytes((reason_code,)) + props))
        self._flush()
        self.closed = True
        if self.keepalive_timer is not None:
            self.keepalive_timer.cancel()
        self.transport.close()
        # close() waits for the send buffer to drain; a peer that stopped reading must not hold the socket.
        self.loop.call_later(5.0, self.transport.abort)
        # Detach from the session now, not when the reader notices: a QoS 1 message routed in between
        # must go to the session's queue, not to a closing socket.
        self.broker._connection_lost(self)


class MqttBroker:
    """An MQTT 3.1.1 / 5.0 broker on one TCP listener.

    `max_packet_size` bounds what clients may send (MQTT 5 clients are told in CONNACK);
    `max_queued` bounds the QoS 1 messages waiting in one session; `max_inflight` caps the
    unacknowledged QoS 1 messages per client below its own Receive Maximum (MQTT 3.1.1 has none);
    `max_buffered_bytes` is the send backlog above which QoS 0 messages to a client are dropped.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        auth: AuthHook | None = None,
        max_packet_size: int = 256 * 1024,
        max_queued: int = 100_000,
        max_inflight: int = 1_000,
        max_buffered_bytes: int = 16 * 1024 * 1024,
        connect_timeout: float = 10.0,
        recheck_seconds: float = 5.0,
    ) -> None:
        self.host = host
        self.recheck_seconds = recheck_seconds
        self._requested_port = port
        self.auth: AuthHook = auth if auth is not None else AllowAll()
        self.max_packet_size = min(max_packet_size, MQTT_MAX_PACKET)
        self.max_queued = max_queued
        self.max_inflight = max(1, min(max_inflight, 65_535))
        self.max_buffered_bytes = max_buffered_bytes
        self.connect_timeout = connect_timeout
        self.counters = BrokerStats()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port = 0
        self._closing = False
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._live: dict[str, _Connection] = {}  # client id -> its current connection
        self._sessions: dict[str, Session] = {}
        self._subscriptions: TopicTree[Subscription] = TopicTree()  # entries keyed by client id
        self._groups: TopicTree[SharedGroup] = TopicTree()  # entries keyed by share group name
        self._retained: dict[str, Message] = {}
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._recheck: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the real one when the constructor was given port 0)."""
        return self._port or self._requested_port

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the broker is already running")
        self._loop = asyncio.get_running_loop()
        self._closing = False
        server = await asyncio.start_server(self._serve, self.host, self._requested_port, limit=_READ_CHUNK)
        ports = {sock.getsockname()[1] for sock in server.sockets}
        if len(ports) > 1:
            # Port 0 on a name with several addresses (localhost: ::1 and 127.0.0.1) binds each to a
            # different free port; rebind all of them on the first so that `port` means one thing.
            first = server.sockets[0].getsockname()[1]
            server.close()
            await server.wait_closed()
            server = await asyncio.start_server(self._serve, self.host, first, limit=_READ_CHUNK)
        self._server = server
        self._port = server.sockets[0].getsockname()[1]
        if callable(getattr(self.auth, "revoked", None)) and self.recheck_seconds > 0:
            self._recheck = asyncio.create_task(self._recheck_clients())
        log.info("MQTT broker listening on %s:%s", self.host, self._port)

    async def _recheck_clients(self) -> None:
        """Disconnects the clients the auth hook says have lost their right (see :class:`RevocationHook`)."""
        hook: RevocationHook = self.auth  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        while not self._closing:
            await asyncio.sleep(self.recheck_seconds)
            clients = {cid: conn.identity for cid, conn in self._live.items() if conn.identity is not None}
            if not clients:
                continue
            try:
                gone = await loop.run_in_executor(None, hook.revoked, clients)
            except Exception:  # a database hiccup: keep everyone, ask again next time
                log.warning("MQTT broker: could not recheck the connected clients' rights", exc_info=True)
                continue
            for client_id in gone:
                if self._live.get(client_id) is not None and self._live[client_id].identity == clients.get(client_id):
                    self.counters.revoked += 1
                    log.info("MQTT broker: disconnecting %s, whose right to connect was revoked", client_id)
                    await self.disconnect_client(client_id, end_session=True)

    async def stop(self) -> None:
        """Stop listening, tell connected clients (MQTT 5: 0x8B), close them, and forget every session."""
        server = self._server
        if server is None:
            return
        self._closing = True
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        server.close()
        for conn in list(self._connections):
            conn.close(SERVER_SHUTTING_DOWN, "the broker is shutting down")
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2.0)
            if pending:
                for conn in list(self._connections):
                    conn.transport.abort()
                _, pending = await asyncio.wait(pending, timeout=1.0)
                for task in pending:
                    task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2.0)
        for session in self._sessions.values():
            for timer in (session.expiry_timer, session.will_timer):
                if timer is not None:
                    timer.cancel()
        # Nothing survives a restart (as with Mosquitto without persistence): clients with persistent
        # sessions find none (CONNACK session present = 0) and subscribe again.
        self._sessions.clear()
        self._live.clear()
        self._subscriptions = TopicTree()
        self._groups = TopicTree()
        self._retained.clear()
        self._server = None
        log.info("MQTT broker on %s:%s stopped", self.host, self._port)

    def start_in_thread(self, timeout: float = 10.0) -> MqttBroker:
        """Run the broker on its own event loop in a daemon thread (for threaded callers and tests)."""
        if self._thread is not None:
            raise RuntimeError("the broker is already running in a thread")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # handed to the starting thread, which raises it
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="mqtt-broker", daemon=True)
        thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the MQTT broker did not start in time")
        if failure:
            thread.join()
            raise failure[0]
        self._thread = thread
        self._thread_loop = loop
        return self

    def stop_in_thread(self, timeout: float = 10.0) -> None:
        thread, loop = self._thread, self._thread_loop
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._thread = None
            self._thread_loop = None

    def __enter__(self) -> MqttBroker:
        return self.start_in_thread()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_in_thread()

    # --- observation and administration ---------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters, and per session: connected, queued (queue depth), in flight, dropped. Thread-safe."""
        loop = self._loop
        if loop is not None and loop.is_running() and not self._in_loop(loop):

            async def collect() -> dict[str, Any]:
                return self._collect_stats()

            return asyncio.run_coroutine_threadsafe(collect(), loop).result(10)
        return self._collect_stats()

    @staticmethod
    def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    def _collect_stats(self) -> dict[str, Any]:
        result: dict[str, Any] = asdict(self.counters)
        result["retained"] = len(self._retained)
        result["sessions"] = {
            client_id: {
                "connected": session.outlet is not None,
                "queued": len(session.queue),
                "inflight": len(session.inflight),
                "dropped": session.dropped,
            }
            for client_id, session in self._sessions.items()
        }
        return result

    async def disconnect_client(self, client_id: str, *, end_session: bool = False) -> bool:
        """Disconnect a client (MQTT 5: 0x98 administrative action), e.g. when its credentials are revoked."""
        conn = self._live.get(client_id)
        if conn is not None:
            conn.close(ADMINISTRATIVE_ACTION, "disconnected by the platform")
        session = self._sessions.get(client_id)
        if end_session and session is not None:
            self._end_session(session)
        return conn is not None

    # --- connection handling -----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = _Connection(self, reader, writer)
        self._connections.add(conn)
        frames = FrameBuffer(self.max_packet_size)
        try:
            if self._closing:
                return
            if await self._handshake(conn, frames):
                await self._run(conn, frames)
        except PacketTooLarge as exc:
            self.counters.protocol_errors += 1
            conn.close(PACKET_TOO_LARGE, str(exc))
        except MalformedPacket as exc:
            self.counters.protocol_errors += 1
            conn.close(MALFORMED_PACKET, str(exc))
        except ProtocolError as exc:
            self.counters.protocol_errors += 1
            conn.close(exc.reason_code, str(exc))
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass  # the peer went away: handled like any other loss of connection below
        except Exception:  # a broker bug must cost one connection, not the listener
            log.exception("MQTT connection of client %r failed", conn.client_id)
        finally:
            conn.close()
            self._connection_lost(conn)
            self._connections.discard(conn)
            if task is not None:
                self._tasks.discard(task)

    async def _handshake(self, conn: _Connection, frames: FrameBuffer) -> bool:
        deadline = conn.loop.time() + self.connect_timeout
        while (frame := frames.next()) is None:
            remaining = deadline - conn.loop.time()
            if remaining <= 0:
                return False
            try:
                data = await asyncio.wait_for(conn.reader.read(_READ_CHUNK), remaining)
            except TimeoutError:
                return False
            if not data:
                return False
            frames.feed(data)
        first, body = frame
        if first != CONNECT << 4:
            return False  # the first packet must be CONNECT; anything else is closed without an answer
        return await self._on_connect(conn, body)

    async def _run(self, conn: _Connection, frames: FrameBuffer) -> None:
        reader = conn.reader
        loop = conn.loop
        dispatch = self._dispatch
        while True:
            while (frame := frames.next()) is not None:
                dispatch(conn, frame[0], frame[1])
                if conn.closed:
                    return
            # Backpressure: a client that lets its acknowledgements pile up unread is not read from either.
            # Only above the QoS 0 drop threshold: paho-style clients read and write on one thread, and
            # waiting on every small backlog could stall both sides.
            if conn.transport.get_write_buffer_size() > self.max_buffered_bytes:
                await conn.writer.drain()
            data = await reader.read(_READ_CHUNK)
            if not data or conn.closed:
                return
            conn.last_rx = loop.time()
            frames.feed(data)

    def _refuse(self, conn: _Connection, v5_code: int, v3_code: int | None, reason: str) -> bool:
        self.counters.connections_refused += 1
        if conn.version == 5:
            props = encode_properties(((REASON_STRING, reason),))
            conn.send(packet(0x20, bytes((0, v5_code)) + props))
        elif v3_code is not None:
            conn.send(packet(0x20, bytes((0, v3_code))))
        conn.close()
        return False

    async def _on_connect(self, conn: _Connection, body: bytes) -> bool:
        r = PacketReader(body)
        name = r.string()
        level = r.u8()
        if name != "MQTT" or level not in (4, 5):
            # MQTT 3.1 ("MQIsdp") and unknown levels get the 3.1.1 refusal, which every version can read.
            return self._refuse(conn, 0, V3_UNACCEPTABLE_PROTOCOL, "unsupported protocol version")
        conn.version = level
        v5 = level == 5
        flags = r.u8()
        if flags & 0x01:
            raise MalformedPacket("reserved CONNECT flag set")
        clean = bool(flags & 0x02)
        keepalive = r.u16()
        props = r.properties() if v5 else {}
        client_id = r.string()
        will: _Will | None = None
        if flags & 0x04:
            will_props = r.properties() if v5 else {}
            will_topic = r.string()
            will_payload = r.binary()
            will_qos = (flags >> 3) & 0x03
            if will_qos == 3:
                raise MalformedPacket("will QoS 3")
            if will_qos == 2:
                if v5:
                    return self._refuse(conn, QOS_NOT_SUPPORTED, None, "QoS 2 is not supported; the maximum is 1")
                will_qos = 1  # MQTT 3.1.1 has no way to say so: the will is delivered at QoS 1
            if not valid_topic_name(will_topic):
                return self._refuse(conn, TOPIC_NAME_INVALID, None, "invalid will topic")
            will = _Will(
                topic=will_topic,
                payload=will_payload,
                qos=will_qos,
                retain=bool(flags & 0x20),
                forwarded=_forwarded(will_props),
                expiry_interval=will_props.get(MESSAGE_EXPIRY_INTERVAL),
                delay=will_props.get(WILL_DELAY_INTERVAL, 0),
            )
        elif flags & 0x38:
            raise MalformedPacket("will QoS or retain set without a will")
        username = r.string() if flags & 0x80 else None
        if flags & 0x40:
            if not v5 and username is None:
                raise MalformedPacket("password without user name")
            password: bytes | None = r.binary()
        else:
            password = None
        if not r.at_end():
            raise MalformedPacket("bytes after the CONNECT payload")

        if AUTHENTICATION_METHOD in props:
            return self._refuse(conn, BAD_AUTHENTICATION_METHOD, None, "enhanced authentication is not supported")
        receive_maximum = props.get(RECEIVE_MAXIMUM, 65_535)
        client_max_packet = props.get(MAXIMUM_PACKET_SIZE, MQTT_MAX_PACKET)
        if receive_maximum == 0 or client_max_packet == 0:
            return self._refuse(conn, PROTOCOL_ERROR, None, "Receive Maximum and Maximum Packet Size must not be 0")
        assigned = False
        if not client_id:
            if not v5 and not clean:
                return self._refuse(
                    conn, CLIENT_IDENTIFIER_NOT_VALID, V3_IDENTIFIER_REJECTED, "a persistent session needs a client id"
                )
            client_id = f"auto-{secrets.token_hex(8)}"
            assigned = True

        password_text = password.decode("utf-8", "replace") if password is not None else None
        try:
            identity = await conn.loop.run_in_executor(None, self.auth.authenticate, client_id, username, password_text)
        except Exception:
            self.counters.hook_errors += 1
            log.exception("MQTT authentication hook failed for client %r", client_id)
            return self._refuse(conn, SERVER_UNAVAILABLE, V3_SERVER_UNAVAILABLE, "authentication is unavailable")
        if conn.closed or self._closing:
            return False
        if identity is None:
            return self._refuse(conn, BAD_USERNAME_OR_PASSWORD, V3_BAD_CREDENTIALS, "bad user name or password")

        # From here on nothing awaits: the session table changes in one step.
        # MQTT 3.1.1 clean session = 0 keeps the session until the client comes back (no expiry in 3.1.1).
        session_expiry = props.get(SESSION_EXPIRY_INTERVAL, 0) if v5 else (0 if clean else NEVER_EXPIRES)
        previous = self._live.get(client_id)
        if previous is not None:
            previous.close(SESSION_TAKEN_OVER, "another connection took over this client id")
        session = self._sessions.get(client_id)
        if session is not None and (clean or session.identity != identity):
            # A different principal never inherits another's subscriptions or queued messages.
            self._end_session(session)
            session = None
        session_present = session is not None
        if session is None:
            session = Session(client_id, identity, session_expiry, self.max_queued, self.counters)
            self._sessions[client_id] = session
        else:
            for timer in (session.expiry_timer, session.will_timer):
                if timer is not None:
                    timer.cancel()
            session.expiry_timer = session.will_timer = session.pending_will = None
        session.expiry_interval = session_expiry
        conn.client_id = client_id
        conn.identity = identity
        conn.session = session
        conn.will = will
        conn.keepalive = keepalive
        conn.window = min(receive_maximum, self.max_inflight)
        conn.client_max_packet = client_max_packet
        conn.problem_info = props.get(REQUEST_PROBLEM_INFORMATION, 1) == 1

        ack_flags = 1 if session_present else 0
        if v5:
            connack_props: list[tuple[int, Any]] = [
                (MAXIMUM_QOS, 1),
                (MAXIMUM_PACKET_SIZE, self.max_packet_size),
                (SUBSCRIPTION_IDENTIFIER_AVAILABLE, 0),
            ]
            if assigned:
                connack_props.append((ASSIGNED_CLIENT_IDENTIFIER, client_id))
            conn.send(packet(0x20, bytes((ack_flags, SUCCESS)) + encode_properties(connack_props)))
        else:
            conn.send(packet(0x20, bytes((ack_flags, 0))))
        conn.accepted = True
        self._live[client_id] = conn
        self.counters.connections_total += 1
        self.counters.connections_current += 1
        self._arm_keepalive(conn)
        session.attach(conn)
        return True

    def _arm_keepalive(self, conn: _Connection) -> None:
        if not conn.keepalive:
            return
        limit = conn.keepalive * 1.5

        def check() -> None:
            if conn.closed:
                return
            idle = conn.loop.time() - conn.last_rx
            if idle >= limit:
                self.counters.keepalive_timeouts += 1
                conn.close(KEEP_ALIVE_TIMEOUT, "nothing received within 1.5 times the keep alive")
            else:
                conn.keepalive_timer = conn.loop.call_later(limit - idle, check)

        conn.keepalive_timer = conn.loop.call_later(limit, check)

    def _connection_lost(self, conn: _Connection) -> None:
        if conn.lost:
            return
        conn.lost = True
        if conn.keepalive_timer is not None:
            conn.keepalive_timer.cancel()
        if not conn.accepted:
            return
        self.counters.connections_current -= 1
        if self._live.get(conn.client_id) is conn:
            del self._live[conn.client_id]
        session = conn.session
        if session is None or session.outlet is not conn:
            return
        session.detach()
        if self._closing:
            return  # shutting down: no wills, no expiry timers
        will = None if conn.clean_disconnect else conn.will
        if session.expiry_interval == 0:
            if will is not None:
                self._publish_will(conn.client_id, conn.identity, will)
            self._end_session(session)
            return
        if will is not None:
            if will.delay:
                session.pending_will = (conn.identity, will)
                delay = min(will.delay, session.expiry_interval)
                session.will_timer = conn.loop.call_later(delay, self._fire_will, session)
            else:
                self._publish_will(conn.client_id, conn.identity, will)
        if session.expiry_interval != NEVER_EXPIRES:
            session.expiry_timer = conn.loop.call_later(session.expiry_interval, self._expire_session, session)

    def _fire_will(self, session: Session) -> None:
        pending, session.pending_will, session.will_timer = session.pending_will, None, None
        if pending is not None:
            self._publish_will(session.client_id, pending[0], pending[1])

    def _expire_session(self, session: Session) -> None:
        session.expiry_timer = None
        if session.outlet is None and self._sessions.get(session.client_id) is session:
            self._end_session(session)

    def _end_session(self, session: Session) -> None:
        if self._sessions.get(session.client_id) is session:
            del self._sessions[session.client_id]
        for timer in (session.expiry_timer, session.will_timer):
            if timer is not None:
                timer.cancel()
        session.expiry_timer = session.will_timer = None
        if session.pending_will is not None:
            self._fire_will(session)
        for subscription in list(session.subscriptions.values()):
            self._remove_subscription(subscription)
        leftovers = [*session.inflight.values(), *session.queue]
        session.inflight.clear()
        session.queue.clear()
        # Messages that came through a shared subscription and were never acknowledged go to another
        # member of the group (MQTT 5 section 4.8.2): a telemetry process that leaves loses nothing.
        for pending in leftovers:
            if pending.group is not None:
                member = pending.group.pick()
                if member is not None:
                    qos = min(pending.message.qos, member.qos)
                    member.session.deliver(Pending(pending.message, qos, pending.retain, pending.group))

    # --- packets -------------------------------------------------------------------------------

    def _dispatch(self, conn: _Connection, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == PUBLISH:
            self._on_publish(conn, first, body)
        elif kind == PUBACK:
            if first != 0x40:
                raise MalformedPacket("bad PUBACK flags")
            session = conn.session
            if session is not None:
                session.acknowledge(PacketReader(body).u16())
        elif kind == PINGREQ:
            conn.send(b"\xd0\x00")
        elif kind == SUBSCRIBE:
            if first != 0x82:
                raise MalformedPacket("bad SUBSCRIBE flags")
            self._on_subscribe(conn, body)
        elif kind == UNSUBSCRIBE:
            if first != 0xA2:
                raise MalformedPacket("bad UNSUBSCRIBE flags")
            self._on_unsubscribe(conn, body)
        elif kind == DISCONNECT:
            self._on_disconnect(conn, body)
        elif kind in (5, 6, 7):  # PUBREC, PUBREL, PUBCOMP
            raise ProtocolError(QOS_NOT_SUPPORTED, "QoS 2 is not supported")
        else:
            raise ProtocolError(PROTOCOL_ERROR, f"unexpected packet type {kind}")

    def _may_publish(self, identity: Any, topic: str) -> bool:
        try:
            return bool(self.auth.may_publish(identity, topic))
        except Exception:
            self.counters.hook_errors += 1
            log.exception("MQTT publish authorisation hook failed")
            return False

    def _on_publish(self, conn: _Connection, first: int, body: bytes) -> None:
        qos = (first >> 1) & 0x03
        if qos == 3:
            raise MalformedPacket("PUBLISH with QoS 3")
        if qos == 2:
            raise ProtocolError(QOS_NOT_SUPPORTED, "QoS 2 is not supported; publish with QoS 0 or 1")
        r = PacketReader(body)
        topic = r.string()
        topic_wire = body[: r.pos]
        packet_id = r.u16() if qos else 0
        if qos and not packet_id:
            raise MalformedPacket("packet identifier 0")
        forwarded: tuple[tuple[int, Any], ...] = ()
        properties_wire = EMPTY_PROPERTIES
        expires_at: float | None = None
        if conn.version == 5:
            if r.pos < len(body) and body[r.pos] == 0:
                r.pos += 1  # no properties: the usual case, skip the decoder
            else:
                props = r.properties()
                if TOPIC_ALIAS in props:
                    raise ProtocolError(TOPIC_ALIAS_INVALID, "topic aliases are not supported (Topic Alias Maximum 0)")
                forwarded = _forwarded(props)
                properties_wire = encode_properties(forwarded)
                if MESSAGE_EXPIRY_INTERVAL in props:
                    expires_at = time.monotonic() + props[MESSAGE_EXPIRY_INTERVAL]
        if not valid_topic_name(topic):
            raise ProtocolError(TOPIC_NAME_INVALID, "invalid topic name")
        payload = r.rest()
        self.counters.messages_in += 1
        if not self._may_publish(conn.identity, topic):
            self.counters.publishes_denied += 1
            if qos:
                # MQTT 5 says why; MQTT 3.1.1 cannot, so the message is acknowledged and dropped (as Mosquitto).
                conn.send_puback(packet_id, NOT_AUTHORIZED, "not authorised to publish to this topic")
            return
        retain = bool(first & 0x01)
        message = Message(
            topic, topic_wire, payload, qos, retain, forwarded, properties_wire, expires_at, conn.client_id
        )
        if retain:
            if payload:
                self._retained[topic] = message
            else:
                self._retained.pop(topic, None)
        matched = self._route(message)
        if qos:
            # Routing is synchronous: by now the message sits in every matching session's window or queue.
            conn.send_puback(packet_id, SUCCESS if matched else NO_MATCHING_SUBSCRIBERS)

    def _publish_will(self, client_id: str, identity: Any, will: _Will) -> None:
        if not self._may_publish(identity, will.topic):
            self.counters.publishes_denied += 1
            return
        expires_at = None if will.expiry_interval is None else time.monotonic() + will.expiry_interval
        message = Message(
            will.topic,
            encode_str(will.topic),
            will.payload,
            will.qos,
            will.retain,
            will.forwarded,
            encode_properties(will.forwarded),
            expires_at,
            client_id,
        )
        if will.retain:
            if will.payload:
                self._retained[will.topic] = message
            else:
                self._retained.pop(will.topic, None)
        self._route(message)

    def _route(self, message: Message) -> int:
        """Hand a message to every matching subscription; returns how many subscriptions matched.

        A session whose queue is full drops the message; that is counted (`dropped_queue_full` and the
        session's `dropped`), never logged per message.
        """
        topic = message.topic
        matched = 0
        found = self._subscriptions.match(topic)
        if len(found) == 1:
            for subscription in found[0].values():
                matched += 1
                if subscription.no_local and subscription.session.client_id == message.publisher:
                    continue
                subscription.session.deliver(
                    Pending(
                        message,
                        min(message.qos, subscription.qos),
                        message.retain and subscription.retain_as_published,
                    ),
                )
        elif found:
            # Overlapping filters of one client: one copy, at the highest QoS granted (MQTT 3.1.1 4.3 / 5 4.7).
            best: dict[str, tuple[Session, int, bool]] = {}
            for entries in found:
                for client_id, subscription in entries.items():
                    matched += 1
                    if subscription.no_local and client_id == message.publisher:
                        continue
                    qos = min(message.qos, subscription.qos)
                    retain = message.retain and subscription.retain_as_published
                    previous = best.get(client_id)
                    if previous is not None:
                        qos = max(qos, previous[1])
                        retain = retain or previous[2]
                    best[client_id] = (subscription.session, qos, retain)
            for session, qos, retain in best.values():
                session.deliver(Pending(message, qos, retain))
        for groups in self._groups.match(topic):
            for group in groups.values():
                member = group.pick()
                if member is not None:
                    matched += 1
                    retain = message.retain and member.retain_as_published
                    member.session.deliver(Pending(message, min(message.qos, member.qos), retain, group))
        return matched

    def _on_subscribe(self, conn: _Connection, body: bytes) -> None:
        session = conn.session
        assert session is not None
        v5 = conn.version == 5
        r = PacketReader(body)
        packet_id = r.u16()
        if v5:
            r.properties()  # a Subscription Identifier is ignored: CONNACK said they are not available
        requests: list[tuple[str, int]] = []
        while not r.at_end():
            requests.append((r.string(), r.u8()))
        if not requests:
            raise ProtocolError(PROTOCOL_ERROR, "SUBSCRIBE without a topic filter")
        codes = bytearray()
        send_retained: list[Subscription] = []
        denied = False
        for topic_filter, options in requests:
            requested_qos = options & 0x03
            if requested_qos == 3 or options & (0xC0 if v5 else 0xFC):
                raise MalformedPacket("reserved subscription option bits set")
            retain_handling = (options >> 4) & 0x03
            if retain_handling == 3:
                raise MalformedPacket("retain handling 3")
            parsed = parse_subscription(topic_filter)
            if parsed is None:
                codes.append(TOPIC_FILTER_INVALID if v5 else V3_SUBACK_FAILURE)
                continue
            group, match_filter = parsed
            no_local = v5 and bool(options & 0x04)
            if group is not None and no_local:
                raise ProtocolError(PROTOCOL_ERROR, "No Local on a shared subscription")
            try:
                allowed = bool(self.auth.may_subscribe(conn.identity, topic_filter))
            except Exception:
                self.counters.hook_errors += 1
                log.exception("MQTT subscribe authorisation hook failed")
                allowed = False
            if not allowed:
                self.counters.subscriptions_denied += 1
                denied = True
                codes.append(NOT_AUTHORIZED if v5 else V3_SUBACK_FAILURE)
                continue
            granted = min(requested_qos, GRANTED_QOS_1)
            existed = topic_filter in session.subscriptions
            subscription = Subscription(
                session,
                topic_filter,
                match_filter,
                granted,
                group,
                no_local,
                v5 and bool(options & 0x08),
            )
            self._add_subscription(subscription)
            codes.append(granted)
            # Retained messages are not sent to shared subscriptions (MQTT 5 section 4.8.2).
            if group is None and (retain_handling == 0 or (retain_handling == 1 and not existed)):
                send_retained.append(subscription)
        header = packet_id.to_bytes(2, "big")
        if v5:
            reason = "not authorised to subscribe to this topic filter" if denied else None
            conn.send(packet(0x90, header + conn.reason_properties(reason) + bytes(codes)))
        else:
            conn.send(packet(0x90, header + bytes(codes)))
        for subscription in send_retained:
            self._send_retained(subscription)

    def _send_retained(self, subscription: Subscription) -> None:
        now = time.monotonic()
        for topic, message in list(self._retained.items()):
            if message.expires_at is not None and now >= message.expires_at:
                del self._retained[topic]
                continue
            if topic_matches(subscription.match_filter, topic):
                subscription.session.deliver(Pending(message, min(message.qos, subscription.qos), True))

    def _add_subscription(self, subscription: Subscription) -> None:
        session = subscription.session
        session.subscriptions[subscription.topic_filter] = subscription
        if subscription.group is None:
            self._subscriptions.put(subscription.match_filter, session.client_id, subscription)
            return
        group = self._groups.get(subscription.match_filter, subscription.group)
        if group is None:
            group = SharedGroup(subscription.group, subscription.match_filter)
            self._groups.put(subscription.match_filter, subscription.group, group)
        group.add(subscription)

    def _remove_subscription(self, subscription: Subscription) -> None:
        session = subscription.session
        session.subscriptions.pop(subscription.topic_filter, None)
        if subscription.group is None:
            self._subscriptions.remove(subscription.match_filter, session.client_id)
            return
        group = self._groups.get(subscription.match_filter, subscription.group)
        if group is not None:
            group.discard(session.client_id)
            if not group.members:
                self._groups.remove(subscription.match_filter, subscription.group)

    def _on_unsubscribe(self, conn: _Connection, body: bytes) -> None:
        session = conn.session
        assert session is not None
        r = PacketReader(body)
        packet_id = r.u16()
        if conn.version == 5:
            r.properties()
        codes = bytearray()
        while not r.at_end():
            subscription = session.subscriptions.get(r.string())
            if subscription is None:
                codes.append(NO_SUBSCRIPTION_EXISTED)
            else:
                self._remove_subscription(subscription)
                codes.append(SUCCESS)
        if not codes:
            raise ProtocolError(PROTOCOL_ERROR, "UNSUBSCRIBE without a topic filter")
        if conn.version == 5:
            conn.send(packet(0xB0, packet_id.to_bytes(2, "big") + EMPTY_PROPERTIES + bytes(codes)))
        else:
            conn.send(b"\xb0\x02" + packet_id.to_bytes(2, "big"))

    def _on_disconnect(self, conn: _Connection, body: bytes) -> None:
        reason_code = SUCCESS
        if conn.version == 5 and body:
            r = PacketReader(body)
            reason_code = r.u8()
            props = {} if r.at_end() else r.properties()
            session = conn.session
            new_expiry = props.get(SESSION_EXPIRY_INTERVAL)
            if new_expiry is not None and session is not None:
                if session.expiry_interval == 0 and new_expiry:
                    raise ProtocolError(PROTOCOL_ERROR, "session expiry cannot be set at DISCONNECT when it was 0")
                session.expiry_interval = new_expiry
        conn.clean_disconnect = reason_code != DISCONNECT_WITH_WILL
        conn.close()


def _forwarded(props: dict[int, Any]) -> tuple[tuple[int, Any], ...]:
    """The properties of a PUBLISH (or will) that go on to subscribers, in a stable order."""
    if not props:
        return ()
    kept = [(ident, props[ident]) for ident in FORWARDED_PUBLISH_PROPERTIES if ident in props]
    kept.extend((USER_PROPERTY, pair) for pair in props.get(USER_PROPERTY, ()))
    return tuple(kept)
