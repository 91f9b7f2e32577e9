"""Due process (issue 14, items 4 and 7): an automatic finding is a risk signal that changes
no public answer or consequence; a regulator's decision counts publicly only after the
party's response period (an appeal within it holds it); lists and notices are dated; and
regulators decide findings in bulk, each audited on its own."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.anomalies import decisions
from app.anomalies.sweep import run_sweep
from app.auth.operations import create_token
from app.credit import lists
from app.credit import operations as credit_ops
from tests.app.test_credit_api import (
    anomalies,
    confirmed_at,
    in_session,
    sanctioned,
)
from tests.app.test_events_api import pack
from tracecore.access import Principal, Role

#: On PostgreSQL the public scan reads with connections of its own: only committed data.
pytestmark = pytest.mark.committed("postgresql")


def unknown_codes(world, n: int) -> None:
    """The merchant's shelf scans ``n`` codes never issued: n serious unknown_code findings
    against the merchant (enough, at -120 each, for the black list if they counted)."""
    shelf = world["shelf"]
    for i in range(n):
        shelf.post(shelf.event("shelved", i, code=f"ZZZZZZZZZZZZZZ{i:02d}"))


def public_account(client, party_type, party_id) -> dict:
    return client.get(f"/api/v1/credit/{party_type}/{party_id}").get_json()


def issue(client, make, world):
    return client.post(
        f"/api/v1/batches/{world['batch']}/codes",
        json={"count": 1},
        headers=make.auth("merchant", world["merchant"]),
    )


def test_automatic_findings_change_no_public_answer_nor_any_consequence(client, make, world):
    """Four serious findings against a merchant and two against a courier, nobody having
    reviewed them: do the public grade, lists, notices and the scan's credit stay as they
    were, issuance stay open, and the courier's next scans go unflagged, while the merchant
    sees its risk indicator?"""
    unknown_codes(world, 4)
    hh = world["handheld"]
    for n, serial in enumerate(world["serials"][:2]):  # signed with no pickup: empty_parcel
        waybill = f"SF50000000{n:02d}"
        pack(world, waybill, [serial], 0)
        hh.post(hh.event("signed", 60 + n, waybill=waybill, data={"signer": "self"}))
    assert len(anomalies(client, make, type="unknown_code")) == 4
    assert len(anomalies(client, make, type="empty_parcel", party_type="courier")) == 2

    merchant = public_account(client, "merchant", world["merchant"])
    assert (merchant["score"], merchant["grade"], merchant["list"]) == (800, "B", None)
    assert public_account(client, "courier", world["courier"])["list"] is None
    assert client.get("/api/v1/credit/lists/black").json["items"] == []
    assert client.get("/api/v1/credit/notices").json["items"] == []
    scanned = client.get(f"/t/{world['serials'][2]}", headers={"Accept": "application/json"})
    assert scanned.json["merchant"]["credit"]["list"] is None
    assert scanned.json["merchant"]["credit"]["grade"] == "B"
    assert issue(client, make, world).status_code == 201

    pack(world, "SF5100000001", [world["serials"][2]], 0)
    answer = hh.post(hh.event("picked_up", 90, waybill="SF5100000001"))
    assert [a["status"] for a in answer["acks"]] == ["accepted"]
    events = client.get(
        "/api/v1/parcels/SF5100000001/history", headers=make.auth("regulator")
    ).json["events"]
    assert [e["flag"] for e in events] == [None, None]

    own = client.get(
        f"/api/v1/credit/merchant/{world['merchant']}",
        headers=make.auth("merchant", world["merchant"]),
    ).json
    theirs = anomalies(client, make, party_type="merchant", party_id=world["merchant"])
    assert own["risk"]["open_findings"] == len(theirs) >= 6
    assert own["risk"]["points"] == sum(
        {"minor": -10, "major": -40, "serious": -120}[a["severity"]] for a in theirs
    )
    assert own["outlook"]["list"] is None  # findings are no decisions


def test_a_confirmed_finding_counts_only_after_the_response_period(client, make, world):
    """Confirmed now, is a serious finding kept from the public until its final date, and
    from then on (time driven through ``now``) black-listing, in the lists and notices
    dated with that final date?"""
    unknown_codes(world, 1)
    (found,) = anomalies(client, make, type="unknown_code")
    decided = client.post(
        f"/api/v1/anomalies/{found['id']}/decision",
        json={"decision": "confirm", "reason": "现场核实：外包装为仿冒"},
        headers=make.auth("regulator"),
    ).json
    final_at = datetime.fromisoformat(decided["final_at"])
    assert final_at - datetime.fromisoformat(decided["decided_at"]) >= timedelta(days=9)
    party = ("merchant", world["merchant"])
    assert public_account(client, *party)["list"] is None
    assert issue(client, make, world).status_code == 201

    cfg = client.application.extensions["trace"].config
    just_before, after = final_at - timedelta(seconds=1), final_at + timedelta(hours=1)

    def standing_at(s, now):
        return credit_ops.accounts(s, {party}, cfg.policy, now)[party].standing.list

    assert in_session(client.application, lambda s: standing_at(s, just_before)) is None
    assert in_session(client.application, lambda s: standing_at(s, after)) == "black"
    in_session(client.application, lambda s: run_sweep(s, cfg, now=after))
    (entry,) = in_session(
        client.application, lambda s: lists.listed(s, "black", cfg.policy, now=after)
    )
    assert entry.since == final_at and "unknown_code" in entry.because
    notices = in_session(client.application, lambda s: lists.notices(s, cfg.policy, now=after))
    assert {(n["kind"], n["at"]) for n in notices} == {
        ("confirmed_anomaly", final_at),
        ("black_list", final_at),
    }


def test_a_decision_past_its_period_is_public_and_refuses_issuance(client, make, world):
    """A finding confirmed a month ago: is the merchant on the public black list since the
    decision's final date, in a dated notice, and refused codes?"""
    unknown_codes(world, 1)
    (found,) = anomalies(client, make, type="unknown_code")
    confirmed_at(client.application, found["id"], datetime.now(UTC) - timedelta(days=30))
    assert public_account(client, "merchant", world["merchant"])["list"] == "black"
    (listed,) = client.get("/api/v1/credit/lists/black").json["items"]
    final_at = client.get(f"/api/v1/anomalies/{found['id']}", headers=make.auth("regulator")).json[
        "final_at"
    ]
    assert listed["id"] == world["merchant"] and listed["since"] == final_at
    notices = client.get("/api/v1/credit/notices").json["items"]
    assert notices and all(n["at"] for n in notices)
    refused = issue(client, make, world)
    assert refused.status_code == 403 and "黑名单" in refused.json["error"]["message"]


