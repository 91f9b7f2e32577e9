"""The worker's handling of failures, in process: its batch step (store, commit, answer,
PUBACK) driven with a stand-in for the MQTT client, ingest or the database made to fail."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

import app.ingest.worker as worker_module
from app.ingest.worker import BrokerAddress, Received, Worker
from devices import protocol
from tests.factories import signed_event

# The worker's batches commit, and the tests count what they stored on connections of
# their own (some from threads and a second worker).
pytestmark = pytest.mark.committed


class FakeMqtt:
    """What the worker calls on paho's client, recorded."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict]] = []
        self.acked: list[int] = []

    def publish(self, topic: str, payload: bytes, qos: int):
        self.published.append((topic, json.loads(payload)))
        return type("Info", (), {"is_published": lambda self: True})()

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)


@pytest.fixture
def worker(app):
    return Worker(
        app.extensions["trace"].sessionmaker,
        "test-secret",
        BrokerAddress("127.0.0.1", 1),
        client_id="test",
        client=FakeMqtt(),
    )


@pytest.fixture
def scanner(make):
    """A shelf scanner and 3 units of its merchant: (device_id, secret, serials)."""
    merchant = make.merchant()
    serials = make.codes(make.batch(make.product(merchant)), 3)
    return (*make.device("shelf_scanner", merchant), serials)


def shelved(scanner, n: int, **extra) -> dict:
    _, secret, serials = scanner
    when = datetime.now(UTC) - timedelta(minutes=10 - n)
    return signed_event(secret, "shelved", when, seq=n + 1, code=serials[n], **extra)


def received(worker, mid: int, device_id: str, body, *, connection: int | None = None):
    topic = protocol.topic_events(device_id) if device_id else "trace/v1/other"
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Received(
        mid,
        1,
        topic,
        payload,
        datetime.now(UTC),
        worker.connection if connection is None else connection,
    )


def count(app, sql: str) -> int:
    with app.extensions["trace"].engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def test_a_devices_acks_of_a_batch_go_out_together_in_bounded_messages(
    worker, scanner, monkeypatch
):
    """Are the acks of one device's messages in a batch published together, in order, and
    split when there are more than a message may carry?"""
    monkeypatch.setattr(protocol, "MAX_ACKS_PER_MESSAGE", 2)
    device_id = scanner[0]
    events = [shelved(scanner, n) for n in range(3)]
    worker.handle([received(worker, mid, device_id, e) for mid, e in enumerate(events)])
    acks = [body["acks"] for topic, body in worker.client.published if topic.endswith("/acks")]
    assert [len(a) for a in acks] == [2, 1]
    assert [a["event_id"] for chunk in acks for a in chunk] == [e["event_id"] for e in events]
    assert worker.client.acked == [0, 1, 2]


def test_a_message_that_breaks_ingest_is_rejected_alone(app, worker, scanner, monkeypatch):
    """When ingest raises on one message of a batch, are the others still stored and
    answered, that one answered ``internal_error`` and recorded, and all of them acked?"""
    real_ingest = worker_module.ingest

    def ingest_with_a_bug(session, key, inbound, **kw):
        if any(b"BOOM" in m.payload for m in inbound):
            raise RuntimeError("a bug")
        return real_ingest(session, key, inbound, **kw)

    monkeypatch.setattr(worker_module, "ingest", ingest_with_a_bug)
    device_id = scanner[0]
    good1, bad, good2 = shelved(scanner, 0), shelved(scanner, 1, note="BOOM"), shelved(scanner, 2)
    worker.handle(
        [received(worker, mid, device_id, e) for mid, e in enumerate((good1, bad, good2))]
    )

    acks_topic = protocol.topic_acks(device_id)
    # one ack message for the device's three messages of the batch, in their order
    assert worker.client.published == [
        (
            acks_topic,
            {
                "acks": [
                    {"event_id": good1["event_id"], "status": "accepted"},
                    {
                        "event_id": bad["event_id"],
                        "status": "rejected",
                        "reason": "internal_error",
                        "message": worker_module.INTERNAL_ERROR_MESSAGE,
                    },
                    {"event_id": good2["event_id"], "status": "accepted"},
                ]
            },
        ),
        # seq 2 was not stored: the device is asked for it again
        (
            protocol.topic_commands(device_id),
            {"command": "resend", "from_seq": 2, "to_seq": 2},
        ),
    ]
    assert worker.client.acked == [0, 1, 2]
    assert count(app, "SELECT count(*) FROM events") == 2
    with app.extensions["trace"].engine.connect() as conn:
        row = conn.execute(sa.text("SELECT device_id, reason, payload FROM rejected_events")).one()
    assert row.device_id == device_id and row.reason == "internal_error"
    # kept as a rejected event is: its protocol fields, not what else it carried
    assert bad["event_id"] in row.payload and "BOOM" not in row.payload


