"""Abuse tests: consumers' and couriers' input is evidence of its own weight (issue 14, item 5).

Each attack is made as an attacker would, through the test client with ``REMOTE_ADDR`` set
per request: one address faking many clients and districts on genuine codes, complaint
floods with rotating cookies, ratings by whoever is not the consignee, a courier's handheld
reporting on another company's parcel. Each asserts that the attacker's effect is bounded
(no copied-code finding, no extra findings or credit records, the verdict consumers see) and
that regulators see it for what it is."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.consumer.models import Verification
from app.credit.models import Anomaly, CreditRecord
from app.events.models import Event, Parcel
from app.feedback import operations as feedback
from app.feedback.models import Complaint, DeliveryRating, Review
from tests.app.test_events_api import T0, Handset, pack, ship

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
#: Places in five districts (Changzhou's Zhonglou, Tianning, Wujin; Zhaoqing's Duanzhou,
#: Dinghu), as a phone's geolocation would send them.
PLACES = [(31.78, 119.98), (31.83, 119.97), (23.05, 112.47), (23.16, 112.56), (31.70, 119.94)]

# On PostgreSQL the scan runs on connections of its own, in autocommit: it reads only what
# the test committed.
pytestmark = pytest.mark.committed("postgresql")


def browser(client, address: str, user_agent: str):
    """A fresh client (no cookie yet) at ``address`` with its own browser string."""
    other = client.application.test_client()
    other.environ_base["REMOTE_ADDR"] = address
    other.environ_base["HTTP_USER_AGENT"] = user_agent
    return other


def check_and_share(other, serial: str, place: tuple[float, float]) -> None:
    """The page's two steps: check the code, then press *share my district*."""
    html = other.get(f"/t/{serial}", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)
    resp = other.post(
        f"/t/{serial}/place", data={"lat": place[0], "lon": place[1], "csrf_token": token}
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)


def anomalies(session, **where) -> list[Anomaly]:
    session.expire_all()
    query = sa.select(Anomaly).filter_by(**where).order_by(Anomaly.id)
    found = session.scalars(query).all()
    session.commit()
    return found


def records_of(session, party_type: str, party_id: int) -> list[CreditRecord]:
    found = session.scalars(
        sa.select(CreditRecord).filter_by(party_type=party_type, party_id=party_id)
    ).all()
    session.commit()
    return found


# -- one address faking many clients and districts ----------------------------------------------


@pytest.mark.parametrize(
    "addresses",
    [
        ["203.0.113.7"] * 5,  # five cookies and five browser strings from one address
        [f"203.0.113.{n}" for n in (7, 8, 9, 10, 11)],  # five addresses of one network
        [f"2001:db8:7:{n:x}::1" for n in (1, 2, 3, 4, 0xFFFF)],  # five IPv6 /64s of one /48
    ],
    ids=["one_address", "one_ipv4_network", "one_ipv6_network"],
)
def test_one_network_with_many_clients_and_places_cannot_make_a_copied_code(
    client, world, session, addresses
):
    """Five fresh cookies, five browser strings and five posted places in five districts,
    from one network, on three genuine delivered codes: no copied code, the verdict stays
    genuine, the merchant gets no finding and no credit record, and the checks are on file
    as one source's, with one place per code."""
    ship(world)
    serials = world["serials"]
    for serial in serials:
        for n, (address, place) in enumerate(zip(addresses, PLACES, strict=True)):
            check_and_share(browser(client, address, f"phone {n}"), serial, place)
    for serial in serials:
        body = client.get(f"/t/{serial}", headers=JSON).get_json()
        assert body["verdict"]["level"] == "genuine" and body["verdict"]["warnings"] == []
        # the attacker's network and the page's own check (127.0.0.1): two sources
        assert body["checks"]["clients"] == 2 and body["checks"]["districts"] == 1
    assert anomalies(session, type="copied_code") == []
    assert records_of(session, "merchant", world["merchant"]) == []
    placed = session.execute(
        sa.select(Verification.serial, Verification.client_hash).where(
            Verification.district_code.is_not(None)
        )
    ).all()
    assert sorted(s for s, _ in placed) == sorted(serials)  # one place per code
    assert len({source for _, source in placed}) == 1  # all of them one source