def test_an_appeal_within_the_period_holds_the_decision_until_it_is_rejected(client, make, world):
    """Confirmed a month ago but appealed within the period: is the finding kept from the
    public while the appeal is pending, and public (the list entered, dated) from the
    moment the appeal is rejected?"""
    unknown_codes(world, 1)
    (found,) = anomalies(client, make, type="unknown_code")
    month_ago = datetime.now(UTC) - timedelta(days=30)
    confirmed_at(client.application, found["id"], month_ago)
    merchant = ("merchant", world["merchant"])
    in_session(
        client.application,
        lambda s: decisions.appeal(
            s,
            Principal(Role.MERCHANT, party_id=merchant[1]),
            found["id"],
            "该码为外箱误扫",
            now=month_ago + timedelta(days=2),
        ),
    )
    assert public_account(client, *merchant)["list"] is None
    own = client.get(
        f"/api/v1/credit/merchant/{merchant[1]}", headers=make.auth("merchant", merchant[1])
    ).json
    (pending,) = own["pending_decisions"]
    assert pending["held_by_appeal"] is True and pending["anomaly_id"] == found["id"]

    appeal_id = in_session(
        client.application,
        lambda s: s.scalar(
            sa.text("SELECT id FROM appeals WHERE anomaly_id = :a"), {"a": found["id"]}
        ),
    )
    rejected = client.post(
        f"/api/v1/appeals/{appeal_id}/decision",
        json={"decision": "reject", "reason": "复核维持原认定"},
        headers=make.auth("regulator"),
    )
    assert rejected.status_code == 200
    assert public_account(client, *merchant)["list"] == "black"
    (listed,) = client.get("/api/v1/credit/lists/black").json["items"]
    assert listed["since"] > pending["final_at"]  # from the rejection, not the period's end