def test_nothing_is_acked_while_the_database_is_down(app, worker, scanner, monkeypatch):
    """While the database is unreachable, does the worker wait (acking nothing) and then
    store the batch once it is back?"""
    real_ingest = worker_module.ingest
    calls = {"ingest": 0, "probes": []}

    def ingest_once_down(session, key, inbound, **kw):
        calls["ingest"] += 1
        if calls["ingest"] == 1:
            raise OperationalError("INSERT ...", {}, ConnectionRefusedError("connection refused"))
        return real_ingest(session, key, inbound, **kw)

    def database_up(self) -> bool:
        calls["probes"].append(len(self.client.acked))  # what was acked so far
        return len(calls["probes"]) > 2  # down, down, then back

    monkeypatch.setattr(worker_module, "ingest", ingest_once_down)
    monkeypatch.setattr(Worker, "_database_up", database_up)
    event = shelved(scanner, 0)
    worker.handle([received(worker, 7, scanner[0], event)])

    assert calls["probes"] == [0, 0, 0]
    assert calls["ingest"] == 2
    assert worker.client.acked == [7]
    assert count(app, "SELECT count(*) FROM events") == 1


def test_a_worker_stopped_while_the_database_is_down_acks_nothing(worker, scanner, monkeypatch):
    """Asked to stop while the database is down, does the worker return without acking,
    leaving the message with the broker?"""

    def down(*args, **kw):
        raise OperationalError("SELECT ...", {}, ConnectionRefusedError("connection refused"))

    def database_up(self) -> bool:
        self.stopping.set()  # SIGTERM arrives during the outage
        return False

    monkeypatch.setattr(worker_module, "ingest", down)
    monkeypatch.setattr(Worker, "_database_up", database_up)
    worker.handle([received(worker, 7, scanner[0], shelved(scanner, 0))])
    assert worker.client.acked == []
    assert worker.client.published == []


def test_a_message_on_another_topic_is_acked_and_dropped(app, worker):
    """Is a message that is not on a device events topic acked, and nothing stored or
    published for it?"""
    worker.handle([received(worker, 3, "", b'{"hello": 1}')])
    assert worker.client.acked == [3]
    assert worker.client.published == []
    assert count(app, "SELECT count(*) FROM rejected_events") == 0


def test_no_puback_goes_out_on_a_later_connection(app, worker, scanner):
    """A message received before a reconnect is stored but not PUBACKed on the new
    connection (the broker redelivers it; its packet id may now name another message)."""
    event = shelved(scanner, 0)
    worker.connection = 5
    worker.handle(
        [
            received(worker, 1, scanner[0], event, connection=4),
            received(worker, 2, scanner[0], shelved(scanner, 1)),
        ]
    )
    assert worker.client.acked == [2]
    assert count(app, "SELECT count(*) FROM events") == 2


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1883", BrokerAddress("127.0.0.1", 1883)),
        ("mqtt://broker", BrokerAddress("broker", 1883)),
        ("mqtts://w%40x:p%3Ass@broker", BrokerAddress("broker", 8883, "w@x", "p:ss", True)),
        ("mqtt://ingest:pw@10.0.0.5:1884", BrokerAddress("10.0.0.5", 1884, "ingest", "pw")),
    ],
)
def test_the_broker_url_is_parsed_once(url, expected):
    """Are host, port (by scheme), user and password read from MQTT_URL?"""
    assert BrokerAddress.parse(url) == expected


@pytest.mark.parametrize("url", ["http://broker", "mqtt://", "mqtt://broker:99999", "broker"])
def test_a_bad_broker_url_is_refused(url):
    """Is a URL that names no MQTT broker refused with a message?"""
    with pytest.raises(ValueError):
        BrokerAddress.parse(url)


def test_the_ingest_command_needs_the_broker_url(runner):
    """Does `devices ingest` stop with a clear message when MQTT_URL is empty?"""
    result = runner.invoke(args=["devices", "ingest"])
    assert result.exit_code != 0
    assert "MQTT_URL is not set" in result.output