def test_a_crowd_from_many_networks_still_finds_a_copied_code(client, world, session):
    """The same checks and places from five networks (an honest crowd of a copied label's
    buyers) do make a copied code: the bound takes nothing from a real pattern."""
    serial = world["serials"][0]
    for n, place in enumerate(PLACES):
        check_and_share(browser(client, f"198.51.{100 + n}.7", f"phone {n}"), serial, place)
    body = client.get(f"/t/{serial}", headers=JSON).get_json()
    assert [w["kind"] for w in body["verdict"]["warnings"]] == ["copied_code"]
    found = anomalies(session, type="copied_code")
    assert len(found) == 1 and found[0].evidence["clients"] == 5


def test_a_network_places_count_for_a_bounded_number_of_codes_a_day(client, make, world, session):
    """A network's shared places count for at most ``copied_code_places_per_day`` codes a
    day; its places for more codes are answered but not recorded."""
    per_day = client.application.extensions["trace"].config.thresholds.copied_code_places_per_day
    serials = make.codes(world["batch"], per_day + 2)
    for n, serial in enumerate(serials):
        check_and_share(browser(client, f"203.0.113.{n + 1}", "phone"), serial, PLACES[0])
    placed = session.scalar(
        sa.select(sa.func.count()).where(Verification.district_code.is_not(None))
    )
    session.commit()
    assert placed == per_day


# -- complaint and review floods ----------------------------------------------------------------


def complain(client, serial: str, address: str, user_agent: str):
    other = browser(client, address, user_agent)
    return other.post(
        f"/api/v1/codes/{serial}/complaints",
        json={"category": "quality", "text": "假货 fake"},
        headers={"Cookie": f"tc_client={user_agent.encode().hex()[:32]:0<32}"},
    )


def test_a_complaint_flood_with_rotating_cookies_is_limited_and_one_finding(
    client, make, world, session
):
    """Ten complaints from one address with ten cookies and browser strings: three taken
    (the limit counts the address), the rest 429. More from the rest of its network: at
    most four times the limit in all. Everything one network sent about one merchant is one
    finding with one credit record, and regulators see the cluster in its evidence."""
    serials = world["serials"]
    per_hour = client.application.extensions["trace"].config.COMPLAINTS_PER_HOUR
    statuses = [
        complain(client, serials[n % 3], "203.0.113.7", f"browser {n}").status_code
        for n in range(10)
    ]
    assert statuses == [201] * per_hour + [429] * (10 - per_hour)
    more = [
        complain(client, serials[n % 3], f"203.0.113.{20 + n}", f"browser {n}").status_code
        for n in range(20)
    ]
    taken = per_hour + more.count(201)
    assert taken == feedback.NETWORK_SHARE * per_hour and set(more) == {201, 429}
    found = anomalies(session, type="consumer_complaint")
    assert len(found) == 1
    cluster = found[0].evidence["cluster"]
    assert cluster["complaints"] == taken and cluster["codes"] == sorted(serials)
    records = records_of(session, "merchant", world["merchant"])
    assert len(records) == 1

    regulator = client.get(
        "/api/v1/anomalies", query_string={"type": "consumer_complaint"}, headers=make.auth("admin")
    ).get_json()["items"]
    assert [a["evidence"]["cluster"]["complaints"] for a in regulator] == [taken]


def test_complaints_from_different_networks_are_findings_of_their_own(client, world, session):
    """Two consumers in two networks complaining about two units: two findings, as before
    (the cluster only gathers one network's complaints)."""
    serials = world["serials"]
    assert complain(client, serials[0], "198.51.100.7", "a").status_code == 201
    assert complain(client, serials[1], "198.51.101.7", "b").status_code == 201
    found = anomalies(session, type="consumer_complaint")
    assert len(found) == 2 and not any("cluster" in a.evidence for a in found)


def send_form(client, serial: str, kind: str, data: dict, address: str, user_agent: str):
    """A fresh client (a new cookie, so a new form token) at ``address`` sends a page form."""
    other = browser(client, address, user_agent)
    html = other.get(f"/t/{serial}", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)
    return other.post(f"/t/{serial}/{kind}", data={**data, "csrf_token": token})