def test_an_appeal_after_the_period_holds_nothing(client, make, world):
    """Is a finding whose period ended before the appeal public while the appeal waits?"""
    unknown_codes(world, 1)
    (found,) = anomalies(client, make, type="unknown_code")
    confirmed_at(client.application, found["id"], datetime.now(UTC) - timedelta(days=30))
    late = client.post(
        f"/api/v1/anomalies/{found['id']}/appeal",
        json={"statement": "迟到的申诉"},
        headers=make.auth("merchant", world["merchant"]),
    )
    assert late.status_code == 201
    assert public_account(client, "merchant", world["merchant"])["list"] == "black"


def test_a_sanction_waits_for_its_period_and_can_be_appealed(client, make, world):
    """Is a sanction imposed now out of the public standing, shown to the party as a
    pending decision, appealable by it only, and reversed when the appeal is upheld?"""
    party = f"/api/v1/credit/merchant/{world['merchant']}"
    made = client.post(
        f"{party}/records",
        json={"kind": "sanction", "reason": "拒不配合检查"},
        headers=make.auth("regulator"),
    )
    assert made.status_code == 201 and made.json["public_from"]
    assert public_account(client, "merchant", world["merchant"])["score"] == 800
    merchant = make.auth("merchant", world["merchant"])
    (pending,) = client.get(party, headers=merchant).json["pending_decisions"]
    assert pending["kind"] == "sanction" and pending["final_at"] == made.json["public_from"]
    url = f"/api/v1/credit/records/{made.json['id']}/appeal"
    other = make.auth("merchant", make.merchant())
    assert client.post(url, json={"statement": "x"}, headers=other).status_code == 403
    filed = client.post(url, json={"statement": "检查当日停业，有证明"}, headers=merchant)
    assert filed.status_code == 201
    upheld = client.post(
        f"/api/v1/appeals/{filed.json['id']}/decision",
        json={"decision": "uphold", "reason": "证明属实"},
        headers=make.auth("regulator"),
    )
    assert upheld.status_code == 200 and upheld.json["record_id"] == made.json["id"]
    after = client.get(party, headers=merchant).json
    assert after["pending_decisions"] == [] and after["outlook"]["score"] == 800
    assert [r["kind"] for r in after["records"]] == ["sanction", "reversal"]


def test_leaving_the_black_list_is_a_dated_event(client, make, world):
    """Does a party that left the black list (its sanctions' appeal upheld) leave a dated
    notice of leaving, next to the one of entering?"""
    (first, *_) = sanctioned(client.application, "courier", world["courier"], n=3)
    cfg = client.application.extensions["trace"].config
    in_session(client.application, lambda s: run_sweep(s, cfg))
    company = make.auth("logistics", world["company"])
    for record_id in range(first, first + 3):
        filed = client.post(
            f"/api/v1/credit/records/{record_id}/appeal",
            json={"statement": "系统误判"},
            headers=company,
        )
        client.post(
            f"/api/v1/appeals/{filed.json['id']}/decision",
            json={"decision": "uphold", "reason": "属实"},
            headers=make.auth("regulator"),
        )
    assert public_account(client, "courier", world["courier"])["list"] is None
    notices = client.get("/api/v1/credit/notices").json["items"]
    kinds = [n["kind"] for n in notices if n["kind"].startswith("black_list")]
    assert sorted(kinds) == ["black_list", "black_list_left"]
    assert all(n["at"] for n in notices)


# -- bulk decisions ---------------------------------------------------------------------------


def bulk(client, headers, **body):
    return client.post("/api/v1/anomalies/decisions", json=body, headers=headers)


