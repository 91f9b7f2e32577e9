"""Signed webhooks end to end: subscriptions through the API, the feed the use cases write,
and the deliverer POSTing to a real HTTP receiver (started here, on a free port) that
verifies each signature with the Standard Webhooks reference verifier. The deliverer runs
in the test's thread (``run_once``), so its data is committed."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from app.anomalies.findings import record_findings
from app.hooks.deliver import Deliverer, Settings
from app.hooks.models import WebhookDelivery, WebhookSubscription
from app.outbox import feed
from app.outbox.models import WebhookFeed
from app.schemas import SubscriptionIn
from tracecore import webhooks
from tracecore.anomalies import MINOR, Finding
from tracecore.credit import Policy

pytestmark = pytest.mark.committed()


class Receiver:
    """An HTTP server on a free loopback port that keeps what it is sent, in order, after
    checking its signature; ``status`` is what it answers (503: down for maintenance)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, dict]] = []
        self.status = 200
        self.secret: str | None = None
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.status == 200:
                    try:
                        Webhook(receiver.secret).verify(body, dict(self.headers))
                    except Exception:
                        receiver.bad_signatures += 1
                        self.send_response(400)
                        self.end_headers()
                        return
                    receiver.received.append((dict(self.headers), json.loads(body)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def types(self) -> list[str]:
        return [body["type"] for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


class Clock:
    """The deliverer's clock, moved by the test past each backoff."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def deliverer(app, clock):
    settings = replace(
        Settings.of(app.extensions["trace"].config),
        retry=webhooks.Retry(timedelta(seconds=1), timedelta(minutes=1), 4, timedelta(hours=1)),
        timeout_s=5,
    )
    return Deliverer(app.extensions["trace"].sessionmaker, settings, now=clock)


def attempts(deliverer: Deliverer, wanted: int, within_s: float = 30) -> int:
    """Run the deliverer until it has attempted ``wanted`` messages (or ``within_s`` has
    passed). On PostgreSQL a row waits for every older transaction of the server to end (the
    outbox horizon), other databases' too: on a shared test server a pass may find nothing."""
    done, deadline = 0, time.monotonic() + within_s
    while done < wanted and time.monotonic() < deadline:
        done += deliverer.run_once()
        if done < wanted:
            time.sleep(0.05)
    return done


def subscribe(client, headers, receiver, topics, **scope) -> dict:
    resp = client.post(
        "/api/v1/webhooks/subscriptions",
        json={"url": receiver.url, "topics": topics, **scope},
        headers=headers,
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    receiver.secret = body["secret"]
    return body


def findings(app, merchant_id: int, *subjects: str) -> list[int]:
    """Open findings against the merchant, one per subject, committed."""
    with app.extensions["trace"].sessionmaker() as s:
        found = record_findings(
            s,
            [
                Finding("expired_sale", MINOR, ("code", subject), (("merchant", merchant_id),), {})
                for subject in subjects
            ],
            Policy(),
            datetime.now(UTC),
        )
        s.commit()
        return [a.id for a in found]


def test_the_api_and_the_schema_know_the_same_topics():
    topics = SubscriptionIn.model_json_schema()["properties"]["topics"]["items"]["enum"]
    assert tuple(topics) == webhooks.TOPICS


def test_decisions_reach_the_subscriber_signed_and_in_order(app, client, make, receiver, deliverer):
    """Are a merchant's findings and a regulator's decision on one delivered in the order
    they happened, each signed so that the reference verifier accepts it?"""
    merchant = make.merchant()
    subscribe(client, make.auth("merchant", merchant), receiver, ["finding", "decision"])
    first, second = findings(app, merchant, "C1", "C2")
    resp = client.post(
        f"/api/v1/anomalies/{second}/decision",
        json={"decision": "confirm", "reason": "证据充分"},
        headers=make.auth("regulator"),
    )
    assert resp.status_code == 200, resp.get_json()
    assert attempts(deliverer, 3) == 3
    assert receiver.bad_signatures == 0
    assert receiver.types == ["finding.open", "finding.open", "finding.confirmed"]
    ids = [body["data"]["anomaly_id"] for _, body in receiver.received]
    assert ids == [first, second, second]
    headers, body = receiver.received[2]
    assert body["topic"] == "decision"
    assert body["data"]["party"] == {"type": "merchant", "id": merchant}
    assert "evidence" not in body["data"]
    assert headers["webhook-id"].startswith("msg_")
    assert attempts(deliverer, 1, within_s=1) == 0  # nothing is sent twice


def test_a_merchant_gets_only_its_own_findings_and_cannot_scope_to_anothers(
    app, client, make, receiver, deliverer
):
    mine, other = make.merchant(), make.merchant()
    auth = make.auth("merchant", mine)
    subscribe(client, auth, receiver, ["finding"])
    findings(app, other, "X1")
    findings(app, mine, "M1")
    findings(app, other, "X2")
    findings(app, mine, "M2")
    attempts(deliverer, 2)
    assert [b["data"]["subject"]["id"] for _, b in receiver.received] == ["M1", "M2"]
    resp = client.post(
        "/api/v1/webhooks/subscriptions",
        json={"url": receiver.url, "topics": ["finding"], "merchant_id": other},
        headers=auth,
    )
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"


def test_a_regulator_gets_its_jurisdictions_findings_only(app, client, make, receiver, deliverer):
    here = make.merchant(region_code="320411")
    there = make.merchant(region_code="441202", lat=23.05, lon=112.47)
    with app.extensions["trace"].sessionmaker() as s:
        from app.auth.operations import create_token

        token = create_token(s, "regulator", None, "", "3204")[0]
        s.commit()
    subscribe(client, {"Authorization": f"Bearer {token}"}, receiver, ["finding"])
    findings(app, there, "T1")
    findings(app, here, "H1")
    attempts(deliverer, 1)
    findings(app, there, "T2")
    findings(app, here, "H2")
    attempts(deliverer, 1)
    assert [b["data"]["subject"]["id"] for _, b in receiver.received] == ["H1", "H2"]


def _subscription(app, sub_id: int) -> WebhookSubscription:
    with app.extensions["trace"].sessionmaker() as s:
        return s.get(WebhookSubscription, sub_id)


def test_a_receiver_that_was_down_gets_every_message_in_order_when_back(
    app, client, make, receiver, deliverer, clock
):
    """While the receiver answers 503 the cursor stays where it is and the first message is
    retried after a backoff (with the same webhook-id); back up, it gets all, in order."""
    merchant = make.merchant()
    sub = subscribe(client, make.auth("merchant", merchant), receiver, ["finding"])
    start = _subscription(app, sub["id"])
    receiver.status = 503
    findings(app, merchant, "D1")
    findings(app, merchant, "D2")
    findings(app, merchant, "D3")
    assert attempts(deliverer, 1) == 1  # the first fails; the others wait behind it
    assert deliverer.run_once() == 0  # backing off
    waiting = _subscription(app, sub["id"])
    assert (waiting.cursor_xid, waiting.cursor_id) == (start.cursor_xid, start.cursor_id)
    assert waiting.failures == 1 and waiting.next_attempt_at > clock.now
    clock.now += timedelta(seconds=2)
    assert attempts(deliverer, 1) == 1  # the retry fails too
    receiver.status = 200
    clock.now += timedelta(seconds=5)
    assert attempts(deliverer, 3) == 3
    assert [b["data"]["subject"]["id"] for _, b in receiver.received] == ["D1", "D2", "D3"]
    log = client.get(
        f"/api/v1/webhooks/subscriptions/{sub['id']}/deliveries",
        headers=make.auth("merchant", merchant),
    ).get_json()["items"]
    assert [(d["status"], d["attempt"], d["response_code"]) for d in reversed(log)] == [
        ("failed", 1, 503),
        ("failed", 2, 503),
        ("delivered", 3, 200),
        ("delivered", 1, 200),
        ("delivered", 1, 200),
    ]
    assert len({d["webhook_id"] for d in log[2:]}) == 1  # the retries of one message
    assert _subscription(app, sub["id"]).failures == 0


def test_a_subscription_is_disabled_after_failures_and_catches_up_when_enabled(
    app, client, make, receiver, deliverer, clock
):
    merchant = make.merchant()
    auth = make.auth("merchant", merchant)
    sub = subscribe(client, auth, receiver, ["finding"])
    receiver.close()  # nobody listens: connection refused
    findings(app, merchant, "E1")
    for _ in range(4):
        assert attempts(deliverer, 1) == 1
        clock.now += timedelta(minutes=2)
    shown = client.get(f"/api/v1/webhooks/subscriptions/{sub['id']}", headers=auth).get_json()
    assert shown["state"] == "disabled"
    assert "4 deliveries in a row failed" in shown["disabled_reason"]
    assert "ConnectionRefusedError" in shown["disabled_reason"]
    assert deliverer.run_once() == 0  # disabled: nothing is tried
    findings(app, merchant, "E2")
    back = Receiver()
    try:
        back.secret = receiver.secret
        with app.extensions["trace"].sessionmaker() as s:
            s.get(WebhookSubscription, sub["id"]).url = back.url
            s.commit()
        resp = client.post(f"/api/v1/webhooks/subscriptions/{sub['id']}/enable", headers=auth)
        assert resp.get_json()["state"] == "active"
        assert attempts(deliverer, 2) == 2
        assert [b["data"]["subject"]["id"] for _, b in back.received] == ["E1", "E2"]
    finally:
        back.close()


def test_a_subscription_starts_at_the_end_of_the_feed(app, client, make, receiver, deliverer):
    """What happened before is not sent. (On PostgreSQL what the horizon has not passed yet
    when subscribing is sent too: at least once, never fewer; so the test waits it out.)"""
    merchant = make.merchant()
    findings(app, merchant, "OLD")
    with app.extensions["trace"].sessionmaker() as s:
        old = s.scalar(sa.select(sa.func.max(WebhookFeed.xid)))
        deadline = time.monotonic() + 30
        while (feed.horizon(s) or old + 1) <= old and time.monotonic() < deadline:
            s.rollback()
            time.sleep(0.05)
    subscribe(client, make.auth("merchant", merchant), receiver, ["finding"])
    findings(app, merchant, "NEW")
    attempts(deliverer, 1)
    assert [b["data"]["subject"]["id"] for _, b in receiver.received] == ["NEW"]


def test_lists_notices_and_recalls_reach_every_subscriber(app, client, make, receiver, deliverer):
    """Public topics: a merchant's subscription hears of another's recall and black list."""
    watcher, other = make.merchant(), make.merchant()
    subscribe(client, make.auth("merchant", watcher), receiver, ["recall", "list", "notice"])
    batch = make.batch(make.product(other))
    regulator = make.auth("regulator")
    resp = client.post(
        f"/api/v1/batches/{batch}/recall", json={"reason": "微生物超标"}, headers=regulator
    )
    assert resp.status_code == 200, resp.get_json()
    resp = client.post(
        f"/api/v1/credit/merchant/{other}/records",
        json={"kind": "commendation", "reason": "诚信经营"},
        headers=regulator,
    )
    assert resp.status_code == 201, resp.get_json()
    attempts(deliverer, 1)
    attempts(deliverer, 5, within_s=1)  # whatever list change followed
    assert receiver.types[0] == "batch.recalled"
    assert receiver.received[0][1]["data"]["batch_id"] == batch
    # a commendation alone may or may not reach the red list under the policy: whatever
    # list change it made is delivered, and nothing else of the others' (no credit record)
    assert all(t.startswith(("batch.", "red_list.", "black_list.")) for t in receiver.types)


def test_a_batchs_events_arrive_as_epcis_events(app, client, make, receiver, deliverer, world):
    """The ``events`` topic: the batch's units' events, EPCIS 2.0 JSON with their CBV hash
    IDs, one delivery per ingest batch; another batch's events are not sent."""
    other_batch = make.batch(make.product(world["merchant"]))
    other_serial = make.codes(other_batch, 1)[0]
    subscribe(
        client,
        make.auth("merchant", world["merchant"]),
        receiver,
        ["events"],
        batch_id=world["batch"],
    )
    shelf = world["shelf"]
    shelf.post(
        shelf.event("shelved", 1, code=world["serials"][0]),
        shelf.event("shelved", 2, code=other_serial),
        shelf.event("shelved", 3, code=world["serials"][1]),
    )
    attempts(deliverer, 1)
    assert receiver.types == ["events"]
    events = receiver.received[0][1]["data"]["events"]
    assert len(events) == 2
    assert all(e["type"] == "ObjectEvent" for e in events)
    assert all(e["eventID"].startswith("ni:///sha-256;") for e in events)
    resp = client.get(
        f"/epcis/events/{events[0]['eventID']}", headers=make.auth("merchant", world["merchant"])
    )
    assert resp.status_code == 200  # the ID is one the service gave out


def test_a_merchants_parcel_events_carry_their_courier_status_codes(
    app, client, make, receiver, deliverer, world
):
    """A merchant's ``events``: its parcel's events arrive with their Kuaidi100 and AfterShip
    codes beside them (by eventID, the events untouched); its units' events have none."""
    from tests.app.test_events_api import ship

    subscribe(
        client,
        make.auth("merchant", world["merchant"]),
        receiver,
        ["events"],
        merchant_id=world["merchant"],
    )
    assert attempts(deliverer, len(ship(world))) == 7  # one delivery per ingest batch
    deliveries = [body["data"] for _, body in receiver.received]
    events = [e for d in deliveries for e in d["events"]]
    codes = {k: v for d in deliveries for k, v in d["courierStatus"].items()}
    assert events and set(codes) <= {e["eventID"] for e in events}
    picked_up = next(v for v in codes.values() if v["kuaidi100"].get("sub_state") == "103")
    assert picked_up["aftership"]["subtag"] == "InTransit_002"
    assert {v["kuaidi100"]["state"] for v in codes.values()} >= {"1", "0", "5", "3"}
    unit_events = [e for e in events if e["type"] == "ObjectEvent" and not codes.get(e["eventID"])]
    assert len(unit_events) == 2  # shelved and sold: no courier status


def test_the_feed_waits_for_a_transaction_that_took_a_lower_id(app, make, deliverer, receiver):
    """The outbox gap: transaction A takes a feed id and has not committed when B, with a
    higher id, commits. A cursor by id alone would send B's row and skip A's for ever. On
    PostgreSQL neither is sent until A has ended; then both, A's first. (SQLite writes one
    transaction at a time: B cannot commit while A is open.)"""
    engine = app.extensions["trace"].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no gap can open")
    merchant = make.merchant()
    client = app.test_client()
    subscribe(client, make.auth("admin"), receiver, ["notice"])
    from sqlalchemy.orm import Session

    a, b = Session(engine), Session(engine)
    try:
        feed.record(a, "notice", "test.a", {"n": "A"})
        feed.record(b, "notice", "test.b", {"n": "B"})
        b.commit()
        ids = dict(b.execute(sa.select(WebhookFeed.kind, WebhookFeed.id)).all())
        assert ids == {"test.b": ids["test.b"]}  # A's row is not visible yet
        assert attempts(deliverer, 1, within_s=1) == 0
        a.commit()
        assert attempts(deliverer, 2) == 2
        assert receiver.types == ["test.a", "test.b"]
    finally:
        a.close()
        b.close()
    assert merchant


def test_deleting_a_subscription_deletes_its_log(app, client, make, receiver, deliverer):
    merchant = make.merchant()
    auth = make.auth("merchant", merchant)
    sub = subscribe(client, auth, receiver, ["finding"])
    findings(app, merchant, "Z1")
    attempts(deliverer, 1)
    assert (
        client.delete(f"/api/v1/webhooks/subscriptions/{sub['id']}", headers=auth).status_code
        == 204
    )
    assert (
        client.get(f"/api/v1/webhooks/subscriptions/{sub['id']}", headers=auth).status_code == 404
    )
    with app.extensions["trace"].sessionmaker() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"url": "http://platform.example.cn/", "topics": ["finding"]}, 422),
        ({"url": "https://platform.example.cn/", "topics": ["everything"]}, 422),
        ({"url": "https://platform.example.cn/", "topics": []}, 422),
        ({"url": "https://platform.example.cn/", "topics": ["finding"], "batch_id": 999999}, 404),
        ({"url": "https://platform.example.cn/", "topics": ["finding"], "secret": "x"}, 422),
    ],
)
def test_bad_subscriptions_are_refused_in_the_error_shape(client, make, body, status):
    resp = client.post(
        "/api/v1/webhooks/subscriptions", json=body, headers=make.auth("merchant", make.merchant())
    )
    assert resp.status_code == status
    assert set(resp.get_json()["error"]) >= {"code", "message"}


