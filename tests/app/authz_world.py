"""Two regions and one caller per role, built once per test module: the data of the role
table (tests/app/test_authorisation.py) and of the personal-data log test.

Changzhou (3204) holds party A's things: merchant, logistics company, courier, product,
batch, units, devices, a signed parcel, anomalies, an appeal and a rejected event. Zhaoqing
(4412) holds party B, the "other" merchant and company. Every route is asked about A's things;
``reg_in`` is a Changzhou regulator, ``reg_out`` a Zhaoqing one, ``m_own``/``l_own`` speak for
A and ``m_other``/``l_other`` for B.

The data is committed once for the module (each test still runs in its own rolled-back
transaction, so a request that changes something leaves the next test the same world), and
every table is emptied when the module is done.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from app.anomalies.decisions import appeal
from app.anomalies.findings import record_findings
from app.auth.models import User
from app.auth.operations import create_token
from app.credit.models import CreditRecord
from app.events.models import RejectedEvent, RejectionTally
from app.hooks.operations import subscribe
from tests.app.test_events_api import T0, Handset, _fixed_now, ship
from tests.conftest import Make, empty_tables
from tracecore.access import Principal, Role
from tracecore.anomalies import MINOR, SERIOUS, Finding
from tracecore.credit import Policy

#: Every role the table names. Consumers have no account: they are ``anon``.
ROLES = ("anon", "admin", "reg_in", "reg_out", "m_own", "m_other", "l_own", "l_other")
HTML = {"Accept": "text/html"}
#: Personal data in the world: the courier's full name and an exact delivery point.
COURIER_NAME = "欧阳锋"
SIGNED_AT = (31.78123, 119.94567)
CONSIGNEE_PHONE = "13912345678"


@dataclass
class Caller:
    """One role's client: its bearer token for the API and its signed-in session (with the
    session's form token) for the workspace; ``anon`` has neither."""

    client: object
    headers: dict = field(default_factory=dict)
    csrf: str = ""
    user_id: int | None = None

    def reset(self) -> None:
        """The session as a fresh sign-in left it (a test may have signed out)."""
        if self.user_id is not None:
            now = int(time.time())
            with self.client.session_transaction() as session:
                session.clear()
                session.update(uid=self.user_id, gen=0, signed_in_at=now, seen_at=now)
                session["csrf"] = self.csrf

    def get(self, path: str, **kw):
        return self.client.get(path, headers=self.headers | kw.pop("headers", {}), **kw)

    def post(self, path: str, **kw):
        return self.client.post(path, headers=self.headers | kw.pop("headers", {}), **kw)

    def put(self, path: str, **kw):
        return self.client.put(path, headers=self.headers | kw.pop("headers", {}), **kw)

    def form(self, path: str, data: dict | None = None):
        """A workspace form, as the page sends it."""
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, headers=HTML)

    def consumer_form(self, serial: str, path: str, data: dict):
        """A consumer page's form: the page is read first for its form token."""
        html = self.client.get(f"/t/{serial}", headers=HTML).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        return self.client.post(path, data={"csrf_token": token, **data}, headers=HTML)

    def report_fake(self, page: str, data: dict):
        """The report-a-fake form of a never-issued code's page, its token read first."""
        html = self.client.get(page, headers=HTML).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        code = re.search(r'name="code" value="([^"]*)"', html).group(1)
        form = {"csrf_token": token, "code": code, **data}
        return self.client.post("/report-fake", data=form, headers=HTML)


@dataclass
class World:
    merchant_a: int
    merchant_b: int
    company_a: int
    company_b: int
    courier_a: int
    courier_b: int
    product_a: int
    batch_a: int
    serials: list[str]
    uri: str  #: the first unit's Digital Link URI
    shelf: Handset
    handheld: Handset
    waybill: str
    anomaly: int  #: open, merchant A's, no appeal
    appealed: int  #: open, merchant A's, with a pending appeal
    appeal: int
    rejected: int  #: a rejected event of merchant A's scanner
    sanction: int  #: a credit record of kind sanction against merchant A
    tally: str  #: the claimed device id of a rejection tally of merchant A's scanner
    subscription: int  #: merchant A's webhook subscription
    callers: dict[str, Caller]
    usernames: dict[str, str]
    uscc_a: str = ""  #: merchant A's unified social credit code
    #: merchant A's outside system's headers, and a capture job of it
    outside_system: dict = field(default_factory=dict)
    capture_id: str = ""


def _users(make: Make, app, bindings: dict[str, tuple]) -> dict[str, tuple[int, str]]:
    """One workspace user per role (a party's staff too: the workspace refuses them). They
    never sign in with a password (the tests set their sessions), so none is hashed: seven
    scrypt hashes were most of the world's cost."""
    made = {}
    with app.extensions["trace"].sessionmaker() as s:
        for role, (kind, party_id, jurisdiction) in bindings.items():
            user = User(
                username=f"{role}-{next(make.seq)}",
                password_hash="!",  # matches no password
                role=Role(kind),
                party_id=party_id,
                jurisdiction=jurisdiction,
            )
            s.add(user)
            s.flush()
            made[role] = (user.id, user.username)
        s.commit()
    return made


