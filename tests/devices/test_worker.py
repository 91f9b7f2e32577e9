"""The MQTT ingest worker, end to end: a private Mosquitto, the worker as a subprocess
(`flask --app wsgi devices ingest`), devices publishing signed events with QoS 1."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from mqtt_support import Device, now, wait_for

from tests.factories import resigned

# A worker subprocess reads what the tests commit.
pytestmark = [pytest.mark.usefixtures("broker"), pytest.mark.slow, pytest.mark.committed]


@pytest.fixture
def world(make, devices):
    """A merchant with a shelf and a POS scanner, a courier with a handheld, 3 units."""
    merchant = make.merchant()
    company = make.company()
    courier = make.courier(company)
    batch = make.batch(make.product(merchant))
    return {
        "merchant": merchant,
        "company": company,
        "serials": make.codes(batch, 3),
        "shelf": devices("shelf_scanner", merchant),
        "pos": devices("pos_scanner", merchant),
        "handheld": devices("courier_handheld", courier),
    }


def packed(world, device: Device, when, serial: str, waybill: str = "SF1234567890") -> dict:
    return device.event(
        "packed",
        when,
        waybill=waybill,
        codes=[serial],
        data={
            "consignee": {"lat": 31.80, "lon": 119.98},
            "consignee_region_code": "320411",
            "logistics_company_id": world["company"],
        },
    )


def journey(world, start) -> list[tuple[Device, dict]]:
    """Shelve, sell, pack and deliver unit 0: (device, event) in event-time order."""
    shelf, pos, hh = world["shelf"], world["pos"], world["handheld"]
    serial, waybill = world["serials"][0], "SF1234567890"
    at = lambda minutes: start + timedelta(minutes=minutes)  # noqa: E731
    return [
        (shelf, shelf.event("shelved", at(0), code=serial)),
        (pos, pos.event("sold", at(10), code=serial, data={"order_id": "O-1"})),
        (shelf, packed(world, shelf, at(20), serial, waybill)),
        (hh, hh.event("picked_up", at(60), waybill=waybill)),
        (hh, hh.event("in_transit", at(120), waybill=waybill)),
        (hh, hh.event("out_for_delivery", at(180), waybill=waybill)),
        (hh, hh.event("signed", at(200), waybill=waybill, data={"signer": "self"})),
    ]


def history(client, make, serial: str) -> dict:
    resp = client.get(f"/api/v1/codes/{serial}/history", headers=make.auth("regulator"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


JOURNEY = ["shelved", "sold", "packed", "picked_up", "in_transit", "out_for_delivery", "signed"]


def test_a_journey_published_over_mqtt_is_stored_and_acked(client, make, world, start_worker):
    """Do events published over MQTT reach the history, and does each device get an
    ``accepted`` ack per event on its acks topic?"""
    start_worker()
    steps = journey(world, now() - timedelta(hours=4))
    for device, event in steps:
        device.publish(event)
        # in order: each step's predecessor is stored before the next is sent
        assert device.wait_acks([event["event_id"]])[event["event_id"]] == ["accepted"]
    body = history(client, make, world["serials"][0])
    assert [e["type"] for e in body["events"]] == JOURNEY
    assert [e["event_id"] for e in body["events"]] == [e["event_id"] for _, e in steps]
    assert body["state"] == "signed"
    assert all(e["violation"] is None for e in body["events"])
    # each message is answered before the next is sent: one ack message each
    assert world["handheld"].ack_messages[0] == [
        {"event_id": steps[3][1]["event_id"], "status": "accepted"}
    ]


def test_a_duplicate_delivery_is_stored_once(make, world, start_worker, scalar):
    """Is an event delivered twice stored once, and the second copy answered ``duplicate``?"""
    start_worker()
    shelf = world["shelf"]
    event = shelf.event("shelved", now() - timedelta(minutes=5), code=world["serials"][0])
    shelf.publish(event)
    shelf.publish(event)
    wait_for(lambda: len(shelf.statuses(event["event_id"])) == 2, 30, "two acks")
    assert shelf.statuses(event["event_id"]) == ["accepted", "duplicate"]
    assert scalar("SELECT count(*) FROM events WHERE event_id = :e", e=event["event_id"]) == 1


def test_out_of_order_arrivals_are_told_in_event_time_order(client, make, world, start_worker):
    """When the handheld, offline for a day, sends its pickup-to-signature buffer (in no
    particular order) before the shop's scanners send packing, sale and shelving, is the
    history in event-time order, lawful, and in the right state?"""
    start_worker()
    steps = journey(world, now() - timedelta(days=1, hours=2))
    (shelf, shelved), (pos, sold), (_, pack), *delivery = steps
    handheld = world["handheld"]
    scrambled = [delivery[3][1], delivery[0][1], delivery[2][1], delivery[1][1]]
    handheld.publish(*scrambled)  # before the parcel exists: parked until it is packed
    acks = handheld.wait_acks([e["event_id"] for e in scrambled])
    assert list(acks.values()) == [["accepted"]] * 4
    assert {a["reason"] for e in scrambled for a in handheld.acks[e["event_id"]]} == {"parked"}
    shelf.publish(pack)
    pos.publish(sold)
    shelf.publish(shelved)
    for device, event in [(shelf, pack), (pos, sold), (shelf, shelved)]:
        assert device.wait_acks([event["event_id"]])[event["event_id"]] == ["accepted"]

    def told() -> dict | None:
        body = history(client, make, world["serials"][0])
        return body if len(body["events"]) == len(JOURNEY) else None

    body = wait_for(told, 30, "the parked events to be applied")
    assert [e["type"] for e in body["events"]] == JOURNEY
    assert [e["violation"] for e in body["events"]] == [None] * len(JOURNEY)
    assert body["state"] == "signed"
    assert [c["party"]["type"] for c in body["custody"]] == ["merchant", "courier", "consignee"]


def test_every_bad_input_is_rejected_with_its_reason(
    client, make, world, devices, broker, start_worker, scalar, rows
):
    """Does each bad input of PROTOCOL.md get a ``rejected`` ack with its reason and a row in
    rejected_events, while the valid events of the same message are stored and the worker
    keeps going?"""
    worker = start_worker()
    shelf, handheld = world["shelf"], world["handheld"]
    a, b, c = world["serials"]
    t = now() - timedelta(hours=1)

    # whole messages that cannot be read: one ack with event_id null
    shelf.publish(raw=b"{not json")
    shelf.publish(raw=b"x" * (256 * 1024 + 1))
    shelf.publish(raw=json.dumps({"events": [{}] * 501}).encode())
    wait_for(lambda: len(shelf.ack_stream) == 3, 30, "acks of the three unreadable messages")
    assert [a["reason"] for a in shelf.ack_stream] == ["malformed", "too_large", "too_many"]
    assert all(a["event_id"] is None and a["status"] == "rejected" for a in shelf.ack_stream)

    # one message, good and bad events mixed: one ack each, in the message's order
    def without(event: dict, key: str) -> dict:
        return resigned(event, shelf.secret, **{key: None})

    tampered = shelf.event("shelved", t, code=b)
    tampered["time"] = (t + timedelta(minutes=1)).isoformat()
    mixed = [
        (shelf.event("shelved", t, code=a), "accepted"),
        (without(shelf.event("shelved", t, code=b), "seq"), "missing_field"),
        (shelf.event("shelved", t, code=b, event_id="not-a-uuid"), "invalid_field"),
        (without(shelf.event("shelved", t, code=b), "lon"), "bad_coordinates"),
        (shelf.event("shelved", now() + timedelta(hours=1), code=b), "future_time"),
        (shelf.event("shelved", now() - timedelta(days=31), code=b), "too_old"),
        (tampered, "bad_signature"),
        (shelf.event("signed", t, waybill="SF0000000001", data={"signer": "self"}), "not_allowed"),
        (shelf.event("shelved", t, code="NEVERISSUED00001"), "unknown_code"),
        (shelf.event("shelved", t, code=c), "accepted"),
    ]
    shelf.publish(*[e for e, _ in mixed])
    wait_for(lambda: len(shelf.ack_stream) == 3 + len(mixed), 30, "the mixed message's acks")
    acks = shelf.ack_stream[3:]
    assert [(x.get("reason") or x["status"]) for x in acks] == [r for _, r in mixed]
    assert [x["event_id"] for x in acks] == [e["event_id"] for e, _ in mixed]  # as claimed

    # a parcel event for a waybill not packed (yet) is parked, not rejected: it becomes
    # `unknown_waybill` only if no packing comes within 24 hours (the sweep's job)
    early = handheld.event("picked_up", t, waybill="SF9999999999")
    handheld.publish(early)
    assert handheld.wait_acks([early["event_id"]])[early["event_id"]] == ["accepted"]
    assert handheld.acks[early["event_id"]][0]["reason"] == "parked"

    # an unregistered device id, and a disabled device
    stranger = Device(broker.port, "FFFFFFFFFFFFFFFF", "0" * 64)
    try:
        ghost = stranger.event("shelved", t, code=a)
        stranger.publish(ghost)
        assert stranger.wait_acks([ghost["event_id"]])
        assert stranger.acks[ghost["event_id"]][0]["reason"] == "unknown_device"
    finally:
        stranger.close()
    lost_scanner = devices("shelf_scanner", world["merchant"])
    resp = client.post(
        f"/api/v1/devices/{lost_scanner.device_id}/disable", headers=make.auth("admin")
    )
    assert resp.status_code == 200, resp.get_json()
    stolen = lost_scanner.event("shelved", t, code=b)
    lost_scanner.publish(stolen)
    lost_scanner.wait_acks([stolen["event_id"]])
    assert lost_scanner.acks[stolen["event_id"]][0]["reason"] == "disabled_device"

    # ... and the worker is still there and still storing
    after = shelf.event("shelved", t + timedelta(minutes=5), code=b)
    shelf.publish(after)
    assert shelf.wait_acks([after["event_id"]])[after["event_id"]] == ["accepted"]
    assert worker.alive()
    expected = ["malformed", "too_large", "too_many"] + [r for _, r in mixed if r != "accepted"]
    expected += ["disabled_device"]
    assert sorted(r for (r,) in rows("SELECT reason FROM rejected_events")) == sorted(expected)
    # an unregistered device's events are counted, not kept one row each
    tallies = rows("SELECT address, device_id, reason, count FROM rejection_tallies")
    assert [tuple(t) for t in tallies] == [("", "FFFFFFFFFFFFFFFF", "unknown_device", 1)]
    assert scalar("SELECT count(*) FROM events") == 3


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"])
def test_a_time_without_a_utc_moment_costs_its_neighbours_nothing_over_mqtt(
    client, make, world, start_worker, scalar, rows, when
):
    """Over the real broker and worker: is an event whose time parses but has no UTC moment
    (signed, or not signed at all) rejected alone with its reason, the valid signed events of
    the same message stored exactly once, and no batch retried message by message?"""
    worker = start_worker()
    shelf, (a, b, c) = world["shelf"], world["serials"]
    t = now() - timedelta(minutes=30)
    first = shelf.event("shelved", t, code=a)
    poisoned = resigned(shelf.event("shelved", t, code=b), shelf.secret, time=when)
    unsigned = dict(poisoned, sig="0" * 64)
    last = shelf.event("shelved", t + timedelta(minutes=1), code=c)
    message = [first, poisoned, unsigned, last]
    shelf.publish(*message)
    wait_for(lambda: len(shelf.ack_stream) == 4, 30, "the message's acks")
    answered = [(a["event_id"], a["status"], a.get("reason")) for a in shelf.ack_stream]
    assert answered == [
        (first["event_id"], "accepted", None),
        (poisoned["event_id"], "rejected", "invalid_field"),  # (the unsigned copy's id too)
        (poisoned["event_id"], "rejected", "invalid_field"),
        (last["event_id"], "accepted", None),
    ]
    # the same message again (a device that got no ack resends): nothing stored twice
    shelf.publish(*message)
    wait_for(lambda: len(shelf.ack_stream) == 8, 30, "the resent message's acks")
    assert [a["status"] for a in shelf.ack_stream[4:]] == [
        "duplicate",
        "rejected",
        "rejected",
        "duplicate",
    ]
    stored = rows("SELECT event_id FROM events ORDER BY event_id")
    assert sorted(e for (e,) in stored) == sorted([first["event_id"], last["event_id"]])
    rejected = rows("SELECT event_id, reason, message FROM rejected_events")
    assert {(r.event_id, r.reason) for r in rejected} == {(poisoned["event_id"], "invalid_field")}
    assert all("'time' is out of range" in r.message for r in rejected) and len(rejected) == 4
    assert worker.alive()
    assert "one at a time" not in worker.output() and "fails alone" not in worker.output()


def test_a_sequence_gap_is_detected_and_closed(make, world, devices, start_worker, rows):
    """Seq 1, 2, 5: is the gap 3..4 recorded and a resend asked for on the commands topic,
    and does resending 3 and 4 close it?"""
    start_worker()
    batch = make.batch(make.product(world["merchant"]))
    serials = make.codes(batch, 5)
    scanner = devices("shelf_scanner", world["merchant"])
    t = now() - timedelta(hours=1)
    events = {
        seq: scanner.event("shelved", t + timedelta(minutes=seq), seq=seq, code=serials[seq - 1])
        for seq in range(1, 6)
    }
    gaps = "SELECT first_seq, last_seq FROM sequence_gaps WHERE device_id = :d"
    scanner.publish(events[1], events[2])
    scanner.publish(events[5])
    scanner.wait_acks([events[s]["event_id"] for s in (1, 2, 5)])
    wait_for(lambda: scanner.commands, 30, "a command")
    assert scanner.commands == [{"command": "resend", "from_seq": 3, "to_seq": 4}]
    assert [tuple(r) for r in rows(gaps, d=scanner.device_id)] == [(3, 4)]

    scanner.publish(events[3], events[4])
    acks = scanner.wait_acks([events[3]["event_id"], events[4]["event_id"]])
    assert list(acks.values()) == [["accepted"], ["accepted"]]
    assert rows(gaps, d=scanner.device_id) == []
    assert scanner.commands == [{"command": "resend", "from_seq": 3, "to_seq": 4}]


# -- crashes ----------------------------------------------------------------------------------

STREAM_EVENTS = 20_000
PER_MESSAGE = 100


class Publisher(threading.Thread):
    """A thread whose join() re-raises what failed in it."""

    def __init__(self, target) -> None:
        super().__init__(daemon=True)
        self.work, self.error = target, None
        self.start()

    def run(self) -> None:
        try:
            self.work()
        except BaseException as exc:  # handed to join()
            self.error = exc

    def join(self, timeout: float | None = 120) -> None:
        super().join(timeout)
        assert not self.is_alive(), "the publisher is stuck"
        if self.error:
            raise self.error


@pytest.fixture
def stream(make, devices):
    """20,000 valid, signed shelving events from 4 scanners, 100 per message, and a way to
    publish them at a steady pace from a thread."""
    merchant = make.merchant()
    batch = make.batch(make.product(merchant), quantity=STREAM_EVENTS)
    serials = make.codes(batch, STREAM_EVENTS)
    scanners = [devices("shelf_scanner", merchant) for _ in range(4)]
    t = now() - timedelta(hours=3)
    messages = []
    for i in range(0, STREAM_EVENTS, PER_MESSAGE):
        scanner = scanners[(i // PER_MESSAGE) % len(scanners)]
        events = [
            scanner.event("shelved", t + timedelta(milliseconds=n), code=serials[n])
            for n in range(i, i + PER_MESSAGE)
        ]
        messages.append((scanner, events))

    class Stream:
        resent = 0

        def publish(self, pace: float = 0.01) -> Publisher:
            """Publish every message from a thread; joining it waits until each one is
            PUBACKed (and resent if the broker had no subscriber for it)."""

            def run():
                for scanner, events in messages:
                    scanner.publish(*events, wait=False)
                    time.sleep(pace)
                self.resent = sum(scanner.resend_unrouted() for scanner in scanners)

            return Publisher(run)

        def wait_all_acked(self, timeout: float):
            def acked() -> bool:
                return all(
                    scanner.acks.get(e["event_id"]) for scanner, events in messages for e in events
                )

            wait_for(acked, timeout, "an ack for every event", every=0.2)
            return {
                status
                for scanner, events in messages
                for e in events
                for status in scanner.statuses(e["event_id"])
            }

    return Stream()


def _stored_exactly_once(scalar, stream, timeout: float) -> None:
    wait_for(
        lambda: scalar("SELECT count(*) FROM events") >= STREAM_EVENTS,
        timeout,
        f"{STREAM_EVENTS} stored events",
        every=0.2,
    )
    assert scalar("SELECT count(*) FROM events") == STREAM_EVENTS
    assert scalar("SELECT count(DISTINCT event_id) FROM events") == STREAM_EVENTS
    assert scalar("SELECT count(*) FROM rejected_events") == 0
    assert scalar("SELECT count(*) FROM sequence_gaps") == 0


def test_a_worker_killed_mid_stream_stores_every_event_once(stream, start_worker, scalar):
    """SIGKILL the worker in the middle of 20,000 events and start it again: is every event
    stored exactly once, and acked to its device?"""
    worker = start_worker("--batch-size", "5")
    publisher = stream.publish()
    wait_for(lambda: scalar("SELECT count(*) FROM events") >= 3000, 60, "3000 stored events")
    worker.kill()
    stored_at_kill = scalar("SELECT count(*) FROM events")
    assert stored_at_kill < STREAM_EVENTS, "the worker finished before it could be killed"
    start_worker("--batch-size", "5")
    publisher.join()
    _stored_exactly_once(scalar, stream, 120)
    assert stream.wait_all_acked(60) <= {"accepted", "duplicate"}


def test_a_broker_restart_mid_stream_stores_every_event_once(stream, start_worker, scalar, broker):
    """Restart the broker in the middle of 20,000 events: is every event stored exactly
    once, and acked to its device?"""
    start_worker("--batch-size", "5")
    publisher = stream.publish()
    wait_for(lambda: scalar("SELECT count(*) FROM events") >= 3000, 60, "3000 stored events")
    broker.restart()
    assert scalar("SELECT count(*) FROM events") < STREAM_EVENTS, "restarted too late"
    publisher.join()
    print(f"resent after the restart: {stream.resent} messages")  # 0 from Mosquitto 2.0.12
    _stored_exactly_once(scalar, stream, 120)
    assert stream.wait_all_acked(60) <= {"accepted", "duplicate"}


def test_sigterm_finishes_the_batch_and_stops_cleanly(world, start_worker, scalar):
    """Does SIGTERM stop the worker promptly, with exit status 0, after storing and acking
    what it had taken?"""
    worker = start_worker()
    shelf = world["shelf"]
    event = shelf.event("shelved", now() - timedelta(minutes=5), code=world["serials"][0])
    shelf.publish(event)
    assert shelf.wait_acks([event["event_id"]])[event["event_id"]] == ["accepted"]
    started = time.monotonic()
    assert worker.terminate() == 0
    assert time.monotonic() - started < 10
    assert "ingest worker trace-ingest-test stopped after 1 events" in worker.output()
    assert scalar("SELECT count(*) FROM events") == 1


def test_the_sweep_runs_when_due_and_a_failure_does_not_stop_the_worker(app):
    """Does the worker sweep only once sweep_every has passed, and go on if a sweep fails?"""
    from app.ingest.worker import BrokerAddress, Worker

    calls = []
    worker = Worker(
        app.extensions["trace"].sessionmaker,
        "k",
        BrokerAddress.parse("mqtt://127.0.0.1:1"),
        client_id="sweep-test",
        sweep=lambda session: calls.append("swept"),
        sweep_every=60,
    )
    worker._maybe_sweep()
    assert calls == []
    worker._last_sweep -= 61
    worker._maybe_sweep()
    assert calls == ["swept"]

    def broken(session):
        raise RuntimeError("database hiccup")

    worker.sweep = broken
    worker._last_sweep -= 61
    worker._maybe_sweep()  # logged, not raised
    assert worker._last_sweep > 0


def test_a_handheld_offline_across_sweeps_leaves_no_finding_and_no_credit_effect(
    world, start_worker, scalar
):
    """A parcel picked up three days ago, promised 12 h later; the handheld goes offline
    with its later scans (out for delivery, signed well before the promise) while the worker
    sweeps, then delivers them. The parcel was awaiting sync, never late nor stalled: no
    open finding, and no credit record for anyone (issue 14, item 2)."""
    worker = start_worker("--sweep-every", "1")
    shelf, hh, serial = world["shelf"], world["handheld"], world["serials"][0]
    start, waybill = now() - timedelta(days=3), "SF7700000001"
    pack = shelf.event(
        "packed",
        start,
        waybill=waybill,
        codes=[serial],
        data={
            "consignee": {"lat": 31.78, "lon": 119.95},  # where the handheld signs
            "consignee_region_code": "320411",
            "logistics_company_id": world["company"],
            "promised_by": (start + timedelta(hours=12)).isoformat(),
        },
    )
    shelf.publish(pack)
    shelf.wait_acks([pack["event_id"]])
    pickup = hh.event("picked_up", start + timedelta(minutes=10), waybill=waybill)
    hh.publish(pickup)
    hh.wait_acks([pickup["event_id"]])
    # offline: these wait in the handheld's buffer while the worker sweeps
    buffered = [
        hh.event("in_transit", start + timedelta(hours=2), waybill=waybill),
        hh.event("out_for_delivery", start + timedelta(hours=4), waybill=waybill),
        hh.event("signed", start + timedelta(hours=5), waybill=waybill, data={"signer": "self"}),
    ]
    swept = worker.output().count("sweep:")
    wait_for(lambda: worker.output().count("sweep:") >= swept + 2, 30, "two sweeps")
    assert scalar("SELECT count(*) FROM anomalies") == 0
    hh.publish(*buffered)
    hh.wait_acks([e["event_id"] for e in buffered])
    swept = worker.output().count("sweep:")
    wait_for(lambda: worker.output().count("sweep:") >= swept + 1, 30, "a sweep after the burst")
    assert scalar("SELECT count(*) FROM anomalies WHERE status = 'open'") == 0
    assert scalar("SELECT count(*) FROM credit_records") == 0
    assert scalar("SELECT state FROM parcels WHERE waybill = :w", w=waybill) == "signed"