def test_the_feed_keeps_only_what_a_subscription_has_not_had(
    app, client, make, receiver, deliverer, clock
):
    """Pruning: rows every subscription has had go; a row a disabled subscription has not
    had stays until the retention ends; with no subscription at all, everything goes."""
    merchant = make.merchant()
    sub = subscribe(client, make.auth("admin"), receiver, ["finding"])
    findings(app, merchant, "S1")
    assert attempts(deliverer, 1) == 1
    with app.extensions["trace"].sessionmaker() as s:
        s.execute(
            sa.update(WebhookSubscription)
            .where(WebhookSubscription.id == sub["id"])
            .values(state="disabled")
        )
        s.commit()
    findings(app, merchant, "S2")  # not had by the disabled subscription

    def stored() -> list[str]:
        with app.extensions["trace"].sessionmaker() as s:
            rows = s.scalars(sa.select(WebhookFeed).order_by(WebhookFeed.id))
            return [r.data["subject"]["id"] for r in rows if r.topic == "finding"]

    findings(app, merchant, "S3")
    deliverer.prune()
    assert stored() == ["S2", "S3"]
    clock.now += timedelta(days=15)  # past the retention
    deliverer.prune()
    assert stored() == ["S3"]  # the newest row stays (SQLite would give its id again)
    client.delete(f"/api/v1/webhooks/subscriptions/{sub['id']}", headers=make.auth("admin"))
    findings(app, merchant, "S4")
    deliverer.prune()
    assert stored() == ["S4"]


