"""The device simulator: its pure traffic generator, then runs into the service over HTTP
(test client and a real server, through the CLI command) and over MQTT (a private broker)."""

from __future__ import annotations

import itertools
import json
import queue
import re
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.demo_fleet import setup_fleet
from app.simulate import simulate_command
from devices import protocol
from devices.broker import BrokerError, find_mosquitto, start_broker
from devices.simulator import (
    DISTRICT_BY_CODE,
    DISTRICTS,
    Fleet,
    HttpPublisher,
    MqttPublisher,
    Outgoing,
    Shop,
    SimCourier,
    SimDevice,
    Stock,
    Traffic,
    distance_km,
    flask_client_poster,
    generate,
)
from tracecore import lifecycle

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # 08:00 in Changzhou and Zhaoqing
COMPANY = 7


def _device(n: int) -> SimDevice:
    return SimDevice(f"D{n:015X}", f"secret-{n}")


def _fleet(units: int = 60) -> Fleet:
    """Two shops in Changzhou (新北区, 溧阳市), one in Zhaoqing; two couriers in Changzhou,
    one in Zhaoqing."""
    shops = tuple(
        Shop(
            i,
            f"shop {i}",
            d.lat + 0.004,
            d.lon + 0.003,
            d.code,
            _device(10 * i + 1),
            _device(10 * i + 2),
            (Stock("白茶", 128.0, tuple(f"S{i}X{k:05d}" for k in range(units))),),
        )
        for i, d in enumerate(DISTRICT_BY_CODE[c] for c in ("320411", "320481", "441202"))
    )
    couriers = tuple(
        SimCourier(100 + i, COMPANY, f"courier {i}", d.lat, d.lon, d.code, _device(100 + i))
        for i, d in enumerate(DISTRICT_BY_CODE[c] for c in ("320402", "320412", "441203"))
    )
    return Fleet(shops, couriers)


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return _fleet()


@pytest.fixture(scope="module")
def stream(fleet) -> list[Outgoing]:
    return list(generate(fleet, start=START, seed=7, traffic=Traffic(offline_share=0.5)))


def _by_device(stream: list[Outgoing]) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for item in stream:
        out[item.device_id].append(item.event)
    return out


def _time(event: dict) -> datetime:
    return datetime.fromisoformat(event["time"])


# -- the pure generator ---------------------------------------------------------------------


def test_the_same_seed_gives_the_same_stream(fleet, stream):
    """Is the stream a function of fleet, start and seed, and does the seed matter?"""
    again = list(generate(fleet, start=START, seed=7, traffic=Traffic(offline_share=0.5)))
    assert [(o.publish_at, o.device_id, o.event) for o in again] == [
        (o.publish_at, o.device_id, o.event) for o in stream
    ]
    other = list(generate(fleet, start=START, seed=8, traffic=Traffic(offline_share=0.5)))
    assert [o.event["event_id"] for o in other] != [o.event["event_id"] for o in stream]


def test_every_event_passes_the_protocol_and_is_signed_by_its_device(fleet, stream):
    """Does each event pass check_event, verify with its device's secret, and is it an
    event its kind of device may report?"""
    devices = fleet.devices()
    kinds = {s.shelf.id: "shelf_scanner" for s in fleet.shops}
    kinds |= {s.pos.id: "pos_scanner" for s in fleet.shops}
    kinds |= {c.handheld.id: "courier_handheld" for c in fleet.couriers}
    assert len(stream) > 500
    for item in stream:
        checked = protocol.check_event(item.event, item.publish_at)
        protocol.verify(checked, devices[item.device_id].secret)
        assert checked.type in protocol.ALLOWED_BY_KIND[kinds[item.device_id]]
        assert checked.time <= item.publish_at
    assert {o.event["type"] for o in stream} >= {
        "shelved", "sold", "packed", "picked_up", "in_transit", "out_for_delivery", "signed",
    }  # fmt: skip


def test_each_device_numbers_its_events_without_gaps_in_time_order(stream):
    """Are a device's events sent with seq 1..n in order, and their times increasing?"""
    for device_id, events in _by_device(stream).items():
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), device_id
        times = [_time(e) for e in events]
        assert times == sorted(times) and len(set(times)) == len(times), device_id