def test_bulk_dismiss_by_filter_decides_only_what_it_selects(client, make, world, session):
    """Does dismissing every unknown_code of one merchant (a preview first) decide exactly
    those, each with its own audit entry and reversal, and leave another type open?"""
    unknown_codes(world, 4)
    pos, serial = world["pos"], world["serials"][0]
    pos.post(pos.event("sold", 0, code=serial, data={"order_id": "A"}))
    pos.post(pos.event("sold", 30, code=serial, data={"order_id": "B"}))  # duplicate_sale
    regulator = make.auth("regulator")
    where = {"type": "unknown_code", "party_type": "merchant", "party_id": world["merchant"]}
    preview = bulk(
        client, regulator, decision="dismiss", reason="外箱误扫", filter=where, preview=True
    )
    assert preview.status_code == 200, preview.get_json()
    assert (preview.json["selected"], preview.json["decided"]) == (4, 0)
    assert preview.json["cap"] == 5000
    done = bulk(client, regulator, decision="dismiss", reason="外箱误扫", filter=where)
    assert (done.json["decided"], done.json["remaining"]) == (4, 0)
    assert {a["status"] for a in anomalies(client, make, type="unknown_code")} == {"dismissed"}
    assert [a["status"] for a in anomalies(client, make, type="duplicate_sale")] == ["open"]
    audit = session.execute(
        sa.text("SELECT target_id, reason FROM audit_entries WHERE action = 'anomaly.dismiss'")
    ).all()
    assert len(audit) == 4 and {r[1] for r in audit} == {"外箱误扫"}
    reversals = session.scalar(
        sa.text("SELECT count(*) FROM credit_records WHERE kind = 'reversal'")
    )
    assert reversals == 4
    again = bulk(client, regulator, decision="dismiss", reason="外箱误扫", filter=where)
    assert again.json["decided"] == 0


def test_bulk_confirm_by_date_range_and_ids(client, make, world):
    """Does a date range select by detection time, and a list of ids skip decided ones?"""
    unknown_codes(world, 3)
    regulator = make.auth("regulator")
    future = {"since": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    nothing = bulk(client, regulator, decision="confirm", reason="r", filter=future)
    assert nothing.json["selected"] == 0
    ids = [a["id"] for a in anomalies(client, make, type="unknown_code")]
    one = bulk(client, regulator, decision="confirm", reason="核实", ids=ids[:1])
    assert one.json["decided"] == 1
    rest = bulk(client, regulator, decision="confirm", reason="核实", ids=ids)
    assert (rest.json["decided"], rest.json["skipped"]) == (2, 1)
    assert {a["status"] for a in anomalies(client, make, type="unknown_code")} == {"confirmed"}


def test_bulk_decisions_keep_to_the_jurisdiction(client, make, world):
    """May a regulator of another region decide the merchant's findings in bulk? By filter
    they select nothing; by id the request is refused and nothing decided."""
    unknown_codes(world, 2)
    ids = [a["id"] for a in anomalies(client, make, type="unknown_code")]
    token = in_session(
        client.application,
        lambda s: create_token(s, Role.REGULATOR, None, jurisdiction="44")[0],
    )
    elsewhere = {"Authorization": f"Bearer {token}"}
    by_filter = bulk(client, elsewhere, decision="dismiss", reason="r", filter={})
    assert by_filter.status_code == 200 and by_filter.json["selected"] == 0
    by_id = bulk(client, elsewhere, decision="dismiss", reason="r", ids=ids)
    assert by_id.status_code == 403 and by_id.json["error"]
    assert {a["status"] for a in anomalies(client, make, type="unknown_code")} == {"open"}
    merchant = make.auth("merchant", world["merchant"])
    assert bulk(client, merchant, decision="dismiss", reason="r", ids=ids).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "confirm", "reason": "r"},  # neither ids nor filter
        {"decision": "confirm", "reason": "r", "ids": [1], "filter": {}},
        {"decision": "confirm", "reason": "r", "ids": list(range(1, 5002))},
        {"decision": "withdraw", "reason": "r", "ids": [1]},
        {"decision": "confirm", "reason": "r", "filter": {"since": "2026-11-20T00:00:00"}},
        {"decision": "confirm", "reason": "r", "filter": {"region_code": "32A"}},
        {"decision": "confirm", "reason": "", "ids": [1]},
    ],
)
def test_bad_bulk_requests_are_422(client, make, body):
    resp = bulk(client, make.auth("regulator"), **body)
    assert resp.status_code == 422 and resp.json["error"]["code"]
