"""Transports: send a stream of :class:`~devices.simulator.generator.Outgoing` at a given
rate with the device side of the protocol, and count what the service answered (:class:`Stats`).

:class:`MqttPublisher` keeps one MQTT connection per device (its id and secret as
credentials, QoS 1); :class:`HttpPublisher` posts to ``/api/v1/events`` (through
:func:`http_poster` for a real server, :func:`flask_client_poster` for a test client). Both
read the acks, keep an outbox of unacked events per device, resend what the service asks for
(``resend`` commands) and what stays unacked too long, and count accepted / duplicate /
rejected.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from devices import protocol
from devices.simulator.fleet import Fleet
from devices.simulator.generator import Outgoing


@dataclass
class Stats:
    """What the service answered. Each ack counts once (a resent event that was accepted
    before is answered ``duplicate``)."""

    events: int = 0  #: events taken from the stream and sent
    messages: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    resent: int = 0  #: events sent again (asked for, or unacked too long)
    resend_commands: int = 0
    lost: int = 0  #: messages dropped on purpose (``loss``), as a radio drops them
    errors: int = 0  #: sends that failed (HTTP errors, no connection)
    #: Events the service failed on (rejected, internal_error): kept and resent later.
    internal_errors: int = 0
    #: MQTT messages the broker dropped for want of a listening worker (PUBACK reason 16).
    unheard: int = 0
    unacked: int = 0  #: still without an ack at the end
    reasons: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        text = (
            f"{self.events} events in {self.messages} messages: {self.accepted} accepted, "
            f"{self.duplicate} duplicate, {self.rejected} rejected, {self.resent} resent "
            f"({self.resend_commands} resend commands), {self.unacked} unacked"
        )
        if self.lost:
            text += f", {self.lost} messages lost on purpose"
        if self.errors:
            text += f", {self.errors} send errors"
        if self.internal_errors:
            text += f", {self.internal_errors} internal errors (resent)"
        if self.unheard:
            text += f", {self.unheard} messages no worker heard (resent)"
        if self.reasons:
            text += " — rejected: " + ", ".join(f"{r} {n}" for r, n in self.reasons.most_common())
        return text


@dataclass
class _Pending:
    event: dict
    sent_at: float
    attempts: int = 1


class Publisher:
    """Sends a stream of :class:`Outgoing` for a fleet, paced, with the device side of the
    protocol: an outbox of unacked events per device, resends on command and on timeout."""

    #: Most events in one message (the protocol allows 500).
    max_batch = 100

    def __init__(
        self,
        fleet: Fleet,
        *,
        ack_timeout: float = 15.0,
        loss: float = 0.0,
        lossy: Iterable[str] | None = None,
        seed: int = 0,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.fleet = fleet
        self.devices = fleet.devices()
        self.ack_timeout, self.loss = ack_timeout, loss
        #: The devices whose messages ``loss`` may drop (None: all). A lost packing scan
        #: makes the courier's scans of that parcel rejected (unknown_waybill) until it is
        #: resent, and a rejected event is never sent again: see PROTOCOL.md.
        self.lossy = None if lossy is None else frozenset(lossy)
        self.rng = random.Random(seed)
        self.log = log or (lambda _: None)
        self.clock, self.now, self.sleep = clock, now, sleep
        self.stats = Stats()
        self.lock = threading.Lock()
        #: device id -> event id -> pending event; device id -> seq -> event id
        self.outbox: dict[str, dict[str, _Pending]] = {d: {} for d in self.devices}
        self.by_seq: dict[str, dict[int, str]] = {d: {} for d in self.devices}
        self.commands: queue.SimpleQueue[tuple[str, dict]] = queue.SimpleQueue()
        self._last_sweep = 0.0

    # to be provided by a transport
    def open(self) -> None:
        """Connect (MQTT) before the first send."""

    def close(self) -> None:
        """Disconnect after the last ack."""

    def transmit(self, device_id: str, payload: bytes) -> None:
        raise NotImplementedError

    # the device side of the protocol
    def run(
        self,
        stream: Iterable[Outgoing],
        *,
        rate: float | None = None,
        duration: float | None = None,
        max_events: int | None = None,
        drain_timeout: float = 30.0,
        progress: Callable[[Stats], None] | None = None,
        progress_every: float = 10.0,
    ) -> Stats:
        """Send ``stream`` at ``rate`` events/s (None: as fast as possible), never before an
        event's ``publish_at`` by the wall clock; stop after ``duration`` seconds or
        ``max_events`` events or the end of the stream; then wait up to ``drain_timeout``
        seconds for the last acks, resending as needed."""
        self.open()
        try:
            t0 = self.clock()
            deadline = None if duration is None else t0 + duration
            next_report = t0 + progress_every
            items = _Peekable(iter(stream))
            while max_events is None or self.stats.events < max_events:
                room = self.max_batch
                if max_events is not None:
                    room = min(room, max_events - self.stats.events)
                message = self._next_message(items, room)
                if not message:
                    break
                due = None if not rate else t0 + self.stats.events / rate
                if not self._wait(due, max(o.publish_at for o in message), deadline):
                    break
                self.send(message[0].device_id, [o.event for o in message])
                self.stats.events += len(message)
                self.maintain()
                if progress and self.clock() >= next_report:
                    progress(self.stats)
                    next_report = self.clock() + progress_every
            self.drain(drain_timeout)
        finally:
            self.close()
        with self.lock:
            self.stats.unacked = sum(len(box) for box in self.outbox.values())
        return self.stats

    def _next_message(self, items: _Peekable, room: int) -> list[Outgoing]:
        """One device's next events: an offline burst whole, else events due together."""
        first = items.next()
        if first is None:
            return []
        message = [first]
        while len(message) < room:
            following = items.peek()
            if following is None or following.device_id != first.device_id:
                break
            together = (
                following.burst == first.burst
                if first.burst is not None
                else following.burst is None
                and (following.publish_at - first.publish_at).total_seconds() <= 1
            )
            if not together:
                break
            message.append(items.next())
        return message

    def _wait(self, due: float | None, publish_at: datetime, deadline: float | None) -> bool:
        """Wait until the rate allows the next message and the wall clock has reached its
        publish time, doing the protocol's chores meanwhile; False when time is up."""
        while True:
            now = self.clock()
            if deadline is not None and now >= deadline:
                return False
            waits = []
            if due is not None and now < due:
                waits.append(due - now)
            ahead = (publish_at - self.now()).total_seconds()
            if ahead > 0:
                waits.append(ahead)
            if not waits:
                return True
            self.maintain()
            self.sleep(min(0.2, *waits))

    def send(self, device_id: str, events: list[dict], *, resend: bool = False) -> None:
        """Put ``events`` in the outbox and send them as one message."""
        now = self.clock()
        with self.lock:
            box, seqs = self.outbox[device_id], self.by_seq[device_id]
            for event in events:
                pending = box.get(event["event_id"])
                if pending is None:
                    box[event["event_id"]] = _Pending(event, now)
                    seqs[event["seq"]] = event["event_id"]
                else:
                    pending.sent_at = now
                    pending.attempts += 1
            self.stats.messages += 1
            if resend:
                self.stats.resent += len(events)
        if (
            self.loss
            and not resend
            and (self.lossy is None or device_id in self.lossy)
            and self.rng.random() < self.loss
        ):
            with self.lock:
                self.stats.lost += 1
            return
        payload = events[0] if len(events) == 1 else {"events": events}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            self.transmit(device_id, body)
        except Exception as exc:  # the outbox resends it
            with self.lock:
                self.stats.errors += 1
            if self.stats.errors <= 5:
                self.log(f"send failed for device {device_id}: {exc}")

    def on_acks(self, device_id: str, acks: Iterable[dict]) -> None:
        """Acks from the service (any thread)."""
        with self.lock:
            box, seqs = self.outbox.get(device_id, {}), self.by_seq.get(device_id, {})
            for ack in acks:
                status = ack.get("status")
                if status in ("accepted", "duplicate"):
                    setattr(self.stats, status, getattr(self.stats, status) + 1)
                elif status == "rejected" and ack.get("reason") == "internal_error":
                    self.stats.internal_errors += 1  # a fault of the service: resend later
                    continue
                elif status == "rejected":
                    self.stats.rejected += 1
                    self.stats.reasons[ack.get("reason") or "?"] += 1
                    if self.stats.rejected <= 5:
                        self.log(f"rejected ({device_id}): {ack}")
                    if ack.get("event_id") is None:
                        continue  # the whole message: its events stay in the outbox
                else:
                    continue
                pending = box.pop(str(ack.get("event_id")), None)
                if pending is not None:
                    seqs.pop(pending.event["seq"], None)

    def on_command(self, device_id: str, command: dict) -> None:
        """A command from the service (any thread); carried out by :meth:`maintain`."""
        self.commands.put((device_id, command))

    def maintain(self) -> None:
        """Carry out resend commands; resend events unacked for too long (backing off)."""
        while True:
            try:
                device_id, command = self.commands.get_nowait()
            except queue.Empty:
                break
            if command.get("command") != "resend" or device_id not in self.outbox:
                continue
            low, high = int(command.get("from_seq", 0)), int(command.get("to_seq", 0))
            with self.lock:
                self.stats.resend_commands += 1
                seqs, box = self.by_seq[device_id], self.outbox[device_id]
                wanted = [
                    box[seqs[s]].event
                    for s in range(low, min(high, low + 10_000) + 1)
                    if s in seqs and seqs[s] in box
                ]
            for chunk in _chunks(wanted, self.max_batch):
                self.send(device_id, chunk, resend=True)
        now = self.clock()
        if now - self._last_sweep < 1.0:
            return
        self._last_sweep = now
        overdue: dict[str, list[dict]] = {}
        with self.lock:
            budget = 500
            for device_id, box in self.outbox.items():
                for pending in box.values():
                    wait = self.ack_timeout * 2 ** min(pending.attempts - 1, 5)
                    if now - pending.sent_at >= wait and budget > 0:
                        overdue.setdefault(device_id, []).append(pending.event)
                        budget -= 1
        for device_id, events in overdue.items():
            events.sort(key=lambda e: e["seq"])
            for chunk in _chunks(events, self.max_batch):
                self.send(device_id, chunk, resend=True)

    def due_soon(self, device_id: str, event_ids: Iterable[str], within: float = 2.0) -> None:
        """Resend these events at the next sweep after ``within`` seconds, not after the
        ack timeout (the broker said nobody heard them)."""
        now = self.clock()
        with self.lock:
            box = self.outbox.get(device_id, {})
            for event_id in event_ids:
                pending = box.get(event_id)
                if pending is not None:
                    wait = self.ack_timeout * 2 ** min(pending.attempts - 1, 5)
                    pending.sent_at = min(pending.sent_at, now - wait + within)

    def unacked(self) -> int:
        with self.lock:
            return sum(len(box) for box in self.outbox.values())

    def drain(self, timeout: float) -> None:
        end = self.clock() + timeout
        while self.unacked() and self.clock() < end:
            self.maintain()
            self.sleep(0.05)


