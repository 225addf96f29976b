"""MQTT 3.1.1 / 5.0 wire format for the embedded broker: framing, primitive types, properties, reason codes.

Only what a broker needs: it decodes what clients send and encodes what a server sends. Nothing
here does I/O, so the framing and the property codec are tested without sockets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Packet types (the high nibble of the first byte).
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14
AUTH = 15

# MQTT 5 reason codes the broker uses.
SUCCESS = 0x00
GRANTED_QOS_1 = 0x01
DISCONNECT_WITH_WILL = 0x04
NO_MATCHING_SUBSCRIBERS = 0x10
NO_SUBSCRIPTION_EXISTED = 0x11
UNSPECIFIED_ERROR = 0x80
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
UNSUPPORTED_PROTOCOL_VERSION = 0x84
CLIENT_IDENTIFIER_NOT_VALID = 0x85
BAD_USERNAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87
SERVER_UNAVAILABLE = 0x88
SERVER_SHUTTING_DOWN = 0x8B
BAD_AUTHENTICATION_METHOD = 0x8C
KEEP_ALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90
PACKET_TOO_LARGE = 0x95
ADMINISTRATIVE_ACTION = 0x98
QOS_NOT_SUPPORTED = 0x9B
TOPIC_ALIAS_INVALID = 0x94
SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E

# MQTT 3.1.1 CONNACK return codes.
V3_ACCEPTED = 0x00
V3_UNACCEPTABLE_PROTOCOL = 0x01
V3_IDENTIFIER_REJECTED = 0x02
V3_SERVER_UNAVAILABLE = 0x03
V3_BAD_CREDENTIALS = 0x04
V3_NOT_AUTHORIZED = 0x05
V3_SUBACK_FAILURE = 0x80

# MQTT 5 property identifiers.
PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)

PROPERTY_TYPES: dict[int, int] = {
    PAYLOAD_FORMAT_INDICATOR: _BYTE,
    MESSAGE_EXPIRY_INTERVAL: _U32,
    CONTENT_TYPE: _STR,
    RESPONSE_TOPIC: _STR,
    CORRELATION_DATA: _BIN,
    SUBSCRIPTION_IDENTIFIER: _VARINT,
    SESSION_EXPIRY_INTERVAL: _U32,
    ASSIGNED_CLIENT_IDENTIFIER: _STR,
    SERVER_KEEP_ALIVE: _U16,
    AUTHENTICATION_METHOD: _STR,
    AUTHENTICATION_DATA: _BIN,
    REQUEST_PROBLEM_INFORMATION: _BYTE,
    WILL_DELAY_INTERVAL: _U32,
    REQUEST_RESPONSE_INFORMATION: _BYTE,
    RESPONSE_INFORMATION: _STR,
    SERVER_REFERENCE: _STR,
    REASON_STRING: _STR,
    RECEIVE_MAXIMUM: _U16,
    TOPIC_ALIAS_MAXIMUM: _U16,
    TOPIC_ALIAS: _U16,
    MAXIMUM_QOS: _BYTE,
    RETAIN_AVAILABLE: _BYTE,
    USER_PROPERTY: _PAIR,
    MAXIMUM_PACKET_SIZE: _U32,
    WILDCARD_SUBSCRIPTION_AVAILABLE: _BYTE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE: _BYTE,
    SHARED_SUBSCRIPTION_AVAILABLE: _BYTE,
}

# The properties of a PUBLISH that the server forwards unchanged to subscribers (MQTT 5 section 3.3.2.3);
# the message expiry is forwarded too, but recomputed at delivery.
FORWARDED_PUBLISH_PROPERTIES = (PAYLOAD_FORMAT_INDICATOR, CONTENT_TYPE, RESPONSE_TOPIC, CORRELATION_DATA)

NEVER_EXPIRES = 0xFFFFFFFF


class MalformedPacket(Exception):
    """The bytes are not a valid MQTT packet; the connection is closed (0x81 on MQTT 5)."""


class ProtocolError(Exception):
    """A well-formed packet the broker refuses; the connection is closed with this reason code on MQTT 5."""

    def __init__(self, reason_code: int, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class PacketTooLarge(Exception):
    """A packet above the broker's maximum packet size; the connection is closed (0x95 on MQTT 5)."""


