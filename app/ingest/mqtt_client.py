"""The ingest worker's MQTT side: where the broker is; paho's client, reading no more while
the worker's inbox is full; the inbox itself (bounded in messages and bytes), which paho's
network thread fills and the worker's main thread empties in batches (app/ingest/worker.py).

Two client classes. :class:`PausingClient` is paho's client with the pause (a feature: it
bounds the worker's memory, and keeps the connection alive while the inbox is full).
:class:`Client` adds paho's read path made faster (``SPEEDUPS=on``): several packets read
per loop, a QoS 1 PUBLISH decoded without its properties, no topic matching. Both touch
paho's internals, pinned in pyproject.toml and constraints.txt and checked against paho's
own behaviour in tests/devices/test_worker_failures.py (docs/performance.md lists them).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

log = logging.getLogger("app.ingest.worker")

#: How long paho's thread waits for room in a full inbox before it loops (writes, pings).
_PAUSE_S = 0.05
#: Packets read in one go before paho's thread loops (writes the PUBACKs queued meanwhile).
_READ_AT_ONCE = 100


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, parsed once from ``MQTT_URL`` (``mqtt://user:pass@host:port``;
    ``mqtts://`` for TLS)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"expected mqtt://host:port or mqtts://host:port, got {url!r}")
        if not parts.hostname:
            raise ValueError("no host in the URL")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the port is not a number between 0 and 65535") from None
        tls = parts.scheme in ("mqtts", "ssl")
        unquote = urllib.parse.unquote
        return cls(
            host=parts.hostname,
            port=port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=tls,
        )

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


class Received(NamedTuple):
    """A PUBLISH as it came off the wire, and on which connection (for its PUBACK).

    A tuple, not a frozen dataclass: one is made per message on paho's thread, and a frozen
    dataclass's ``__init__`` costs several times as much."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: datetime
    connection: int