class _Peekable:
    def __init__(self, items: Iterator[Outgoing]) -> None:
        self.items, self.head = items, None

    def peek(self) -> Outgoing | None:
        if self.head is None:
            self.head = next(self.items, None)
        return self.head

    def next(self) -> Outgoing | None:
        item = self.peek()
        self.head = None
        return item


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


#: Sends one message for a device and returns the service's answer {"acks", "commands"}.
Poster = Callable[[str, bytes], dict]


class HttpPublisher(Publisher):
    """``POST /api/v1/events`` with ``X-Device-Id``; the answer carries the acks and
    commands MQTT would have published. ``poster`` does the request: :func:`http_poster` for
    a real server, :func:`flask_client_poster` for a Flask test client."""

    def __init__(self, fleet: Fleet, poster: Poster, **kw) -> None:
        kw.setdefault("ack_timeout", 5.0)
        super().__init__(fleet, **kw)
        self.poster = poster

    def transmit(self, device_id: str, payload: bytes) -> None:
        answer = self.poster(device_id, payload)
        self.on_acks(device_id, answer.get("acks", []))
        for command in answer.get("commands", []):
            self.on_command(device_id, command)


def http_poster(base_url: str, timeout: float = 30.0) -> Poster:
    """A poster for the service at ``base_url`` (e.g. http://127.0.0.1:5000)."""
    url = base_url.rstrip("/") + "/api/v1/events"

    def post(device_id: str, payload: bytes) -> dict:
        request = urllib.request.Request(
            url,
            data=payload,
            method="POST",
            headers={"Content-Type": "application/json", "X-Device-Id": device_id},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)

    return post