def test_a_row_after_a_pruned_feed_is_still_sent(app, client, make, receiver, deliverer):
    """Once every row a subscription had is pruned, the next change still reaches it (no id
    of the feed is given twice)."""
    merchant = make.merchant()
    subscribe(client, make.auth("admin"), receiver, ["finding"])
    findings(app, merchant, "A1", "A2")
    assert attempts(deliverer, 2) == 2
    deliverer.prune()
    findings(app, merchant, "A3")
    assert attempts(deliverer, 1) == 1
    assert [b["data"]["subject"]["id"] for _, b in receiver.received] == ["A1", "A2", "A3"]


# -- the credit exchange's items, pushed as they become public ---------------------------------


def _sweep(app, now: datetime) -> None:
    from app.anomalies.sweep import run_sweep
    from tests.app.test_credit_api import in_session

    in_session(app, lambda s: run_sweep(s, app.extensions["trace"].config, now=now))


def test_exchange_items_are_pushed_once_public_to_their_authorities_and_party(
    app, client, make, receiver, deliverer
):
    """Is a confirmed finding's exchange item pushed by the sweep only once its response
    period is over, as the exchange API gives it, once; to the regulator of the party's
    region and to the party itself, not to another region's regulator; and is a dismissed
    finding never pushed?"""
    from app.credit.models import ExchangePush
    from tests.app.test_credit_api import confirmed_at
    from tests.app.test_credit_exchange import finding, regulator

    here = make.merchant(region_code="320411")
    there = make.merchant(region_code="441202", lat=23.05, lon=112.47)
    _, regulator_headers = regulator(app, "3204")
    subscribe(client, regulator_headers, receiver, ["exchange"])
    own = Receiver()
    try:
        subscribe(client, make.auth("merchant", there), own, ["exchange"])
        decided = datetime.now(UTC) - timedelta(days=30)
        confirmed = finding(app, here, "brushing", when=decided)
        confirmed_at(app, confirmed, decided)
        confirmed_at(app, finding(app, there, "copied_code", when=decided), decided)
        dismissed = finding(app, here, "expired_sale", when=decided)
        confirmed_at(app, dismissed, decided, decision="dismiss")

        _sweep(app, decided + timedelta(hours=1))  # within the response period
        assert attempts(deliverer, 1, within_s=1) == 0
        with app.extensions["trace"].sessionmaker() as s:
            assert s.scalars(sa.select(ExchangePush)).all() == []

        _sweep(app, datetime.now(UTC))
        assert attempts(deliverer, 4) == 4
        # A serious finding: the party enters the black list the moment it counts.
        assert receiver.types == ["exchange.list_entry", "exchange.confirmed_finding"]
        assert own.types == ["exchange.list_entry", "exchange.confirmed_finding"]
        _, body = receiver.received[1]
        assert body["topic"] == "exchange" and body["data"]["anomaly_id"] == confirmed
        resp = client.get("/api/v1/credit/exchange", headers=regulator_headers)
        assert [b["data"] for _, b in receiver.received] == resp.get_json()["items"]
        assert {b["data"]["party_id"] for _, b in own.received} == {there}

        _sweep(app, datetime.now(UTC))  # nothing new: nothing is pushed twice
        assert attempts(deliverer, 1, within_s=1) == 0
    finally:
        own.close()