def test_couriers_move_at_road_speeds(fleet, stream):
    """Between two consecutive scans of a handheld, is the courier slower than 120 km/h,
    and does the track cover real distances (transit between districts)?"""
    events = _by_device(stream)
    fastest, longest = 0.0, 0.0
    for courier in fleet.couriers:
        track = events[courier.handheld.id]
        assert track, courier
        for a, b in itertools.pairwise(track):
            km = distance_km(a["lat"], a["lon"], b["lat"], b["lon"])
            hours = (_time(b) - _time(a)).total_seconds() / 3600
            assert km / hours < 120, (a, b)
            fastest, longest = max(fastest, km / hours), max(longest, km)
    assert fastest > 20 and longest > 3


def test_parcels_are_well_formed_and_signed_near_the_consignee(fleet, stream):
    """Is every parcel packed with an SF waybill, a real district and the courier's company,
    delivered in lifecycle order, and signed within 100 m of its consignee point?"""
    packed = {o.event["waybill"]: o.event for o in stream if o.event["type"] == "packed"}
    assert len(packed) > 50
    steps = defaultdict(list)
    for item in stream:
        if "waybill" in item.event:
            e = item.event
            steps[e["waybill"]].append(lifecycle.Step(e["event_id"], e["type"], _time(e)))
    signers = set()
    for waybill, event in packed.items():
        assert re.fullmatch(r"SF\d{10}", waybill)
        data = event["data"]
        district = DISTRICT_BY_CODE[data["consignee_region_code"]]
        point = data["consignee"]
        assert distance_km(point["lat"], point["lon"], district.lat, district.lon) < 3
        assert data["logistics_company_id"] == COMPANY
        assert datetime.fromisoformat(data["promised_by"]) > _time(event)
        replay = lifecycle.replay(steps[waybill], initial="issued")
        assert not replay.violations and replay.state == "signed", waybill
        types = [s.type for s in replay.lawful]
        assert types[:2] == ["packed", "picked_up"] and "in_transit" in types
        assert types[-1] == "signed" and "out_for_delivery" in types
    for item in stream:
        if item.event["type"] == "signed":
            point = packed[item.event["waybill"]]["data"]["consignee"]
            metres = 1000 * distance_km(
                item.event["lat"], item.event["lon"], point["lat"], point["lon"]
            )
            assert metres < 100, item.event
            signers.add(item.event["data"]["signer"])
    assert signers == {"self", "proxy", "locker"}


def test_units_follow_the_lifecycle_from_shelf_to_signature(stream):
    """Replayed like the service does, is every unit's history lawful, and are sales
    priced orders with a channel?"""
    units = defaultdict(list)
    parcel_of = {}
    for item in stream:
        e = item.event
        for serial in e.get("codes", []):
            parcel_of[e["waybill"]] = [*parcel_of.get(e["waybill"], []), serial]
    for item in stream:
        e = item.event
        step = lifecycle.Step(e["event_id"], e["type"], _time(e))
        if "code" in e:
            units[e["code"]].append(step)
            if e["type"] == "sold":
                assert e["data"]["order_id"] and e["data"]["price"] > 0 and e["data"]["channel"]
        else:
            for serial in parcel_of[e["waybill"]]:
                units[serial].append(step)
    states = set()
    for serial, steps in units.items():
        replay = lifecycle.replay(steps)
        assert not replay.violations, serial
        states.add(replay.state)
    assert states == {"sold", "signed"}  # in-store sales end at sold


