"""Rejected events (issue 18): unknown senders are counted, not stored one row each; a
registered device's rejections are rows up to an hourly cap; a kept payload carries no
personal data; the pages find rejected events by an index; and the HTTP endpoint limits the
requests that authenticate nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.events.rejections import Caps
from app.ingest.run import Inbound, Limits, ingest
from tests.app.test_events_api import T0, Handset, statuses
from tests.app.test_workspace import HTML, sign_in
from tests.conftest import Make
from tests.factories import resigned, signed_event

#: The flood: this many unknown senders (each its own address), this many events each.
FLOOD_SENDERS = 40
FLOOD_EVENTS = 250


def _count(session, table: str) -> int:
    return session.scalar(sa.text(f"SELECT count(*) FROM {table}"))


def _tallies(session) -> list:
    return session.execute(
        sa.text("SELECT address, device_id, reason, count FROM rejection_tallies ORDER BY id")
    ).all()


def _ingest(app, device_id: str, payload: dict | bytes, caps: Caps, address: str = "") -> list:
    """One message through the ingest run, committed; its acks."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with app.extensions["trace"].sessionmaker() as s:
        result = ingest(
            s,
            "test-secret",
            [Inbound(device_id, raw, T0 + timedelta(hours=1), address)],
            limits=Limits(caps=caps),
            now=T0 + timedelta(days=1),
        )
        s.commit()
    return result.acks[0]


def test_a_flood_from_unknown_devices_leaves_a_bounded_number_of_rows(client, make, world, session):
    """When thousands of unauthenticated events with unknown device ids arrive over HTTP,
    are they all rejected and counted, with no row in rejected_events and one tally per
    sender, and do the regulators' reads still answer?"""
    serial = world["serials"][0]
    for n in range(FLOOD_SENDERS):
        stranger = Handset(client, f"FLOOD{n:011d}", "guess")
        events = [stranger.event("shelved", code=serial) for _ in range(FLOOD_EVENTS)]
        resp = client.post(
            "/api/v1/events",
            json={"events": events},
            headers={"X-Device-Id": stranger.device_id},
            environ_base={"REMOTE_ADDR": f"198.51.100.{n}"},
        )
        assert resp.status_code == 200, resp.get_json()
        assert {a["reason"] for a in resp.json["acks"]} == {"unknown_device"}
    assert _count(session, "rejected_events") == 0
    tallies = _tallies(session)
    assert len(tallies) == FLOOD_SENDERS
    assert sum(t.count for t in tallies) == FLOOD_SENDERS * FLOOD_EVENTS
    assert {t.address for t in tallies} == {f"198.51.100.{n}" for n in range(FLOOD_SENDERS)}

    regulator = make.auth("regulator")
    listed = client.get("/api/v1/rejected-events", headers=regulator)
    assert listed.status_code == 200 and listed.json["items"] == []
    counted = client.get("/api/v1/rejected-events/tallies", headers=regulator)
    assert counted.status_code == 200
    assert sum(t["count"] for t in counted.json["items"]) == FLOOD_SENDERS * FLOOD_EVENTS
    first = counted.json["items"][0]
    assert first["reason"] == "unknown_device" and first["window_start"].endswith(":00:00Z")
    assert json.loads(first["sample"])["code"] == serial


def test_beyond_an_hours_cap_of_tallies_further_senders_are_counted_together(app, session):
    """However many unknown device ids a flood uses, are at most the cap of tallies opened in
    an hour, the further senders counted under '*', and every event counted?"""
    caps = Caps(tallies_per_hour=10)
    for n in range(35):
        event = signed_event("guess", "shelved", T0, code="AAAAAAAAAAAAAAAA")
        acks = _ingest(app, f"GHOST{n:011d}", event, caps, address=f"203.0.113.{n}")
        assert [a.reason for a in acks] == ["unknown_device"]
    tallies = _tallies(session)
    assert len(tallies) == 11
    assert sum(t.count for t in tallies) == 35
    others = [t for t in tallies if t.device_id == "*"]
    assert [(t.address, t.count) for t in others] == [("*", 25)]


