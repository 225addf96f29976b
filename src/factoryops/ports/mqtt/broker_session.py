"""Sessions of the embedded broker: subscriptions, the QoS 1 in-flight window and the queue of a client.

A session outlives its connection when the client asked for it (MQTT 5 session expiry, MQTT 3.1.1
clean session = 0). While it has no connection, QoS 1 messages wait in its queue, bounded so that
a subscriber gone for good cannot exhaust the broker's memory; the overflow is counted, not hidden.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True, eq=False)
class Message:
    """One application message as routed: shared, never modified, by every session it goes to."""

    topic: str
    topic_wire: bytes  # the topic as an MQTT string, encoded once for every delivery
    payload: bytes
    qos: int
    retain: bool
    forwarded: tuple[tuple[int, Any], ...] = ()  # MQTT 5 properties passed on to subscribers
    properties_wire: bytes = b"\x00"  # `forwarded` encoded once, when there is no expiry to recompute
    expires_at: float | None = None  # time.monotonic() deadline from the Message Expiry Interval
    publisher: str | None = None  # client id, for the No Local subscription option


@dataclass(slots=True, eq=False)
class Pending:
    """A message on its way to one session, with the QoS and retain flag of that delivery."""

    message: Message
    qos: int
    retain: bool
    group: SharedGroup | None = None  # set when it came through a shared subscription


@dataclass(slots=True, eq=False)
class Subscription:
    session: Session
    topic_filter: str  # as the client sent it, `$share/<group>/` included
    match_filter: str  # without the `$share/<group>/` prefix
    qos: int
    group: str | None = None
    no_local: bool = False
    retain_as_published: bool = False


class Outlet(Protocol):
    """What a live connection offers the session that it serves."""

    window: int  # how many QoS 1 messages may be unacknowledged at once

    def send_publish(self, pending: Pending, packet_id: int, dup: bool) -> bool:
        """Send a PUBLISH; False when it was not sent (too large for the client, or a QoS 0 to a slow reader)."""
        ...


@dataclass
class BrokerStats:
    """Counters since the broker started; read them through `MqttBroker.stats()`."""

    connections_total: int = 0  # CONNECTs accepted
    connections_current: int = 0
    connections_refused: int = 0  # bad credentials, unsupported version, invalid client id, hook failure
    messages_in: int = 0  # PUBLISH packets received (denied ones included)
    messages_out: int = 0  # PUBLISH packets sent to subscribers (re-sends included)
    publishes_denied: int = 0
    subscriptions_denied: int = 0
    dropped_queue_full: int = 0  # QoS 1 messages refused because a session's queue was at max_queued
    dropped_slow_consumer: int = 0  # QoS 0 messages not sent because the subscriber was not reading
    dropped_too_large: int = 0  # messages above the subscriber's own Maximum Packet Size
    dropped_expired: int = 0  # queued messages whose Message Expiry Interval ran out
    protocol_errors: int = 0
    keepalive_timeouts: int = 0
    hook_errors: int = 0  # exceptions raised by the auth hook (the request is refused)
    revoked: int = 0  # clients disconnected because the auth hook revoked their right to be connected


class SharedGroup:
    """The members of one shared subscription (`$share/<name>/<filter>`); each message goes to one of them."""

    __slots__ = ("_cursor", "_order", "match_filter", "members", "name")

    def __init__(self, name: str, match_filter: str) -> None:
        self.name = name
        self.match_filter = match_filter
        self.members: dict[str, Subscription] = {}
        self._order: list[str] = []
        self._cursor = 0

    def add(self, subscription: Subscription) -> None:
        client_id = subscription.session.client_id
        if client_id not in self.members:
            self._order.append(client_id)
        self.members[client_id] = subscription

    def discard(self, client_id: str) -> None:
        if self.members.pop(client_id, None) is not None:
            self._order.remove(client_id)

    def pick(self) -> Subscription | None:
        """Round robin over connected members, skipping those whose in-flight window is full while others
        have room; with no member connected, round robin over the sessions that wait for their client."""
        order = self._order
        count = len(order)
        if not count:
            return None
        fallback = -1
        for step in range(count):
            index = (self._cursor + step) % count
            session = self.members[order[index]].session
            outlet = session.outlet
            if outlet is not None:
                if len(session.inflight) < outlet.window and not session.queue:
                    self._cursor = index + 1
                    return self.members[order[index]]
                if fallback < 0:
                    fallback = index
        if fallback < 0:
            fallback = self._cursor % count
        self._cursor = fallback + 1
        return self.members[order[fallback]]


SENT, QUEUED, NOT_DELIVERED, DROPPED = range(4)


@dataclass(eq=False)
class Session:
    client_id: str
    identity: Any
    expiry_interval: int  # seconds after disconnect; 0 ends with the connection, NEVER_EXPIRES never
    max_queued: int
    counters: BrokerStats
    outlet: Outlet | None = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    inflight: dict[int, Pending] = field(default_factory=dict)  # insertion order = send order
    queue: deque[Pending] = field(default_factory=deque)
    dropped: int = 0
    expiry_timer: Any = None  # asyncio.TimerHandle of the session expiry while disconnected
    will_timer: Any = None  # asyncio.TimerHandle of a delayed will message
    pending_will: Any = None  # the delayed will itself, sent early if the session ends first
    _next_id: int = 0

    def _packet_id(self) -> int:
        while True:
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self.inflight:
                return self._next_id

    def deliver(self, pending: Pending) -> int:
        outlet = self.outlet
        if pending.qos == 0:
            # QoS 0 is not queued for an absent client (as Mosquitto's default): it promised nothing.
            if outlet is None:
                return NOT_DELIVERED
            return SENT if outlet.send_publish(pending, 0, False) else NOT_DELIVERED
        if outlet is not None and not self.queue and len(self.inflight) < outlet.window:
            packet_id = self._packet_id()
            if outlet.send_publish(pending, packet_id, False):
                self.inflight[packet_id] = pending
                return SENT
            return NOT_DELIVERED
        if len(self.queue) >= self.max_queued:
            self.dropped += 1
            self.counters.dropped_queue_full += 1
            return DROPPED
        self.queue.append(pending)
        return QUEUED

    def acknowledge(self, packet_id: int) -> None:
        if self.inflight.pop(packet_id, None) is not None and self.queue:
            self.drain()

    def drain(self) -> None:
        """Send queued messages while the client's window has room, oldest first."""
        outlet = self.outlet
        if outlet is None:
            return
        queue = self.queue
        inflight = self.inflight
        now = 0.0
        while queue and len(inflight) < outlet.window:
            pending = queue.popleft()
            expires_at = pending.message.expires_at
            if expires_at is not None:
                now = now or time.monotonic()
                if now >= expires_at:
                    self.counters.dropped_expired += 1
                    continue
            packet_id = self._packet_id()
            if outlet.send_publish(pending, packet_id, False):
                inflight[packet_id] = pending

    def attach(self, outlet: Outlet) -> None:
        """A client (re)connected: re-send what it had not acknowledged, with DUP, then the queue."""
        self.outlet = outlet
        for packet_id, pending in list(self.inflight.items()):
            if not outlet.send_publish(pending, packet_id, True):
                del self.inflight[packet_id]
        self.drain()

    def detach(self) -> None:
        self.outlet = None