def test_offline_handhelds_send_late_bursts(fleet):
    """With offline handhelds, are there bursts of buffered events, sent well after they
    happened and after other devices' later events; and none without?"""
    online = list(generate(fleet, start=START, seed=3))
    assert all(o.burst is None and o.publish_at == o.time for o in online)
    stream = list(generate(fleet, start=START, seed=3, traffic=Traffic(offline_share=1.0)))
    bursts = defaultdict(list)
    for position, item in enumerate(stream):
        if item.burst is not None:
            bursts[item.burst].append(position)
    assert len(bursts) >= 3
    handhelds = {c.handheld.id for c in fleet.couriers}
    assert {stream[p[0]].device_id for p in bursts.values()} <= handhelds
    late = overtaken = 0
    for positions in bursts.values():
        first = stream[positions[0]]
        assert positions == list(range(positions[0], positions[0] + len(positions)))
        late += first.publish_at - first.time >= timedelta(minutes=10)
        # Something that happened later, on another device, was sent before.
        overtaken += any(
            o.device_id != first.device_id and o.time > first.time for o in stream[: positions[0]]
        )
    assert late >= 2 and overtaken >= 2


def test_the_stream_ends_when_the_stock_is_sold_and_delivered(fleet, stream):
    """Is every unit of every shop sold, and nothing sent twice?"""
    sold = [o.event["code"] for o in stream if o.event["type"] == "sold"]
    assert sorted(sold) == sorted(s for shop in fleet.shops for s in shop.stock[0].serials)
    assert len({o.event["event_id"] for o in stream}) == len(stream)


# -- runs into the service -------------------------------------------------------------------


def _recent_start() -> datetime:
    """08:00 in China two days ago: times the service accepts, a working day ahead."""
    day = datetime.now(UTC).date() - timedelta(days=2)
    return datetime(day.year, day.month, day.day, 0, 0, tzinfo=UTC)


def _a_signed_unit(sent: list[Outgoing]) -> str:
    codes = {o.event["waybill"]: o.event["codes"] for o in sent if o.event["type"] == "packed"}
    signed = [o.event["waybill"] for o in sent if o.event["type"] == "signed"]
    assert signed, "no parcel was delivered in the run"
    return codes[signed[0]][0]


def _lossy(fleet: Fleet) -> set[str]:
    """Devices whose messages may be lost without other devices' events being rejected:
    not the shelf scanners, whose packing scans the couriers' scans need first (a courier's
    scan of a parcel not yet known is rejected, unknown_waybill, for good)."""
    return {s.pos.id for s in fleet.shops} | {c.handheld.id for c in fleet.couriers}


def _stored_events(app) -> int:
    with app.extensions["trace"].sessionmaker() as session:
        return session.scalar(sa.text("SELECT count(*) FROM events"))


@pytest.mark.slow  # a simulated run, seconds
def test_a_run_over_http_is_accepted_and_delivers_units(app, client, make):
    """Does every event of a run through POST /api/v1/events get accepted, and does a
    delivered unit's history end signed?"""
    fleet = setup_fleet(app, shops=2, couriers=2, codes_per_shop=30, seed=1)
    assert len(fleet.shops) == 2 and len(fleet.couriers) == 2
    sent: list[Outgoing] = []
    stream = generate(fleet, start=_recent_start(), seed=5, traffic=Traffic(offline_share=0.5))
    publisher = HttpPublisher(fleet, flask_client_poster(client))
    stats = publisher.run((sent.append(o) or o for o in stream), max_events=250)
    assert stats.events == 250 == len(sent)
    assert (stats.accepted, stats.duplicate, stats.rejected, stats.unacked) == (250, 0, 0, 0)
    assert _stored_events(app) == 250
    serial = _a_signed_unit(sent)
    history = client.get(f"/api/v1/codes/{serial}/history", headers=make.auth("regulator"))
    assert history.status_code == 200, history.get_json()
    body = history.get_json()
    assert body["state"] == "signed"
    assert [e["type"] for e in body["events"]][:3] == ["shelved", "sold", "packed"]
    assert body["events"][-1]["type"] == "signed"


@pytest.mark.slow  # a simulated run, seconds
def test_lost_messages_are_resent_when_the_service_asks(app, client):
    """When messages are lost, does the service's resend command (or the ack timeout for a
    device's last message) bring every event in, each stored once?"""
    fleet = setup_fleet(app, shops=2, couriers=2, codes_per_shop=20, seed=2)
    publisher = HttpPublisher(
        fleet, flask_client_poster(client), loss=0.15, lossy=_lossy(fleet), ack_timeout=0.2
    )
    stream = generate(fleet, start=_recent_start(), seed=6)
    stats = publisher.run(stream, max_events=150, drain_timeout=20)
    assert stats.lost > 5 and stats.resend_commands > 0 and stats.resent >= stats.lost
    assert stats.unacked == 0 and stats.rejected == 0
    assert stats.accepted == 150 == _stored_events(app)