def test_a_black_list_entry_is_pushed_and_again_with_its_end_beside_the_repair(
    app, client, make, receiver, deliverer
):
    """Do three final sanctions push their items and the black list entry; and when the
    records fade, is the repair pushed, with the entry's item again, now ended?"""
    from tests.app.test_credit_exchange import regulator, sanction

    merchant = make.merchant(region_code="320411")
    actor, headers = regulator(app, "3204")
    subscribe(client, headers, receiver, ["exchange"])
    for _ in range(3):
        sanction(app, actor, "merchant", merchant)
    _sweep(app, datetime.now(UTC))
    assert attempts(deliverer, 4) == 4
    assert sorted(receiver.types) == ["exchange.list_entry", *["exchange.sanction"] * 3]
    entry = next(b["data"] for _, b in receiver.received if b["type"] == "exchange.list_entry")
    assert (entry["list"], entry["period_to"]) == ("black", None)

    policy = app.extensions["trace"].config.policy
    _sweep(app, datetime.now(UTC) + timedelta(days=policy.fade_days + 1))
    assert attempts(deliverer, 2) == 2
    again, repair = (b["data"] for _, b in receiver.received[4:])
    assert receiver.types[4:] == ["exchange.list_entry", "exchange.repair"]
    assert again["id"] == entry["id"] and again["content_hash"] != entry["content_hash"]
    assert again["period_to"] == repair["date"] and repair["id"] == f"{entry['id'][:-3]}-out"