@pytest.mark.parametrize(
    "kind,data,limit",
    [
        ("complaint", {"category": "quality", "text": "假货"}, "COMPLAINTS_PER_HOUR"),
        ("review", {"rating": "1", "text": "差"}, "REVIEWS_PER_HOUR"),
    ],
)
def test_the_page_forms_limit_by_address_not_by_cookie(client, world, session, kind, data, limit):
    """The page's complaint and review forms, each time from a fresh client (a new cookie
    and token, a new browser string) at one address: the limit still holds."""
    per_hour = getattr(client.application.extensions["trace"].config, limit)
    statuses = [
        send_form(client, world["serials"][0], kind, data, "203.0.113.7", f"b{n}").status_code
        for n in range(per_hour + 2)
    ]
    assert statuses == [302] * per_hour + [429, 429]
    model = Complaint if kind == "complaint" else Review
    assert session.scalar(sa.select(sa.func.count()).select_from(model)) == per_hour
    session.commit()


# -- ratings by whoever is not the consignee ---------------------------------------------------


def rate(client, serial: str, address: str = "203.0.113.7"):
    return browser(client, address, "phone").post(
        f"/api/v1/codes/{serial}/delivery-rating", json={"courier": 1, "company": 1}
    )


def ratings_in(session, world) -> list:
    found = [
        r
        for r in records_of(session, "courier", world["courier"])
        + records_of(session, "logistics_company", world["company"])
        if r.kind == "rating"
    ]
    return found


def test_a_unit_not_signed_for_cannot_rate_a_delivery(client, world, session):
    """A unit on its way, or never shipped: nobody holds it as its consignee (403)."""
    pack(world, "SF9200000001", [world["serials"][1]])
    for serial in world["serials"][1:]:
        resp = rate(client, serial)
        assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden"
    assert ratings_in(session, world) == []


def test_a_returned_and_resold_unit_cannot_rate_its_old_delivery(client, world, session):
    """The unit came back to the shop and is on its shelf again: whoever reads its code now
    (a shopper) is not the consignee of the parcel it once came in."""
    ship(world)
    serial, hh, shelf = world["serials"][0], world["handheld"], world["shelf"]
    hh.post(hh.event("returned", 300, waybill="SF1234567890"))
    shelf.post(shelf.event("shelved", 400, code=serial))
    resp = rate(client, serial)
    assert resp.status_code == 403, resp.get_json()
    assert ratings_in(session, world) == []


def test_the_consignee_rates_once_per_parcel(client, world, session):
    """The unit signed for, in hand: one rating for the parcel, whoever sends it again."""
    ship(world)
    serial = world["serials"][0]
    assert rate(client, serial).status_code == 201
    assert rate(client, serial, "198.51.100.7").status_code == 409
    assert session.scalar(sa.select(sa.func.count()).select_from(DeliveryRating)) == 1
    session.commit()
    assert len(ratings_in(session, world)) == 2  # the courier's and the company's


def test_a_delivery_is_rated_within_thirty_days_of_its_signature(world, session):
    ship(world)
    late = T0 + timedelta(days=feedback.RATING_DAYS + 1)
    with pytest.raises(feedback.Forbidden, match="within 30 days"):
        feedback.rate_as_consignee(session, world["serials"][0], 1, 1, [], None, now=late)


# -- a courier of another company ---------------------------------------------------------------


@pytest.fixture
def rival(client, make, world):
    """A courier of another company, with a handheld of its own."""
    company = make.company()
    courier = make.courier(company)
    handheld = Handset(client, *make.device("courier_handheld", courier))
    return {"company": company, "courier": courier, "handheld": handheld}


def marks(session, waybill: str) -> dict[str, str | None]:
    session.expire_all()
    found = dict(
        session.execute(
            sa.select(Event.type, Event.violation).where(Event.waybill == waybill)
        ).all()
    )
    session.commit()
    return found


def parcel_state(session, waybill: str) -> str:
    session.expire_all()
    state = session.get(Parcel, waybill).state
    session.commit()
    return state


