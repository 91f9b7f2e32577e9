"""Credit information exchange (issue 17): what a credit platform is given per USCC, as JSON
and CSV: only decisions public after due process, to authorities of the party's region and
the party itself."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.anomalies import decisions
from app.anomalies.findings import record_findings
from app.auth.operations import create_token
from app.credit import operations as credit_ops
from app.credit.exchange import FIELDS, content_hash, push_new_items
from app.credit.models import ExchangePush
from app.outbox.models import WebhookFeed
from tests.app.test_credit_api import in_session
from tests.conftest import uscc
from tracecore.access import Principal, Role
from tracecore.anomalies import SERIOUS, Finding

BUREAU = "常州市市场监督管理局"
NOW = datetime.now(UTC)
LONG_AGO = NOW - timedelta(days=30)


def regulator(app, jurisdiction: str, label: str = BUREAU) -> tuple[Principal, dict]:
    """A regulator's token of ``jurisdiction``: its principal (for use cases) and headers."""

    def create(s):
        token, record = create_token(s, Role.REGULATOR, label=label, jurisdiction=jurisdiction)
        return token, record.id

    token, token_id = in_session(app, create)
    actor = Principal(Role.REGULATOR, token_id=token_id, jurisdiction=(jurisdiction,))
    return actor, {"Authorization": f"Bearer {token}"}


def sanction(app, actor, party_type, party_id, reason="虚假宣传", when=LONG_AGO) -> int:
    cfg = app.extensions["trace"].config
    return in_session(
        app,
        lambda s: (
            credit_ops.add_record(
                s,
                actor,
                party_type,
                party_id,
                "sanction",
                reason,
                cfg.policy,
                cfg.response_period,
                now=when,
            ).id
        ),
    )


def finding(app, merchant_id, type_="brushing", when=LONG_AGO) -> int:
    party = ("merchant", merchant_id)
    cfg = app.extensions["trace"].config
    return in_session(
        app,
        lambda s: (
            record_findings(s, [Finding(type_, SERIOUS, party, (party,), {})], cfg.policy, when)[
                0
            ].id
        ),
    )


def confirm(app, actor, anomaly_id, when=LONG_AGO) -> None:
    cfg = app.extensions["trace"].config
    in_session(
        app,
        lambda s: decisions.decide(
            s, actor, anomaly_id, "confirm", "两笔订单均为刷单", cfg.response_period, now=when
        ),
    )