def test_two_sweeps_at_once_push_an_exchange_item_once(app, make):
    """Two ingest workers sweeping at the same moment: the second waits on the first's
    item row and, once the first commits, rolls back; the item has one feed row."""
    from app.credit.exchange import push_new_items
    from tests.app.test_credit_exchange import regulator, sanction

    merchant = make.merchant(region_code="320411")
    actor, _ = regulator(app, "3204")
    sanction(app, actor, "merchant", merchant)
    policy = app.extensions["trace"].config.policy
    maker = app.extensions["trace"].sessionmaker
    outcome: list[str] = []

    def second_sweep() -> None:
        with maker() as second:
            try:
                outcome.append(f"pushed {push_new_items(second, policy)}")
                second.commit()
            except sa.exc.DBAPIError as exc:
                second.rollback()
                outcome.append(type(exc).__name__)

    with maker() as first:
        assert push_new_items(first, policy) == 1
        racer = threading.Thread(target=second_sweep)
        racer.start()
        time.sleep(0.5)
        first.commit()
    racer.join(timeout=30)
    assert outcome == ["IntegrityError"]  # the item's row is taken: the second rolls back
    with maker() as s:
        kinds = s.scalars(sa.select(WebhookFeed.kind).where(WebhookFeed.topic == "exchange"))
        assert list(kinds) == ["exchange.sanction"]