def test_a_courier_of_another_company_is_kept_as_evidence_and_found(
    client, make, world, rival, session
):
    """Another company's handheld picks up and signs a parcel packed for the world's
    company: both kept (accepted), marked not entrusted, custody does not move, and one
    finding names the reporting courier (none the merchant). The parcel's own company
    then picks it up lawfully."""
    serial, waybill, hh = world["serials"][0], "SF9300000001", rival["handheld"]
    pack(world, waybill, [serial])
    acks = [
        hh.post(hh.event("picked_up", 60, waybill=waybill, lat=31.78, lon=119.95)),
        hh.post(
            hh.event("signed", 90, waybill=waybill, lat=31.78, lon=119.95, data={"signer": "self"})
        ),
    ]
    assert [a["acks"][0]["status"] for a in acks] == ["accepted", "accepted"]
    assert all(m.startswith("not entrusted") for m in marks(session, waybill).values() if m)
    assert set(marks(session, waybill)) == {"packed", "picked_up", "signed"}
    assert marks(session, waybill)["packed"] is None
    assert parcel_state(session, waybill) == "packed"
    found = anomalies(session, subject=waybill)
    assert [(a.type, a.party_type, a.party_id) for a in found] == [
        ("lifecycle_violation", "courier", rival["courier"])
    ]
    assert "not entrusted" in found[0].evidence["violation"]
    assert records_of(session, "merchant", world["merchant"]) == []
    body = client.get(f"/t/{serial}", headers=JSON).get_json()
    assert [s["type"] for s in body["journey"]] == ["packed"]  # no step of the rival's

    own = world["handheld"]
    own.post(own.event("picked_up", 120, waybill=waybill))
    assert parcel_state(session, waybill) == "picked_up"
    regulator = client.get(
        "/api/v1/anomalies", query_string={"party_type": "courier"}, headers=make.auth("admin")
    ).get_json()["items"]
    assert [a["party"]["id"] for a in regulator] == [rival["courier"]]


def test_a_recorded_hand_over_entrusts_the_receiving_company(client, world, rival, session):
    """The parcel's company scans it in transit naming the rival company (a hand-over);
    the rival's courier then delivers it lawfully, and nothing is found."""
    waybill, own, hh = "SF9300000002", world["handheld"], rival["handheld"]
    pack(world, waybill, [world["serials"][0]])
    own.post(own.event("picked_up", 60, waybill=waybill))
    own.post(own.event("in_transit", 120, waybill=waybill, data={"handover_to": rival["company"]}))
    hh.post(hh.event("out_for_delivery", 600, waybill=waybill))
    hh.post(hh.event("signed", 620, waybill=waybill, data={"signer": "self"}))
    assert set(marks(session, waybill).values()) == {None}
    assert parcel_state(session, waybill) == "signed"
    assert anomalies(session, subject=waybill) == []


def test_a_hand_over_that_arrives_late_clears_the_marks(client, world, rival, session):
    """The rival's scans arrive first (the parcel company's handheld was offline with the
    hand-over): marked, custody kept; when the hand-over arrives, the marks go and the
    replay moves the parcel on."""
    waybill, own, hh = "SF9300000003", world["handheld"], rival["handheld"]
    pack(world, waybill, [world["serials"][0]])
    own.post(own.event("picked_up", 60, waybill=waybill))
    hh.post(hh.event("out_for_delivery", 600, waybill=waybill))
    assert marks(session, waybill)["out_for_delivery"].startswith("not entrusted")
    assert parcel_state(session, waybill) == "picked_up"
    own.post(own.event("in_transit", 120, waybill=waybill, data={"handover_to": rival["company"]}))
    assert set(marks(session, waybill).values()) == {None}
    assert parcel_state(session, waybill) == "out_for_delivery"


def test_a_hand_over_by_a_company_not_entrusted_entrusts_nobody(client, make, world, rival):
    """The rival's handheld 'hands over' to a third company: its own scan is marked, and the
    third company's scans are too."""
    third = make.company()
    third_hh = Handset(client, *make.device("courier_handheld", make.courier(third)))
    waybill, hh = "SF9300000004", rival["handheld"]
    pack(world, waybill, [world["serials"][0]])
    hh.post(hh.event("in_transit", 60, waybill=waybill, data={"handover_to": third}))
    third_hh.post(third_hh.event("out_for_delivery", 120, waybill=waybill))
    with client.application.extensions["trace"].sessionmaker() as session:
        found = marks(session, waybill)
    assert found["in_transit"].startswith("not entrusted")
    assert found["out_for_delivery"].startswith("not entrusted")