def items(client, headers, **query) -> list[dict]:
    resp = client.get("/api/v1/credit/exchange", query_string=query, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


@pytest.fixture
def merchant(make):
    return make.merchant(name="常州好物商贸有限公司", uscc=uscc(4242), region_code="320411")


def test_only_decisions_public_after_due_process_are_exchanged(app, client, make, merchant):
    """Of a final sanction, a sanction in its response period, an open finding, a finding
    confirmed long ago and one confirmed today, are only the final sanction and the old
    confirmed finding exchanged, with the platform's fields?"""
    actor, headers = regulator(app, "3204")
    final = sanction(app, actor, "merchant", merchant)
    sanction(app, actor, "merchant", merchant, reason="刚刚处罚", when=NOW)
    finding(app, merchant, "expired_sale")  # open: a risk signal
    old = finding(app, merchant, "brushing")
    confirm(app, actor, old)
    confirm(app, actor, finding(app, merchant, "copied_code"), when=NOW)

    got = items(client, headers, uscc=uscc(4242))
    assert sorted(i["kind"] for i in got) == ["confirmed_finding", "sanction"]
    by_kind = {i["kind"]: i for i in got}
    s, f = by_kind["sanction"], by_kind["confirmed_finding"]
    assert s["record_id"] == final and s["basis_finding"] == "虚假宣传"
    assert (s["subject_name"], s["uscc"]) == ("常州好物商贸有限公司", uscc(4242))
    assert (s["authority_name"], s["authority_region_code"]) == (BUREAU, "320400")
    assert s["date"].endswith("+08:00") and s["decided_at"].endswith("+08:00")
    assert s["date"] > s["decided_at"]  # public at the end of the response period
    assert f["anomaly_id"] == old and f["basis_rule"] == "刷单（严重）"
    assert f["basis_finding"] == "两笔订单均为刷单" and f["kind_name"] == "认定失信行为"
    assert f["period_from"] == f["date"] and f["period_to"] > f["period_from"]
    assert all(i["content_hash"] == content_hash(i) for i in got)
    assert set(got[0]) == set(FIELDS)


def test_a_black_list_entry_and_its_repair_are_exchanged(app, client, merchant):
    """Do three final sanctions put the merchant on the black list as an exchanged list
    entry (decided by the sanctioning bureau), and is leaving it a repair?"""
    actor, headers = regulator(app, "3204")
    for _ in range(3):
        sanction(app, actor, "merchant", merchant)
    policy = app.extensions["trace"].config.policy
    in_session(app, lambda s: credit_ops.sync_lists(s, policy))
    (entry,) = [i for i in items(client, headers, uscc=uscc(4242)) if i["kind"] == "list_entry"]
    assert (entry["list"], entry["list_name"]) == ("black", "失信黑名单")
    assert entry["authority_name"] == BUREAU and entry["period_to"] is None

    later = NOW + timedelta(days=policy.fade_days + 1)
    in_session(app, lambda s: credit_ops.sync_lists(s, policy, later))
    pushed = in_session(app, lambda s: pushed_items(s, policy, later))
    (repair,) = [i for i in pushed if i["kind"] == "repair"]
    assert repair["id"] == f"list-{entry['list_entry_id']}-out"
    assert (repair["authority_name"], repair["authority_region_code"]) == ("平台", None)
    assert repair["period_to"] == repair["date"]


def pushed_items(session, policy, now) -> list[dict]:
    """The items the webhooks' push records at ``now`` (the platform named 平台)."""
    since = session.scalar(sa.select(sa.func.max(WebhookFeed.id))) or 0
    push_new_items(session, policy, platform="平台", now=now)
    rows = session.scalars(
        sa.select(WebhookFeed).where(WebhookFeed.id > since, WebhookFeed.topic == "exchange")
    )
    return [r.data for r in rows]


def test_nothing_is_pushed_before_it_is_public(app, client, merchant):
    """The webhooks' push: nothing for a sanction still in its response period; the final
    one's item, exactly as the exchange lists it."""
    actor, headers = regulator(app, "3204")
    sanction(app, actor, "merchant", merchant, when=NOW)
    final = sanction(app, actor, "merchant", merchant)
    policy = app.extensions["trace"].config.policy
    (pushed,) = in_session(app, lambda s: pushed_items(s, policy, NOW))
    assert (pushed["kind"], pushed["record_id"]) == ("sanction", final)
    assert [pushed] == [
        i for i in items(client, headers, uscc=uscc(4242)) if i["kind"] == "sanction"
    ]
    assert in_session(app, lambda s: pushed_items(s, policy, NOW)) == []


def test_the_csv_has_a_bom_the_columns_and_no_formulas(app, client, make, merchant):
    """Is the CSV UTF-8 with a BOM, its header the documented fields, Chinese intact, and a
    reason that a spreadsheet would run as a formula neutralised?"""
    actor, headers = regulator(app, "3204")
    sanction(app, actor, "merchant", merchant, reason='=HYPERLINK("http://x")')
    resp = client.get(f"/api/v1/credit/exchange.csv?uscc={uscc(4242)}", headers=headers)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    raw = resp.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == FIELDS
    row = dict(zip(FIELDS, rows[1], strict=True))
    assert row["basis_finding"] == '\'=HYPERLINK("http://x")'
    assert row["subject_name"] == "常州好物商贸有限公司" and row["kind_name"] == "行政惩戒"


def test_jurisdiction_and_the_party_itself(app, client, make, merchant):
    """A regulator of another region and another merchant are refused; the merchant reads
    its own; without a uscc, each authority reads its own jurisdiction only."""
    actor, inside = regulator(app, "3204")
    _, outside = regulator(app, "4412", label="肇庆市市场监督管理局")
    sanction(app, actor, "merchant", merchant)
    url = f"/api/v1/credit/exchange?uscc={uscc(4242)}"
    assert client.get(url, headers=outside).status_code == 403
    assert client.get(url, headers=make.auth("merchant", make.merchant())).status_code == 403
    assert client.get(url).status_code == 401
    own = make.auth("merchant", merchant)
    assert [i["kind"] for i in items(client, own, uscc=uscc(4242))] == ["sanction"]
    assert client.get("/api/v1/credit/exchange", headers=own).status_code == 403
    assert items(client, outside) == []
    assert [i["uscc"] for i in items(client, inside)] == [uscc(4242)]


def test_couriers_are_never_exchanged(app, client, make):
    """A courier is a natural person without a USCC: a final sanction of one is not given."""
    actor, headers = regulator(app, "3204")
    courier = make.courier(make.company())
    sanction(app, actor, "courier", courier)
    assert items(client, headers) == []


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"uscc": "91320411MA1XXXXXXX"}, 422, "uscc"),
        ({"uscc": "not a code"}, 422, "uscc"),
        ({"uscc": "9" * 40}, 422, "uscc"),
        ({"since": "yesterday"}, 422, "since"),
        ({"limit": "0"}, 422, "limit"),
        ({"uscc": uscc(777777)}, 404, None),
    ],
)
def test_bad_input_is_a_4xx_in_the_error_shape(client, make, query, status, field):
    resp = client.get("/api/v1/credit/exchange", query_string=query, headers=make.auth("admin"))
    assert resp.status_code == status
    error = resp.get_json()["error"]
    assert error["message"]
    if field:
        assert error["details"]["field"] == field