def test_a_registered_devices_rejections_are_rows_up_to_its_hourly_cap_then_counted(
    app, world, session
):
    """Are a registered device's rejected events kept one row each (evidence about its
    owner) up to its cap in an hour, and the rest added to its tally, batch after batch?"""
    shelf, serial = world["shelf"], world["serials"][0]
    caps = Caps(rows_per_device=3)

    def forged(n: int) -> dict:
        return {"events": [dict(shelf.event("shelved", code=serial), sig="0" * 64)] * n}

    assert {a.reason for a in _ingest(app, shelf.device_id, forged(5), caps)} == {"bad_signature"}
    _ingest(app, shelf.device_id, forged(2), caps)
    assert _count(session, "rejected_events") == 3
    assert [tuple(t) for t in _tallies(session)] == [("", shelf.device_id, "bad_signature", 4)]


def test_a_rejected_packings_personal_data_is_not_kept(client, make, world, session):
    """Is a packing rejected after its signature was checked (an unknown logistics company)
    kept without the consignee's name and phone, its point to about a kilometre, and found
    by its waybill?"""
    shelf = world["shelf"]
    packing = shelf.event(
        "packed",
        waybill="SF7700000001",
        codes=[world["serials"][0]],
        buyer="王小明 13912345678",
        data={
            "consignee": {
                "name": "王小明",
                "phone": "13912345678",
                "lat": 31.781234,
                "lon": 119.951234,
            },
            "consignee_region_code": "320411",
            "logistics_company_id": 999_999,
            "note": "请放门口 13912345678",
        },
    )
    assert statuses(shelf.post(packing)) == [("rejected", "invalid_field")]
    items = client.get(
        "/api/v1/rejected-events",
        query_string={"waybill": "SF7700000001"},
        headers=make.auth("regulator"),
    ).json["items"]
    assert len(items) == 1 and items[0]["event_id"] == packing["event_id"]
    text = items[0]["payload"]
    assert "王小明" not in text and "13912345678" not in text and "31.781234" not in text
    kept = json.loads(text)
    assert kept["data"] == {
        "consignee_region_code": "320411",
        "logistics_company_id": 999_999,
        "consignee": {"lat": 31.78, "lon": 119.95},
    }
    assert kept["codes"] == [world["serials"][0]] and "buyer" not in kept
    stored = session.scalar(sa.text("SELECT payload FROM rejected_events"))
    assert "13912345678" not in stored


def test_an_unreadable_message_keeps_only_its_masked_start(world, session):
    """Does a message that is not JSON keep only its first characters, digits masked?"""
    client = world["shelf"].client
    resp = client.post(
        "/api/v1/events",
        data=b'{"events": [{"phone": "13912345678", "name": "\xe7\x8e\x8b"',
        content_type="application/json",
        headers={"X-Device-Id": world["shelf"].device_id},
    )
    assert statuses(resp.json) == [("rejected", "malformed")]
    payload = session.scalar(sa.text("SELECT payload FROM rejected_events"))
    assert payload == '{"events": [{"phone": "###########", "name": "*"'


def test_the_code_page_finds_rejected_events_by_index_not_by_payload(
    app, client, make, world, session
):
    """Does the workspace's code page show a unit's rejected events, read through the
    indexed serial column (never LIKE over payloads)?"""
    shelf, serial = world["shelf"], world["serials"][1]
    tampered = dict(shelf.event("shelved", code=serial), sig="f" * 64)
    assert statuses(shelf.post(tampered)) == [("rejected", "bad_signature")]
    engine = app.extensions["trace"].engine
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM rejected_events" in statement:
            seen.append((statement, parameters))

    regulator = sign_in(client, *make.user("regulator", "3204"))
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        html = regulator.get(f"/workspace/codes/{serial}", headers=HTML).text
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert "bad_signature" in html and tampered["event_id"] in html
    (statement, parameters), *_ = seen
    # (the jurisdiction's region prefix may be a LIKE; the payload is never searched)
    assert "PAYLOAD LIKE" not in statement.upper() and "INSTR(" not in statement.upper()
    conn = session.connection()
    if engine.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
    else:
        plan = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    assert any("ix_rejected_events_serial" in line for line in plan), plan