def flask_client_poster(client) -> Poster:
    """A poster for a Flask test client (``app.test_client()``)."""

    def post(device_id: str, payload: bytes) -> dict:
        response = client.post(
            "/api/v1/events",
            data=payload,
            content_type="application/json",
            headers={"X-Device-Id": device_id},
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.get_data(as_text=True)}")
        return response.get_json()

    return post


class MqttPublisher(Publisher):
    """One MQTT 5 connection per device (client id and user name: the device id; password:
    its secret), events published with QoS 1 on the device's events topic, acks and commands
    read from its own topics."""

    def __init__(self, fleet: Fleet, url: str, *, connect_timeout: float = 15.0, **kw) -> None:
        super().__init__(fleet, **kw)
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT_URL must be mqtt://host:port or mqtts://..., got {url!r}")
        self.host = parsed.hostname or "127.0.0.1"
        self.tls = parsed.scheme in ("mqtts", "ssl")
        self.port = parsed.port or (8883 if self.tls else 1883)
        self.connect_timeout = connect_timeout
        self.clients: dict = {}
        self.ready: set[str] = set()
        self.refused: dict[str, str] = {}
        #: (device id, mid) -> event ids of a message awaiting its PUBACK; PUBACK reason
        #: codes that came before publish() returned (the network thread is quick).
        self.in_flight: dict[tuple[str, int], list[str]] = {}
        self.early: dict[tuple[str, int], int] = {}

    def open(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        for device in self.devices.values():
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=device.id,
                protocol=mqtt.MQTTv5,
                userdata=device.id,
            )
            client.username_pw_set(device.id, device.secret)
            if self.tls:
                client.tls_set()
            client.on_connect = self._on_connect
            client.on_subscribe = self._on_subscribe
            client.on_message = self._on_message
            client.on_publish = self._on_publish
            client.connect_async(self.host, self.port, keepalive=60)
            client.loop_start()
            self.clients[device.id] = client
        end = self.clock() + self.connect_timeout
        while len(self.ready) < len(self.clients) and self.clock() < end:
            if self.refused:
                break
            self.sleep(0.05)
        if len(self.ready) < len(self.clients):
            self.close()
            why = "; ".join(f"{d}: {r}" for d, r in list(self.refused.items())[:3])
            raise ConnectionError(
                f"could not connect all {len(self.clients)} devices to the MQTT broker at "
                f"{self.host}:{self.port} ({len(self.ready)} ready)" + (f": {why}" if why else "")
            )

    def _on_connect(self, client, device_id, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refused[device_id] = str(reason_code)
            return
        client.subscribe(
            [(protocol.topic_acks(device_id), 1), (protocol.topic_commands(device_id), 1)]
        )

    def _on_subscribe(self, client, device_id, mid, reason_codes, properties) -> None:
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            self.refused[device_id] = "subscription refused: " + ", ".join(failed)
        else:
            self.ready.add(device_id)

    def _on_message(self, client, device_id, message) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if message.topic == protocol.topic_commands(device_id):
            for command in body if isinstance(body, list) else [body]:
                if isinstance(command, dict):
                    self.on_command(device_id, command)
            return
        if isinstance(body, dict) and isinstance(body.get("acks"), list):
            body = body["acks"]
        acks = body if isinstance(body, list) else [body]
        self.on_acks(device_id, [a for a in acks if isinstance(a, dict)])

    def transmit(self, device_id: str, payload: bytes) -> None:
        body = json.loads(payload)
        event_ids = [e["event_id"] for e in body.get("events", [body])]
        info = self.clients[device_id].publish(protocol.topic_events(device_id), payload, qos=1)
        if info.rc != 0:
            raise ConnectionError(f"publish refused (rc {info.rc})")
        # Never hold self.lock while calling paho: its network thread calls on_publish
        # holding paho's own lock, and on_publish takes self.lock.
        with self.lock:
            reason = self.early.pop((device_id, info.mid), None)
            if reason is None:
                self.in_flight[(device_id, info.mid)] = event_ids
        if reason is not None:
            self._puback(device_id, event_ids, reason)

    def _on_publish(self, client, device_id, mid, reason_code, properties) -> None:
        value = getattr(reason_code, "value", 0)
        with self.lock:
            event_ids = self.in_flight.pop((device_id, mid), None)
            if event_ids is None:
                self.early[(device_id, mid)] = value
                return
        self._puback(device_id, event_ids, value)

    def _puback(self, device_id: str, event_ids: list[str], reason: int) -> None:
        if reason == 16:  # No matching subscribers: no ingest worker heard it
            with self.lock:
                self.stats.unheard += 1
            self.due_soon(device_id, event_ids)

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()
        self.clients = {}
