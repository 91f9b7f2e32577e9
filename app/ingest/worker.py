"""The ingest worker: device events from MQTT into the database, acknowledged after commit.

    flask --app wsgi devices ingest [--client-id ID] [--batch-size N]

Two threads. paho's network thread only puts each PUBLISH it receives in a bounded inbox
(while it is full, paho reads nothing more and TCP holds the broker back, but it goes on
sending PUBACKs and keep-alive pings). The main thread takes a batch out of it (up to
``batch_size`` messages, or what arrived within ``max_wait``), runs
:func:`app.ingest.run.ingest` on it in one transaction, commits, publishes each
message's acks on its device's acks topic (and any resend commands), and only once the
broker has confirmed those acks (their QoS 1 PUBACKs) sends the MQTT PUBACKs of the
batch's messages (``manual_ack``); meanwhile it stores the next batch. So:

- a crash anywhere before the commit loses nothing: the broker still holds the unacked
  messages in the worker's persistent session (``clean_start=False``, Session Expiry
  Interval) and delivers them again; a crash after the commit but before the PUBACK only
  causes a redelivery, which ``ingest`` answers ``duplicate``;
- a PUBACK never goes out for a message that is not committed. A PUBACK is only sent on the
  connection the message arrived on: after a reconnect the broker redelivers the message
  itself, and the packet id may by then name another message;
- ``ReceiveMaximum`` (a CONNECT property) lets the broker keep ``receive_maximum`` unacked
  messages in flight to us; without it Mosquitto sends 20 and waits for their PUBACKs;
- acks and commands go out on a second connection (client id ``<id>-acks``, no session):
  a client that also publishes gets Mosquitto 2.0.11 to ignore its Receive Maximum, and the
  broker's PUBACKs for the acks would queue behind the whole backlog. Because the acks travel
  on another connection, a message is PUBACKed only after the broker confirmed its acks: a
  crash in between leaves it unacked, redelivered, and answered ``duplicate``; no stored
  event is left without an ack on its way to the device.

Several workers split the stream through the shared subscription
``$share/trace-ingest/trace/v1/devices/+/events``. Each needs its own stable client id: the
broker keeps queueing a share of the stream for a stopped worker's session until it comes
back (or its session expires), so restart a worker under the same id.

Failures: if ``ingest`` raises, the batch is rolled back and its messages are retried one at
a time; one that still fails alone is recorded in ``rejected_events`` as ``internal_error``,
answered ``rejected`` and acked, so it cannot stall the stream. If the database itself is
unreachable nothing is acked: the worker backs off and retries the batch until the database
is back, and the broker keeps the rest. A lost broker connection is re-established by paho.
SIGTERM or SIGINT finish the batch in hand, then disconnect.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.events.models import RejectedEvent
from app.events.rejections import Rejection, rejected_row
from app.ingest.mqtt_client import BrokerAddress, Inbox, Received, client_class, confirmed
from app.ingest.run import Inbound, IngestResult, Limits, ingest
from devices import protocol
from devices.protocol import Ack, Rejected

log = logging.getLogger("app.ingest.worker")

#: Session Expiry Interval asked of the broker: how long it queues for a stopped worker.
SESSION_EXPIRY_S = 24 * 3600
INTERNAL_ERROR_MESSAGE = (
    "the service could not process this message; it is recorded, resend it later"
)


def default_client_id() -> str:
    return f"trace-ingest-{socket.gethostname()}"


class _Stopping(Exception):
    """Asked to stop while waiting for the database: leave the batch unacked."""


@dataclass
class _Stats:
    messages: int = 0
    events: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)


class Worker:
    """One ingest worker process (see the module's docstring)."""

    def __init__(
        self,
        sessionmaker: Callable[[], Session],
        master_key: str,
        broker: BrokerAddress,
        *,
        client_id: str,
        limits: Limits | None = None,
        batch_size: int = 1000,
        batch_bytes: int = 1 << 20,
        max_wait: float = 0.05,
        receive_maximum: int = 2000,
        publish_inflight: int = 100,
        session_expiry: int = SESSION_EXPIRY_S,
        keepalive: int = 30,
        log_every: float = 10.0,
        client: mqtt.Client | None = None,
        publisher: mqtt.Client | None = None,
        sweep: Callable[[Session], object] | None = None,
        sweep_every: float = 300.0,
        speedups: bool = True,
    ) -> None:
        self.sessionmaker = sessionmaker
        #: SPEEDUPS: paho's read path made faster (app.ingest.mqtt_client), the collector tuned.
        self.speedups = speedups
        #: The periodic sweep (time-based anomaly rules, parked events), every sweep_every s.
        self.sweep, self.sweep_every = sweep, sweep_every
        self._last_sweep = time.monotonic()
        self.master_key = master_key
        self.broker = broker
        self.client_id = client_id
        self.limits = limits or Limits()
        self.batch_size = batch_size
        #: A batch stops growing past this many payload bytes, which keeps the IN lists of
        #: one ingest (event ids, serials) within what both databases accept.
        self.batch_bytes = batch_bytes
        self.max_wait = max_wait
        self.receive_maximum = receive_maximum
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        self.log_every = log_every
        self.inbox = Inbox(max(2 * batch_size, 100), 4 * batch_bytes)
        self.stopping = threading.Event()
        self.subscribed = threading.Event()
        #: Bumped on every (dis)connection; a PUBACK goes out only on the message's own.
        self.connection = 0
        self._connection_lock = threading.Lock()
        self._pending: list[mqtt.MQTTMessageInfo] = []
        #: Handled batches not yet PUBACKed, oldest first: (their acks' publishes, messages).
        #: A batch is PUBACKed once the broker has confirmed every one of its acks.
        self._unconfirmed: deque[tuple[list[mqtt.MQTTMessageInfo], list[Received]]] = deque()
        self._stats = _Stats()
        self._since = time.monotonic()
        self._total = 0
        #: Receives the events (persistent session, manual PUBACKs).
        self.client = client or self._make_client()
        #: Publishes acks and commands, on a connection of its own: Mosquitto 2.0.11 stops
        #: keeping to the subscriber's Receive Maximum once that client publishes, floods it
        #: with the whole backlog and queues its PUBACKs for our publishes behind it all, so
        #: paho held every ack of a backlog in memory until the backlog was drained.
        self.publisher = publisher or (client if client else self._make_publisher())
        self.publish_inflight = publish_inflight

    # -- the MQTT side (paho's network thread) -------------------------------------------

    def _new_client(self, client_id: str, manual_ack: bool) -> mqtt.Client:
        client = client_class(self.speedups)(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=manual_ack,
        )
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        return client

    def _make_client(self) -> mqtt.Client:
        client = self._new_client(self.client_id, manual_ack=True)
        client.inbox = self.inbox  # paho's thread reads nothing while it is full
        client.on_connect = self._guard(self._on_connect)
        client.on_disconnect = self._guard(self._on_disconnect)
        client.on_subscribe = self._guard(self._on_subscribe)
        client.on_message = self._guard(self._on_message)
        return client

    def _make_publisher(self) -> mqtt.Client:
        client = self._new_client(f"{self.client_id}-acks", manual_ack=False)

        def on_disconnect(client, userdata, flags, reason_code, properties):
            if not self.stopping.is_set():
                log.warning("lost the publishing connection (%s); reconnecting", reason_code)

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                log.error("the broker refused the publishing connection: %s", reason_code)

        client.on_connect = self._guard(on_connect)
        client.on_disconnect = self._guard(on_disconnect)
        return client

    def _guard(self, callback):
        """paho's thread dies on an exception in a callback: log it instead."""

        def guarded(*args):
            try:
                callback(*args)
            except Exception:
                log.exception("error in the MQTT callback %s", callback.__name__)

        return guarded

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("the broker at %s refused the connection: %s", self.broker, reason_code)
            return
        with self._connection_lock:
            self.connection += 1
        log.info(
            "connected to %s as %s (%s session)",
            self.broker,
            self.client_id,
            "resumed" if flags.session_present else "new",
        )
        client.subscribe(protocol.SHARED_SUBSCRIPTION, qos=1)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._connection_lock:
            self.connection += 1
        if self.stopping.is_set():
            return
        if reason_code == 142:  # Session taken over
            log.error(
                "another client connected with the id %s: every worker needs its own "
                "--client-id; reconnecting",
                self.client_id,
            )
        else:
            log.warning("lost the broker connection (%s); reconnecting", reason_code)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error(
                "the broker refused the subscription %s: %s",
                protocol.SHARED_SUBSCRIPTION,
                reason_codes,
            )
            return
        log.info("subscribed to %s", protocol.SHARED_SUBSCRIPTION)
        self.subscribed.set()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = ""
        item = Received(
            message.mid,
            message.qos,
            topic,
            message.payload,
            datetime.now(UTC),
            self.connection,
        )
        self.inbox.put(item)  # never waits: paho's thread reads nothing while it is full

    # -- the main thread ----------------------------------------------------------------

    def run(self) -> None:
        """Connect, then ingest until SIGTERM/SIGINT (or :meth:`stop`)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        log.info(
            "ingest worker %s starting: broker %s, batches of up to %d messages",
            self.client_id,
            self.broker,
            self.batch_size,
        )
        self.connect()
        if self.speedups:
            _tune_gc()
        profile = _profiler()
        try:
            while not self.stopping.is_set():
                batch = self.next_batch()
                if batch:
                    with profile:
                        self.handle(batch)
                self.release()
                self._report()
                self._maybe_sweep()
        finally:
            self._shutdown()
            if isinstance(profile, cProfile.Profile):
                profile.dump_stats(os.environ["TRACE_INGEST_PROFILE"])

    def connect(self) -> None:
        """Connect both clients and start their network threads (paho reconnects them)."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry
        properties.ReceiveMaximum = self.receive_maximum
        self.client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=self.keepalive,
            clean_start=False,
            properties=properties,
        )
        self.client.loop_start()
        if self.publisher is self.client:
            return
        # Our QoS 1 acks and commands in flight at once, within the Receive Maximum the
        # broker announces (Mosquitto: max_inflight_messages); paho does not read it.
        self.publisher.max_inflight_messages_set(self.publish_inflight)
        self.publisher.connect_async(self.broker.host, self.broker.port, keepalive=self.keepalive)
        self.publisher.loop_start()

    def _maybe_sweep(self) -> None:
        """Run the sweep when it is due; a failure is logged and tried again next time (with
        several workers, two sweeps may race for the same finding: one rolls back)."""
        if self.sweep is None or time.monotonic() - self._last_sweep < self.sweep_every:
            return
        self._last_sweep = time.monotonic()
        try:
            with self.sessionmaker() as session:
                result = self.sweep(session)
                session.commit()
            log.info("sweep: %s", result)
        except Exception as exc:  # the stream must go on
            log.warning("sweep failed, will try again: %s", _short(exc))

    def stop(self, *_args) -> None:
        """Finish the batch in hand, then disconnect (also the SIGTERM/SIGINT handler)."""
        self.stopping.set()

    def next_batch(self) -> list[Received]:
        """Up to ``batch_size`` messages: what is waiting, or what arrives within max_wait."""
        return self.inbox.take(self.batch_size, self.batch_bytes, 0.2, self.max_wait)

    def handle(self, batch: list[Received]) -> None:
        """Store a batch, commit, publish its acks and commands; PUBACK every message once the
        broker has confirmed those acks (:meth:`release`, also called here and by the loop).

        Returns without acking anything if asked to stop while the database is down."""
        started = time.perf_counter()
        events, strays = [], []
        for item in batch:
            device_id = protocol.device_id_from_topic(item.topic)
            if device_id is None:
                strays.append(item)
            else:
                events.append((item, device_id))
        for item in strays:
            log.warning("dropped a message on %r: not a device events topic", item.topic[:200])
        inbound = [
            Inbound(device_id[:64], item.payload, item.received_at) for item, device_id in events
        ]
        try:
            acks, commands = self._store(inbound)
        except _Stopping:
            return
        stored = time.perf_counter()
        self._pending = []
        # One ack message per device and batch (not per device message): the device clears
        # its buffer by event id, and each publish costs as much as storing an event.
        per_device: dict[str, list[dict]] = {}
        for (_item, device_id), message_acks in zip(events, acks, strict=True):
            per_device.setdefault(device_id, []).extend(ack.to_json() for ack in message_acks)
        for device_id, device_acks in per_device.items():
            for i in range(0, len(device_acks), protocol.MAX_ACKS_PER_MESSAGE):
                body = {"acks": device_acks[i : i + protocol.MAX_ACKS_PER_MESSAGE]}
                self._publish(protocol.topic_acks(device_id), body)
        for device_id, command in commands:
            self._publish(protocol.topic_commands(device_id), command)
        self._unconfirmed.append((self._pending, batch))
        self.release()
        self._count(batch, acks, started, stored)

    def release(self) -> None:
        """PUBACK the handled batches whose acks the broker has confirmed, in order.

        The acks go out on the other connection: PUBACKing the messages before the broker
        has the acks would let a crash in between lose acks for good (the device, answered
        nothing, resends; a message not PUBACKed is redelivered and answered ``duplicate``).
        Waiting here costs no throughput: the next batch is stored meanwhile."""
        while self._unconfirmed:
            infos, batch = self._unconfirmed[0]
            # the last is usually confirmed last: one look while the batch waits
            if infos and confirmed(infos[-1]) and all(confirmed(i) for i in infos):
                infos.clear()
            if infos:
                return
            self._unconfirmed.popleft()
            with self._connection_lock:
                for item in batch:
                    if item.connection == self.connection:
                        self.client.ack(item.mid, item.qos)

    def _publish(self, topic: str, body: dict) -> None:
        payload = orjson.dumps(body)  # compact UTF-8 JSON
        self._pending.append(self.publisher.publish(topic, payload, qos=1))

    # -- storing, with retries ----------------------------------------------------------

    def _store(self, inbound: list[Inbound]) -> tuple[list[list[Ack]], list[tuple[str, dict]]]:
        """The acks of every message and the commands, committed. Raises _Stopping."""
        if not inbound:
            return [], []
        conflicts = 0
        while True:
            try:
                result = self._ingest(inbound)
                return result.acks, result.commands
            except OperationalError as exc:
                if not self._database_up():
                    self._wait_for_database(exc)
                    continue
                conflicts += 1
                if conflicts < 3:  # a deadlock or a serialization failure: try again
                    log.warning("ingest failed (%s); retrying the batch", _short(exc))
                    continue
                log.exception("ingest keeps failing on a batch; retrying it message by message")
            except IntegrityError as exc:
                # Another worker committed the same event meanwhile: now it is a duplicate.
                conflicts += 1
                if conflicts < 3:
                    log.warning("ingest conflicted (%s); retrying the batch", _short(exc))
                    continue
                log.exception("ingest keeps failing on a batch; retrying it message by message")
            except Exception:
                log.exception(
                    "ingest failed on a batch of %d messages; retrying them one at a time",
                    len(inbound),
                )
            return self._one_by_one(inbound)

    def _one_by_one(self, inbound: list[Inbound]) -> tuple[list[list[Ack]], list[tuple[str, dict]]]:
        acks, commands = [], []
        for message in inbound:
            failures = 0
            while True:
                try:
                    result = self._ingest([message])
                    acks.append(result.acks[0])
                    commands += result.commands
                    break
                except OperationalError as exc:
                    if not self._database_up():
                        self._wait_for_database(exc)
                        continue
                    failures += 1
                    if failures < 3:
                        continue
                    acks.append(self._internal_error(message, exc))
                    break
                except Exception as exc:
                    failures += 1
                    if isinstance(exc, IntegrityError) and failures < 3:
                        continue
                    acks.append(self._internal_error(message, exc))
                    break
        return acks, commands

    def _ingest(self, inbound: list[Inbound]) -> IngestResult:
        with self.sessionmaker() as session:
            try:
                result = ingest(session, self.master_key, inbound, limits=self.limits)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return result

    def _internal_error(self, message: Inbound, exc: Exception) -> list[Ack]:
        """Record a message that cannot be stored as ``internal_error``; its rejected acks."""
        log.error(
            "a message from %r fails alone; recorded as internal_error",
            message.device_id,
            exc_info=exc,
        )
        try:
            claimed = [_claimed_id(e) for e in protocol.parse_payload(message.payload)]
        except Rejected:
            claimed = [None]
        row = rejected_row(
            Rejection(
                message.device_id,
                None,
                "internal_error",
                f"internal error ({type(exc).__name__}), see the ingest worker's log",
                message.payload,
                message.received_at,
            )
        )
        while True:
            try:
                with self.sessionmaker() as session:
                    session.execute(sa.insert(RejectedEvent), [row])
                    session.commit()
                break
            except OperationalError as db_exc:
                if self._database_up():
                    log.exception("could not record the internal error")
                    break
                self._wait_for_database(db_exc)
            except Exception:
                log.exception("could not record the internal error")
                break
        return [
            Ack(event_id, "rejected", "internal_error", INTERNAL_ERROR_MESSAGE)
            for event_id in claimed
        ]

    def _database_up(self) -> bool:
        try:
            with self.sessionmaker() as session:
                session.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    def _wait_for_database(self, exc: Exception) -> None:
        """Back off until the database answers again; raise _Stopping if asked to stop."""
        delay = 0.5
        log.error(
            "the database is unavailable (%s); nothing is acked until it is back", _short(exc)
        )
        while not self.stopping.wait(delay):
            if self._database_up():
                log.info("the database is back")
                return
            delay = min(delay * 2, 30.0)
        raise _Stopping

    # -- reporting and shutdown -----------------------------------------------------------

    def _count(self, batch, acks, started: float, stored: float) -> None:
        done = time.perf_counter()
        stats = self._stats
        stats.messages += len(batch)
        for message_acks in acks:
            stats.events += len(message_acks)
            for ack in message_acks:
                stats.statuses[ack.status] += 1
        stats.seconds["store"] += stored - started
        stats.seconds["answer"] += done - stored

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self._since
        if not force and elapsed < self.log_every:
            return
        stats = self._stats
        if stats.messages or force:
            busy = stats.seconds["store"] + stats.seconds["answer"]
            log.info(
                "%d messages, %d events in %.1f s: %.0f events/s (%s); "
                "%.0f%% busy (store %.1f s, answer %.1f s); %d waiting, %d acks unconfirmed",
                stats.messages,
                stats.events,
                elapsed,
                stats.events / elapsed if elapsed else 0,
                ", ".join(f"{k} {v}" for k, v in sorted(stats.statuses.items())) or "none",
                100 * busy / elapsed if elapsed else 0,
                stats.seconds["store"],
                stats.seconds["answer"],
                len(self.inbox),
                len(getattr(self.publisher, "_out_messages", ())),  # paho's, awaiting PUBACK
            )
        self._total += stats.events
        self._stats = _Stats()
        self._since = now

    def _shutdown(self) -> None:
        deadline = time.monotonic() + 5
        self.release()
        while self._unconfirmed and time.monotonic() < deadline:  # let the last acks arrive
            time.sleep(0.01)
            self.release()
        if self._unconfirmed:  # redelivered to the next worker, answered duplicate
            log.warning(
                "stopping with %d messages whose acks the broker has not confirmed: not acked",
                sum(len(batch) for _, batch in self._unconfirmed),
            )
        self._report(force=True)
        self.inbox.clear()  # unacked: redelivered to whoever holds the session next
        self.client.disconnect()
        self.client.loop_stop()
        self.publisher.disconnect()
        self.publisher.loop_stop()
        log.info("ingest worker %s stopped after %d events", self.client_id, self._total)


#: Net new container objects between two young-generation collections (Python: 700).
GC_THRESHOLD = 20_000


def _tune_gc() -> None:
    """Keep Python's cycle collector from rescanning the whole process on every few batches.

    A batch allocates some twenty objects per event, nearly all freed by reference counting,
    yet every 700 net allocations trigger a young collection and every 100th of those a full
    one over everything loaded (SQLAlchemy, Flask, paho): 12 % of ``ingest``'s CPU (measured
    with bench/ingest_cpu.py). The objects made at start-up are frozen out of the collector,
    and young collections wait for 20,000 net new objects, which still bounds what garbage
    cycles can pile up (memory stays flat: bench/bench_ingest.py reports the peak RSS)."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 100)


def _profiler():
    """cProfile around each batch when TRACE_INGEST_PROFILE names an output file."""
    if os.environ.get("TRACE_INGEST_PROFILE"):
        return cProfile.Profile()
    return contextlib.nullcontext()


def _claimed_id(raw) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("event_id"), str):
        return raw["event_id"][:64]
    return None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