@pytest.mark.slow
@pytest.mark.committed  # a served app: its threads have connections of their own
def test_the_simulate_command_posts_to_a_running_service(app, runner):
    """Does `flask devices simulate --http URL` register a fleet, send the events to a real
    HTTP server, and report them accepted?"""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        # 72 h back: all 120 events lie in the past whatever the hour in China (at night the
        # simulated shops barely trade, and no event is ever sent before its time).
        args = ["--http", url, "--events", "120", "--rate", "0", "--seed", "4", "--lookback", "72"]
        result = runner.invoke(simulate_command, [*args, "--shops", "2", "--couriers", "2"])
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    assert "120 events" in result.output and "120 accepted" in result.output, result.output
    assert _stored_events(app) == 120


def test_the_simulate_command_refuses_both_limits(runner):
    result = runner.invoke(simulate_command, ["--http", "x", "--events", "1", "--duration", "1"])
    assert result.exit_code != 0 and "not both" in result.output


# -- over MQTT -------------------------------------------------------------------------------


class _IngestStub:
    """Just enough of the ingest worker to test the simulator over a real broker: a shared
    subscription with manual acks, batches into the ingest use case, acks after commit."""

    def __init__(self, app, url: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.app, self.inbox, self.stop = app, queue.SimpleQueue(), threading.Event()
        port = int(url.rsplit(":", 1)[1])
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="ingest-stub", protocol=mqtt.MQTTv5,
            manual_ack=True,
        )  # fmt: skip
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(protocol.SHARED_SUBSCRIPTION, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda c, u, m: self.inbox.put(m)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10)
        self.thread = threading.Thread(target=self.work, daemon=True)
        self.thread.start()

    def work(self) -> None:
        from app.ingest.run import Inbound, ingest

        ext = self.app.extensions["trace"]
        while not self.stop.is_set():
            messages = []
            try:
                messages.append(self.inbox.get(timeout=0.05))
                while len(messages) < 50:
                    messages.append(self.inbox.get_nowait())
            except queue.Empty:
                pass
            if not messages:
                continue
            inbound = [
                Inbound(protocol.device_id_from_topic(m.topic), m.payload, datetime.now(UTC))
                for m in messages
            ]
            with ext.sessionmaker() as session:
                result = ingest(session, ext.config.SECRET_KEY, inbound)
                session.commit()
            for message, acks in zip(inbound, result.acks, strict=True):
                for ack in acks:
                    self.client.publish(
                        protocol.topic_acks(message.device_id), json.dumps(ack.to_json()), qos=1
                    )
            for device_id, command in result.commands:
                self.client.publish(protocol.topic_commands(device_id), json.dumps(command), qos=1)
            for m in messages:
                self.client.ack(m.mid, m.qos)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.slow
@pytest.mark.committed  # Mosquitto, and ingest on a thread of its own
@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_a_run_over_mqtt_through_a_private_broker(app, make, client):
    """Over a real MQTT 5 broker (mosquitto, started by devices.broker), with a device
    connection each, lost messages and offline bursts: is every event acked accepted, once?"""
    fleet = setup_fleet(app, shops=2, couriers=2, codes_per_shop=30, seed=3)
    try:
        broker = start_broker()
    except BrokerError as exc:  # pragma: no cover - a machine without a usable broker
        pytest.skip(str(exc))
    with broker:
        stub = _IngestStub(app, broker.url)
        try:
            sent: list[Outgoing] = []
            stream = generate(
                fleet, start=_recent_start(), seed=9, traffic=Traffic(offline_share=0.5)
            )
            # At a bounded rate: devices publish over separate connections, so a packing scan
            # and a pickup sent within a millisecond may reach the service in either order,
            # and a pickup of a waybill not yet packed is rejected for good (unknown_waybill).
            publisher = MqttPublisher(
                fleet, broker.url, loss=0.05, lossy=_lossy(fleet), ack_timeout=1.0
            )
            stats = publisher.run(
                (sent.append(o) or o for o in stream), rate=100, max_events=250, drain_timeout=30
            )
        finally:
            stub.close()
    assert stats.events == 250 and stats.lost > 0 and stats.resend_commands > 0
    assert stats.unacked == 0 and stats.rejected == 0
    assert stats.accepted == 250 == _stored_events(app)
    serial = _a_signed_unit(sent)
    history = client.get(f"/api/v1/codes/{serial}/history", headers=make.auth("regulator"))
    assert history.get_json()["state"] == "signed"