def build_world(app) -> World:
    make = Make(app)
    client = app.test_client()
    merchant_a = make.merchant(region_code="320411")
    merchant_b = make.merchant(region_code="441202", lat=23.05, lon=112.47)
    company_a = make.company(region_code="320400")
    company_b = make.company(region_code="441200")
    courier_a = make.courier(company_a, name=COURIER_NAME, region_code="320411")
    courier_b = make.courier(company_b, region_code="441202")
    product_a = make.product(merchant_a)
    batch_a = make.batch(product_a)
    serials = make.codes(batch_a, 3)
    shop = {
        "merchant": merchant_a,
        "company": company_a,
        "courier": courier_a,
        "serials": serials,
        "shelf": Handset(client, *make.device("shelf_scanner", merchant_a)),
        "pos": Handset(client, *make.device("pos_scanner", merchant_a)),
        "handheld": Handset(client, *make.device("courier_handheld", courier_a)),
    }
    waybill = "SF1234567890"
    ship(shop, waybill)  # sold, packed, carried and signed at SIGNED_AT
    with app.extensions["trace"].sessionmaker() as s:
        party = (("merchant", merchant_a),)
        found = {
            a.type: a.id
            for a in record_findings(
                s,
                [
                    Finding("brushing", SERIOUS, ("merchant", merchant_a), party, {}),
                    Finding("expired_sale", MINOR, ("code", serials[1]), party, {}),
                ],
                Policy(),
                datetime.now(UTC),
            )
        }
        anomaly, appealed = found["brushing"], found["expired_sale"]
        filed = appeal(s, Principal(Role.MERCHANT, merchant_a), appealed, "我们有证据")
        rejected = RejectedEvent(
            device_id=shop["shelf"].device_id,
            event_id="e-1",
            reason="bad_signature",
            message="the signature does not match",
            payload=json.dumps({"data": {"consignee": {"phone": CONSIGNEE_PHONE}}}),
            received_at=datetime.now(UTC),
        )
        s.add(rejected)
        sanction = CreditRecord(
            party_type="merchant",
            party_id=merchant_a,
            kind="sanction",
            points=Policy().sanction_points,
            reason="虚假宣传",
            effective_at=datetime.now(UTC),
            created_at=datetime.now(UTC),
        )
        s.add(sanction)
        now = datetime.now(UTC)
        s.add(
            RejectionTally(
                window_start=now.replace(minute=0, second=0, microsecond=0),
                address="198.51.100.7",
                device_id=shop["shelf"].device_id,
                reason="bad_signature",
                count=101,
                first_seen_at=now,
                last_seen_at=now,
                message="the signature does not match",
                sample='{"seq": 7}',
            )
        )
        subscription = subscribe(
            s,
            Principal(Role.MERCHANT, merchant_a),
            "http://127.0.0.1:9/hook",
            ["finding"],
            "test-secret",
            production=False,
        ).subscription
        s.commit()
        appeal_id, rejected_id, sanction_id = filed.id, rejected.id, sanction.id
        subscription_id = subscription.id
    parties = {
        "admin": ("admin", None, ""),
        "reg_in": ("regulator", None, "3204"),
        "reg_out": ("regulator", None, "4412"),
        "m_own": ("merchant", merchant_a, ""),
        "m_other": ("merchant", merchant_b, ""),
        "l_own": ("logistics", company_a, ""),
        "l_other": ("logistics", company_b, ""),
    }
    users = _users(make, app, parties)
    callers = {"anon": Caller(app.test_client())}
    for role, (kind, party_id, jurisdiction) in parties.items():
        with app.extensions["trace"].sessionmaker() as s:
            token = create_token(s, Role(kind), party_id, role, jurisdiction)[0]
            s.commit()
        # Signed in without a password check per role (sign-in has tests of its own).
        callers[role] = Caller(
            app.test_client(), {"Authorization": f"Bearer {token}"}, "form-token", users[role][0]
        )
    with app.extensions["trace"].sessionmaker() as s:
        system = create_token(s, Role.MERCHANT, merchant_a, outside_system="A's ERP")[0]
        s.commit()
    outside = {"Authorization": f"Bearer {system}"}
    captured = client.post(
        "/epcis/capture", json=CAPTURE_DOCUMENT, headers=outside, content_type="application/json"
    )
    assert captured.status_code == 202, captured.get_data(as_text=True)
    return World(
        merchant_a,
        merchant_b,
        company_a,
        company_b,
        courier_a,
        courier_b,
        product_a,
        batch_a,
        serials,
        client.get(f"/api/v1/codes/{serials[0]}").get_json()["uri"],
        shop["shelf"],
        shop["handheld"],
        waybill,
        anomaly,
        appealed,
        appeal_id,
        rejected_id,
        sanction_id,
        shop["shelf"].device_id,
        subscription_id,
        callers,
        {role: name for role, (_, name) in users.items()},
        client.get(f"/api/v1/merchants/{merchant_a}").get_json()["uscc"],
        outside,
        captured.headers["Location"].rsplit("/", 1)[1],
    )


#: A distributor-shaped EPCIS document (no unit of ours): what merchant A's system captures.
CAPTURE_DOCUMENT = {
    "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
    "type": "EPCISDocument",
    "schemaVersion": "2.0",
    "creationDate": "2026-11-20T09:00:00Z",
    "epcisBody": {
        "eventList": [
            {
                "type": "ObjectEvent",
                "eventTime": "2026-11-20T09:00:00+08:00",
                "eventTimeZoneOffset": "+08:00",
                "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
                "action": "OBSERVE",
                "bizStep": "receiving",
            }
        ]
    },
}


@pytest.fixture(scope="module")
def two_regions(app):
    """The world, committed once for the module; the devices' clock is a day after T0."""
    import devices.protocol as protocol

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(protocol, "check_event", _fixed_now(protocol.check_event))
        try:
            yield build_world(app)
        finally:
            empty_tables(app.extensions["trace"].engine)


__all__ = ["HTML", "ROLES", "T0", "Caller", "World", "two_regions"]