def encode_varint(value: int) -> bytes:
    if value < 128:  # nearly every packet the broker sends: skip the loop
        return bytes((value,))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_str(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def encode_bin(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def encode_properties(props: Iterable[tuple[int, Any]]) -> bytes:
    """Encode properties, length prefix included; user properties are (0x26, (name, value)) pairs."""
    body = bytearray()
    for ident, value in props:
        kind = PROPERTY_TYPES[ident]
        body.append(ident)
        if kind == _BYTE:
            body.append(value)
        elif kind == _U16:
            body += value.to_bytes(2, "big")
        elif kind == _U32:
            body += value.to_bytes(4, "big")
        elif kind == _VARINT:
            body += encode_varint(value)
        elif kind == _STR:
            body += encode_str(value)
        elif kind == _BIN:
            body += encode_bin(value)
        else:
            body += encode_str(value[0]) + encode_str(value[1])
    return encode_varint(len(body)) + bytes(body)


EMPTY_PROPERTIES = b"\x00"


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_varint(len(body)) + body


class PacketReader:
    """Sequential reader over one packet's variable header and payload; every overrun is a MalformedPacket."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise MalformedPacket("packet shorter than its fields")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise MalformedPacket("packet shorter than its fields")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u16(self) -> int:
        return int.from_bytes(self._take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self._take(4), "big")

    def varint(self) -> int:
        value = 0
        for shift in (0, 7, 14, 21):
            byte = self.u8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise MalformedPacket("variable byte integer longer than 4 bytes")

    def binary(self) -> bytes:
        return self._take(self.u16())

    def string(self) -> str:
        raw = self._take(self.u16())
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPacket("string is not valid UTF-8") from exc
        if "\x00" in text:
            raise MalformedPacket("string contains U+0000")
        return text

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk

    def properties(self) -> dict[int, Any]:
        """Decode an MQTT 5 property list; user properties and subscription identifiers become lists."""
        length = self.varint()
        end = self.pos + length
        if end > len(self.data):
            raise MalformedPacket("property length beyond the packet")
        props: dict[int, Any] = {}
        while self.pos < end:
            ident = self.varint()
            kind = PROPERTY_TYPES.get(ident)
            value: Any
            if kind is None:
                raise MalformedPacket(f"unknown property 0x{ident:02x}")
            if kind == _BYTE:
                value = self.u8()
            elif kind == _U16:
                value = self.u16()
            elif kind == _U32:
                value = self.u32()
            elif kind == _VARINT:
                value = self.varint()
            elif kind == _STR:
                value = self.string()
            elif kind == _BIN:
                value = self.binary()
            else:
                value = (self.string(), self.string())
            if ident in (USER_PROPERTY, SUBSCRIPTION_IDENTIFIER):
                props.setdefault(ident, []).append(value)
            elif ident in props:
                raise ProtocolError(PROTOCOL_ERROR, f"property 0x{ident:02x} given twice")
            else:
                props[ident] = value
        if self.pos != end:
            raise MalformedPacket("property list overran its length")
        return props


class FrameBuffer:
    """Splits a byte stream into packets (first byte, body), refusing any above max_size before it arrives whole."""

    __slots__ = ("_buf", "_pos", "max_size")

    def __init__(self, max_size: int) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_size = max_size

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next(self) -> tuple[int, bytes] | None:
        buf = self._buf
        start = self._pos
        size = len(buf)
        if size - start < 2:
            return None
        length = 0
        shift = 0
        i = start + 1
        while True:
            if i >= size:
                return None
            byte = buf[i]
            i += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MalformedPacket("remaining length longer than 4 bytes")
        end = i + length
        if end - start > self.max_size:
            raise PacketTooLarge(f"packet of {end - start} bytes exceeds the maximum of {self.max_size}")
        if end > size:
            return None
        self._pos = end
        return buf[start], bytes(buf[i:end])