def test_pages_and_since(app, client, make, merchant):
    """Do ``limit`` and ``after`` read every item once, oldest first, and ``since`` leave
    out what became public before it?"""
    actor, headers = regulator(app, "3204")
    for days in (60, 40, 30):
        sanction(app, actor, "merchant", merchant, when=NOW - timedelta(days=days))
    first = client.get(
        "/api/v1/credit/exchange", query_string={"limit": 2}, headers=headers
    ).get_json()
    assert len(first["items"]) == 2 and first["next"]
    second = client.get(
        "/api/v1/credit/exchange",
        query_string={"limit": 2, "after": first["next"]},
        headers=headers,
    ).get_json()
    assert len(second["items"]) == 1 and second["next"] is None
    dates = [i["date"] for i in first["items"] + second["items"]]
    assert dates == sorted(dates)
    since = (NOW - timedelta(days=25)).isoformat()  # public ~10 days after each sanction
    assert len(items(client, headers, since=since)) == 1


def test_a_sanction_an_upheld_appeal_voided_is_settled_never_pushed(app, client, make, merchant):
    """Is a sanction voided by an upheld appeal settled at the next push (kept without a
    hash, so later sweeps skip it) and never pushed, even after its period?"""
    made = client.post(
        f"/api/v1/credit/merchant/{merchant}/records",
        json={"kind": "sanction", "reason": "拒不配合检查"},
        headers=make.auth("regulator"),
    ).json
    filed = client.post(
        f"/api/v1/credit/records/{made['id']}/appeal",
        json={"statement": "检查当日停业，有证明"},
        headers=make.auth("merchant", merchant),
    ).json
    upheld = client.post(
        f"/api/v1/appeals/{filed['id']}/decision",
        json={"decision": "uphold", "reason": "证明属实"},
        headers=make.auth("regulator"),
    )
    assert upheld.status_code == 200
    policy = app.extensions["trace"].config.policy
    assert in_session(app, lambda s: pushed_items(s, policy, NOW)) == []
    settled = in_session(app, lambda s: s.get(ExchangePush, f"record-{made['id']}"))
    assert settled is not None and settled.content_hash is None
    later = NOW + timedelta(days=60)
    assert in_session(app, lambda s: pushed_items(s, policy, later)) == []