class PausingClient(mqtt.Client):
    """paho's client, reading no more while its ``inbox`` (if it has one) is full.

    A full inbox pauses the reading of the socket, not paho's thread: the thread goes on
    sending what the main thread queues (PUBACKs) and PINGREQs, so the broker sees a live
    client however long a batch takes, and TCP holds the broker back meanwhile. (Before, a
    full inbox blocked paho's thread inside ``on_message``: nothing went out meanwhile, and
    once it read again, paho's keep-alive could count the time blocked as silence from the
    broker and drop the connection.)"""

    inbox: Inbox | None = None

    def _paused(self) -> bool:
        """Wait a little for room in a full inbox; True if it is still full.

        Reading nothing is our choice, not silence from the broker: paho would take it for
        a dead connection once a PINGREQ went unanswered for a keep-alive interval (the
        PINGRESP waits in the socket behind the messages we do not read). It still pings
        every interval, so the broker hears from us."""
        inbox = self.inbox
        if inbox is None or inbox.wait_for_room(_PAUSE_S):
            return False
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()  # paho's clock
        return True

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho's own read, unless the inbox is full (paho's loop calls this when the socket
        is readable, then writes what is queued and checks the keep-alive)."""
        if self._paused():
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super().loop_read(max_packets)


class Client(PausingClient):
    """:class:`PausingClient` with a faster read path (``SPEEDUPS=on``): it hands every
    PUBLISH straight to ``on_message``, decodes a QoS 1 PUBLISH without its properties, and
    reads up to ``_READ_AT_ONCE`` packets per loop.

    paho first matches each message's topic against the callbacks added with
    ``message_callback_add`` (none here): that match cost as much as the rest of our own
    handling of a message on paho's thread."""

    def message_callback_add(self, sub, callback) -> None:
        raise NotImplementedError("the ingest worker's clients take every message in on_message")

    def _handle_publish(self) -> MQTTErrorCode:
        """A QoS 1 PUBLISH under manual acks, read without building its MQTT 5 properties
        (paho makes a Properties object per message, a good part of its cost; none is read
        here). Anything else is left to paho."""
        header = self._in_packet["command"]
        if (header & 0x06) != 0x02 or not self._manual_ack or self._protocol != mqtt.MQTTv5:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        try:
            end = 2 + ((packet[0] << 8) | packet[1])
            topic = bytes(packet[2:end])
            mid = (packet[end] << 8) | packet[end + 1]
            pos, length, shift = end + 2, 0, 0
            while True:  # the properties' length, a variable byte integer; then skip them
                byte = packet[pos]
                pos += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise MalformedPacket("properties length over 4 bytes")
            pos += length
            if pos > len(packet):
                raise MalformedPacket("properties longer than the packet")
        except IndexError:
            raise MalformedPacket("PUBLISH shorter than its header") from None
        message = mqtt.MQTTMessage(mid, topic)
        message.qos = 1
        message.dup = bool(header & 0x08)
        message.retain = bool(header & 0x01)
        message.payload = bytes(packet[pos:])
        message.timestamp = time.monotonic()
        self._handle_on_message(message)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            on_message(self, self._userdata, message)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read the packets waiting in the socket, up to ``_READ_AT_ONCE`` (paho reads one
        per call here, then selects and loops again: as costly as reading it), unless the
        inbox is full."""
        if self._paused():
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        inbox = self.inbox
        for _ in range(_READ_AT_ONCE):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN or (inbox is not None and inbox.full()):
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def client_class(speedups: bool) -> type[PausingClient]:
    """:class:`Client`, or :class:`PausingClient` (paho's own read path) with SPEEDUPS=off."""
    return Client if speedups else PausingClient


class Inbox:
    """What paho's thread hands to the main thread, bounded in messages and in bytes.

    The bound is what holds the worker's memory (Mosquitto 2.0.11 stops keeping to a client's
    Receive Maximum once that client publishes too). paho's thread keeps it by reading
    nothing while the inbox is full (:class:`PausingClient`); a message it has read is always
    taken, so the inbox exceeds its bound by at most the packets paho reads in one go."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self._items: deque[Received] = deque()
        self._bytes = 0
        self._changed = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.max_messages or self._bytes >= self.max_bytes

    def put(self, item: Received) -> None:
        """Add a message; never waits."""
        with self._changed:
            self._items.append(item)
            self._bytes += len(item.payload)
            self._changed.notify_all()

    def wait_for_room(self, timeout: float) -> bool:
        """True once the inbox is not full; False if it still is after ``timeout``."""
        if not self.full():
            return True
        with self._changed:
            return self._changed.wait_for(lambda: not self.full(), timeout)

    def take(self, max_messages: int, max_bytes: int, wait: float, linger: float) -> list:
        """Up to max_messages / max_bytes (at least one message if any comes within
        ``wait``), waiting up to ``linger`` after the first for the batch to fill."""
        batch: list[Received] = []
        size = 0
        with self._changed:
            if not self._items:
                self._changed.wait(wait)
            deadline = time.monotonic() + linger
            while self._items or batch:
                while self._items and len(batch) < max_messages and size < max_bytes:
                    item = self._items.popleft()
                    self._bytes -= len(item.payload)
                    batch.append(item)
                    size += len(item.payload)
                self._changed.notify_all()  # room for paho's thread
                remaining = deadline - time.monotonic()
                if len(batch) >= max_messages or size >= max_bytes or remaining <= 0:
                    break
                self._changed.wait(remaining)
        return batch

    def clear(self) -> None:
        """Forget what is waiting (never acked: the broker delivers it again)."""
        with self._changed:
            self._items.clear()
            self._bytes = 0
            self._changed.notify_all()


def confirmed(info: mqtt.MQTTMessageInfo) -> bool:
    """Has the broker PUBACKed this QoS 1 publish?"""
    try:
        return info.is_published()
    except RuntimeError:
        # Published while the connection was down: paho keeps it, sends it once connected,
        # and marks it published on the broker's PUBACK, but is_published() raises for good.
        return bool(getattr(info, "_published", False))
    except ValueError:  # never queued (paho's queue full): it never will be
        log.warning("an ack could not be queued for publishing; acking its message anyway")
        return True