@pytest.mark.slow  # two workers on threads, waiting on each other
@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="row locks: PostgreSQL (SQLite: one writer)"
)
def test_two_workers_storing_one_units_events_at_once_replay_it_whole(app, make, scanner):
    """Two workers store in parallel. When one holds a unit's sale uncommitted and the other
    stores a second sale of it (another till), does the second batch wait for the first's
    commit and replay the unit with both, marking the second sale as unlawful?"""
    from app.ingest.run import Inbound, ingest

    shelf_id, _, serials = scanner
    owner = count(app, f"SELECT owner_id FROM devices WHERE id = '{shelf_id}'")
    tills = [make.device("pos_scanner", owner) for _ in range(2)]
    sales = []
    for minutes, (till_id, secret) in zip((5, 1), tills, strict=True):
        body = signed_event(
            secret,
            "sold",
            datetime.now(UTC) - timedelta(minutes=minutes),
            code=serials[0],
            data={"order_id": f"O-{minutes}"},
        )
        sales.append([Inbound(till_id, json.dumps(body).encode(), datetime.now(UTC))])
    make_session = app.extensions["trace"].sessionmaker
    first = make_session()
    ingest(first, "test-secret", sales[0])  # not committed yet
    done = threading.Event()

    def second_worker():
        with make_session() as session:
            ingest(session, "test-secret", sales[1])
            session.commit()
        done.set()

    thread = threading.Thread(target=second_worker)
    thread.start()
    assert not done.wait(1.0), "the second sale's batch did not wait for the first's commit"
    first.commit()
    first.close()
    thread.join(30)
    assert done.is_set()
    violations = count(app, "SELECT string_agg(violation, ';') FROM events")
    assert violations == "sold is not allowed after sold"


@pytest.mark.slow  # a Mosquitto of its own
def test_a_full_inbox_does_not_stop_the_connection_keeping_alive(app, tmp_path):
    """While the main thread does not take from a full inbox (a long batch, the database
    down), does paho's thread stop reading but go on keeping the connection alive, and is
    the inbox held to its bound? (A blocked paho thread sent nothing, not even a PINGREQ,
    and the broker dropped the connection after 1.5 keep-alive intervals.)"""
    import paho.mqtt.client as mqtt
    from mqtt_support import Broker, wait_for
    from paho.mqtt.enums import CallbackAPIVersion

    broker = Broker(tmp_path / "mosquitto")  # its own: the share group of the other tests
    broker.start()
    worker = Worker(
        app.extensions["trace"].sessionmaker,
        "test-secret",
        BrokerAddress("127.0.0.1", broker.port),
        client_id="keepalive-test",
        batch_size=1,  # an inbox of 100 messages
        # 2 s: the broker drops a silent client after 3 s, within the 4 s below. (At 1 s,
        # paho's own read path, SPEEDUPS=off, reading one packet a turn, sometimes reached the
        # PINGRESP queued behind the backlog after its 1 s deadline: "Keep alive timeout".)
        keepalive=2,
        session_expiry=0,
        speedups=app.extensions["trace"].config.SPEEDUPS == "on",
    )
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="keepalive-pub")
    try:
        worker.connect()
        wait_for(worker.subscribed.is_set, 10, "the worker to subscribe")
        connection = worker.connection
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        for n in range(300):
            publisher.publish(protocol.topic_events("KEEPALIVE"), b"{}" * (n + 1), qos=1)
        wait_for(worker.inbox.full, 10, "the inbox to fill")
        time.sleep(4)  # 2 keep-alive intervals with nothing taken
        assert len(worker.inbox) <= worker.inbox.max_messages + 1
        assert worker.connection == connection, "the connection was dropped"
        taken = 0
        while taken < 300:  # now the stream goes on, on the same connection
            batch = worker.inbox.take(100, 1 << 20, 0.5, 0.0)
            assert batch, f"only {taken} of 300 messages arrived"
            for item in batch:
                worker.client.ack(item.mid, item.qos)
            taken += len(batch)
        assert worker.connection == connection
        assert "exceeded timeout" not in broker.tail(100_000)
    finally:
        worker.stopping.set()
        publisher.disconnect()
        publisher.loop_stop()
        worker.client.disconnect()
        worker.client.loop_stop()
        worker.publisher.disconnect()
        worker.publisher.loop_stop()
        broker.stop()