def test_requests_that_authenticate_nothing_are_limited_per_address(database_url):
    """Is POST /api/v1/events limited per client address for requests none of whose events
    a registered device signed (429 in the error shape, with Retry-After), while a device's
    signed events are never counted and another address is not held back?"""
    from app import create_app

    limited = create_app(
        {
            "DATABASE_URL": database_url,
            "TRACE_ENV": "testing",
            "SECRET_KEY": "test-secret",
            "UNAUTHENTICATED_EVENTS_RATE_LIMIT": "3 per minute",
        }
    )
    try:
        make = Make(limited)
        batch = make.batch(make.product(merchant := make.merchant()))
        serials = make.codes(batch, 6)
        device_id, secret = make.device("shelf_scanner", merchant)
        client = limited.test_client()
        now = datetime.now(UTC)

        def post(device: str, events: list[dict], address: str = "192.0.2.7"):
            return client.post(
                "/api/v1/events",
                json={"events": events},
                headers={"X-Device-Id": device},
                environ_base={"REMOTE_ADDR": address},
            )

        for n in range(5):  # a device's own events: never counted
            event = signed_event(secret, "shelved", now, seq=n + 1, code=serials[n])
            assert post(device_id, [event]).status_code == 200
        forged = signed_event("guess", "shelved", now, code=serials[5])
        answers = [post("0123456789ABCDEF", [forged]) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused.json["error"]["code"] == "too_many_requests"
        assert int(refused.headers["Retry-After"]) > 0
        bad_signature = resigned(forged, "another guess")
        assert post(device_id, [bad_signature], address="192.0.2.8").status_code == 200
        assert post("0123456789ABCDEF", [forged], address="192.0.2.8").status_code == 200
        assert post(device_id, [bad_signature], address="192.0.2.8").status_code == 200
        assert post(device_id, [bad_signature], address="192.0.2.8").status_code == 429
    finally:
        limited.extensions["trace"].engine.dispose()


def test_a_lone_surrogate_or_nul_anywhere_is_a_rejection_not_a_500(client, world, session):
    """JSON can escape a lone surrogate, which UTF-8 cannot encode, and a NUL, which
    PostgreSQL refuses in text: in an event id, a type or any field, from a registered or an
    unknown device, is each event rejected with a reason, its neighbour still stored, and
    the rejection kept?"""
    shelf = world["shelf"]
    good = shelf.event("shelved", code=world["serials"][0])
    signed = shelf.event("shelved", code=world["serials"][1])
    typed = {"event_id": good["event_id"][:-1] + "0", "seq": 2, "type": "TYPE", "sig": "0" * 64}
    odd = [
        '{"event_id": "\\ud800\\u0000", "seq": 1, "type": "shelved"}',
        json.dumps(typed | {"time": good["time"]}).replace('"TYPE"', '"\\udfff\\u0000"'),
        json.dumps(signed)[:-1] + ', "note": "\\ud800"}',  # its signature cannot be checked
    ]
    body = ('{"events": [' + ", ".join([*odd, json.dumps(good)]) + "]}").encode()
    for device_id, expected in (
        (shelf.device_id, ["invalid_field", "invalid_field", "malformed", None]),
        ("0123456789ABCDEF", ["unknown_device"] * 3 + ["unknown_device"]),
    ):
        resp = client.post(
            "/api/v1/events",
            data=body,
            content_type="application/json",
            headers={"X-Device-Id": device_id},
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert [a.get("reason") for a in resp.json["acks"]] == expected
        assert resp.json["acks"][0]["event_id"] == "\\ud800\x00"
    assert _count(session, "rejected_events") == 3
    assert _count(session, "events") == 1
    assert sum(t.count for t in _tallies(session)) == 4
