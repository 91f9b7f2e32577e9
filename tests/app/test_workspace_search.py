"""The workspace's search and the access log (issue 15): personal identifiers typed into the
box are logged masked with their keyed hash, and one hit goes straight to it."""

import pytest
import sqlalchemy as sa

from app.accesslog.models import AccessEntry
from tests.app.test_workspace import HTML, sign_in
from tracecore.identity import keyed_hash, redact_identifiers


@pytest.fixture
def regulator(client, make):
    return sign_in(client, *make.user("regulator", "3204"))


def _search_line(session) -> AccessEntry:
    return session.scalars(sa.select(AccessEntry).where(AccessEntry.target_type == "search")).one()


@pytest.mark.parametrize(
    "typed,number,shown",
    [
        ("13800000001", "13800000001", "138****0001"),
        ("+86 138-0000-0001", "13800000001", "138****0001"),
        ("320402199001011237", "320402199001011237", "320402********1237"),
    ],
)
def test_a_searched_phone_or_id_number_is_logged_masked_with_its_keyed_hash(
    app, regulator, make, session, typed, number, shown
):
    """Is a courier searched by full mobile or ID number kept out of the log in clear, the
    line marked as personal data, with the keyed hash the couriers' table keeps?"""
    regulator.get("/workspace/search", query_string={"q": typed}, headers=HTML)
    line = _search_line(session)
    assert number not in line.target_id and number not in line.detail
    assert line.target_id == shown and line.personal_data
    assert keyed_hash("test-secret", number) in line.detail


def test_the_access_log_page_shows_no_searched_number(app, regulator, make):
    courier = make.courier(phone="13800000001")
    resp = regulator.get("/workspace/search", query_string={"q": "13800000001"}, headers=HTML)
    assert resp.location == f"/workspace/parties/courier/{courier}"
    admin = sign_in(app.test_client(), *make.user("admin"))
    log = admin.get("/workspace/audit", headers=HTML).text
    assert "13800000001" not in log and "138****0001" in log


def test_a_courier_found_by_name_is_logged_masked(regulator, make, session):
    make.courier(name="欧阳锋")
    regulator.get("/workspace/search", query_string={"q": "欧阳"}, headers=HTML)
    line = _search_line(session)
    assert (line.target_id, line.personal_data) == ("欧*", True)
    assert "欧阳" not in line.detail


def test_other_terms_are_logged_as_typed(regulator, session):
    regulator.get("/workspace/search", query_string={"q": "SF1234567890"}, headers=HTML)
    line = _search_line(session)
    assert (line.target_id, line.personal_data) == ("SF1234567890", False)


def test_numbers_inside_other_identifiers_are_not_taken_for_phones():
    """A waybill, a GTIN or a serial with eleven digits in it is no phone number."""
    for text in ("SF13800000001", "06901234567892", "13800000001A"):
        assert redact_identifiers("k", text).text == text


def test_one_hit_goes_straight_to_it_and_several_are_listed(regulator, make):
    merchant = make.merchant(name="一号商店")
    make.merchant(name="二号商店")
    one = regulator.get("/workspace/search", query_string={"q": "一号"}, headers=HTML)
    assert one.status_code == 302
    assert one.location == f"/workspace/parties/merchant/{merchant}"
    several = regulator.get("/workspace/search", query_string={"q": "商店"}, headers=HTML)
    assert several.status_code == 200 and several.text.count('data-kind="merchant"') == 2