def test_districts_are_in_changzhou_and_zhaoqing():
    assert {d.city for d in DISTRICTS} == {"常州市", "肇庆市"}
    assert all(d.code[:4] in ("3204", "4412") for d in DISTRICTS)


@pytest.mark.slow
@pytest.mark.committed  # Mosquitto, and ingest on a thread of its own
@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_events_no_worker_heard_are_resent_once_one_listens(app):
    """Published before any ingest worker subscribed, messages are dropped by the broker
    (PUBACK reason 16): are they resent soon, not after the ack timeout, and stored?

    Shops only: devices resend their backlogs independently, so with couriers a pickup could
    overtake its packing scan and be rejected for good (unknown_waybill)."""
    fleet = setup_fleet(app, shops=2, couriers=0, codes_per_shop=15, seed=4)
    with start_broker() as broker:
        stubs = []
        late = threading.Timer(1.5, lambda: stubs.append(_IngestStub(app, broker.url)))
        late.start()
        try:
            publisher = MqttPublisher(fleet, broker.url, ack_timeout=60.0)
            stats = publisher.run(
                generate(fleet, start=_recent_start(), seed=2),
                rate=40,
                max_events=40,
                drain_timeout=20,
            )
        finally:
            late.join()
            for stub in stubs:
                stub.close()
    assert stats.events == 40 and stats.unheard > 0 and stats.resent > 0
    assert (stats.accepted, stats.unacked, stats.rejected) == (40, 0, 0)
    assert _stored_events(app) == 40


def test_an_internal_error_is_resent_and_a_rejection_is_not(fleet):
    """Is an event the service failed on (internal_error) kept and resent, while a
    rejected one is dropped from the outbox for good?"""
    answers: dict[str, list[str]] = defaultdict(list)

    def poster(device_id: str, payload: bytes) -> dict:
        body = json.loads(payload)
        acks = []
        for event in body.get("events", [body]):
            seen = answers[event["event_id"]]
            if event["seq"] == 1:
                seen.append("rejected")
                acks.append({"event_id": event["event_id"], "status": "rejected",
                             "reason": "unknown_code", "message": "never issued"})  # fmt: skip
            elif event["seq"] == 2 and not seen:
                seen.append("internal_error")
                acks.append({"event_id": event["event_id"], "status": "rejected",
                             "reason": "internal_error", "message": "oops"})  # fmt: skip
            else:
                seen.append("accepted")
                acks.append({"event_id": event["event_id"], "status": "accepted"})
        return {"acks": acks, "commands": []}

    sent: list[Outgoing] = []
    publisher = HttpPublisher(fleet, poster, ack_timeout=0.05)
    stream = generate(fleet, start=START, seed=1)
    stats = publisher.run((sent.append(o) or o for o in stream), max_events=40, drain_timeout=5)
    firsts = sum(o.event["seq"] == 1 for o in sent)
    seconds = sum(o.event["seq"] == 2 for o in sent)
    assert stats.unacked == 0 and len(answers) == stats.events == 40
    assert (stats.rejected, stats.internal_errors, stats.resent) == (firsts, seconds, seconds)
    assert stats.accepted == 40 - firsts
    for seen in answers.values():
        assert seen in (["rejected"], ["accepted"], ["internal_error", "accepted"])