@pytest.mark.slow  # two workers on threads, waiting on each other
@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="row locks: PostgreSQL (SQLite: one writer)"
)
def test_two_workers_storing_one_devices_events_at_once_do_not_deadlock(app, scanner, monkeypatch):
    """Both batches insert their events (whose foreign-key checks share-lock the device),
    then both lock the device to track its sequence numbers: does the second wait for the
    first instead of deadlocking, and are the device's numbers tracked as if one after the
    other?"""
    from app.ingest import run as ingest_run
    from app.ingest.run import Inbound, ingest

    device_id = scanner[0]
    both_stored = threading.Barrier(2, timeout=10)
    track = ingest_run._Batch._track_sequences

    def after_both_stored(self):
        both_stored.wait()
        return track(self)

    monkeypatch.setattr(ingest_run._Batch, "_track_sequences", after_both_stored)
    make_session = app.extensions["trace"].sessionmaker
    errors = []

    def worker_thread(n):
        payload = json.dumps(shelved(scanner, n)).encode()  # seq n + 1
        try:
            with make_session() as session:
                ingest(session, "test-secret", [Inbound(device_id, payload, datetime.now(UTC))])
                session.commit()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker_thread, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert count(app, "SELECT count(*) FROM events") == 2
    assert count(app, f"SELECT max_seq FROM devices WHERE id = '{device_id}'") == 2
    assert count(app, "SELECT count(*) FROM sequence_gaps") == 0


@pytest.mark.parametrize("with_properties", [False, True])
@pytest.mark.parametrize("payload", [b"", b"{}", "中文".encode() * 100, b"x" * 20000])
def test_the_worker_reads_a_publish_as_paho_does(with_properties, payload):
    """The worker's client reads QoS 1 PUBLISH packets itself, skipping their properties:
    are topic, packet id, flags and payload what paho's own decoder reads?"""
    import paho.mqtt.client as mqtt
    from paho.mqtt._packet import decode_publish
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    topic = protocol.topic_events("ABCDEF0123456789").encode()
    properties = Properties(PacketTypes.PUBLISH)
    if with_properties:
        properties.UserProperty = [("k", "v" * 200), ("trace", "1")]
        properties.MessageExpiryInterval = 60
        properties.ContentType = "application/json"
    packet = bytearray(
        len(topic).to_bytes(2, "big") + topic + (4242).to_bytes(2, "big") + properties.pack()
    )
    packet += payload
    header = 0x30 | 0x08 | 0x02  # PUBLISH, dup, QoS 1
    from app.ingest import mqtt_client

    client = mqtt_client.Client(
        CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5, manual_ack=True
    )
    got = []
    client.on_message = lambda c, u, m: got.append(m)
    client._in_packet = {"command": header, "packet": packet}
    assert client._handle_publish() == 0
    expected = decode_publish(header, bytes(packet), mqtt.MQTTv5)
    (message,) = got
    assert (message.topic, message.mid, message.qos, message.dup, message.retain) == (
        expected.topic.decode(),
        expected.mid,
        expected.qos,
        expected.dup,
        expected.retain,
    )
    assert message.payload == expected.payload == payload
    client._in_packet = {"command": header, "packet": packet[: len(topic) + 3]}
    with pytest.raises(mqtt_client.MalformedPacket):
        client._handle_publish()


@pytest.mark.parametrize("with_properties", [False, True])
def test_the_fast_client_hands_on_messages_as_pahos_own_client_does(with_properties):
    """SPEEDUPS=on and off read the same message: the fast client's _handle_publish and
    paho's own (the pausing client keeps paho's) give on_message the same topic, packet id,
    flags and payload, and neither acks a message under manual acks."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from app.ingest import mqtt_client

    topic = protocol.topic_events("ABCDEF0123456789").encode()
    properties = Properties(PacketTypes.PUBLISH)
    if with_properties:
        properties.UserProperty = [("k", "v" * 200)]
    packet = bytearray(
        len(topic).to_bytes(2, "big") + topic + (77).to_bytes(2, "big") + properties.pack()
    )
    packet += "中文".encode() * 10
    header = 0x30 | 0x02 | 0x01  # PUBLISH, QoS 1, retain
    seen = []
    for cls in (mqtt_client.client_class(True), mqtt_client.client_class(False)):
        client = cls(
            CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5, manual_ack=True
        )
        got = []
        client.on_message = lambda c, u, m, got=got: got.append(m)
        client._in_packet = {"command": header, "packet": bytes(packet)}
        assert client._handle_publish() == 0
        (m,) = got
        seen.append((m.topic, m.mid, m.qos, m.dup, m.retain, m.payload, len(client._out_packet)))
    assert seen[0] == seen[1]
    assert mqtt_client.client_class(False).__mro__[1] is mqtt.Client
