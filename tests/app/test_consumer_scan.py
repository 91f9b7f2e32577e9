"""The consumer scan's two ways of reading a unit, statement by statement on any database and
in one statement on PostgreSQL: fed the same data, they give the same facts (and so the same
answer), and neither commits the request's session."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.consumer.facts import ScanFacts
from app.consumer.models import Verification
from app.consumer.scan import answer, scan
from app.consumer.scan_pg import ROLL_UP_AFTER, scan_in_one
from app.consumer.units import find_unit, forget_public_parts
from tests.app.test_consumer_pages import add_old_checks, copy_code, page
from tests.app.test_events_api import ship

# On PostgreSQL the scan runs on connections of its own, in autocommit, and the portable
# path's rolled-back run must not undo the data set up: the test commits for real there.
pytestmark = pytest.mark.committed("postgresql")

#: The client making the check under test (a keyed hash, as the page computes it).
CLIENT = "c" * 64


def a_genuine_unit_with_its_journey(client, make, world, session) -> str:
    ship(world)
    return world["serials"][0]


def a_unit_of_a_recalled_batch(client, make, world, session) -> str:
    ship(world)
    resp = client.post(
        f"/api/v1/batches/{world['batch']}/recall",
        json={"reason": "沙门氏菌检出 Salmonella found"},
        headers=make.auth("regulator"),
    )
    assert resp.status_code == 200
    return world["serials"][0]


def a_unit_with_an_open_finding(client, make, world, session) -> str:
    serial = world["serials"][0]
    pos = world["pos"]
    pos.post(pos.event("sold", 10, code=serial, data={"order_id": "O-1"}))
    pos.post(pos.event("sold", 20, code=serial, data={"order_id": "O-2"}))
    return serial


def a_code_found_copied_by_this_check(client, make, world, session) -> str:
    """Six clients in four districts checked the code before; nothing is on file yet."""
    serial = world["serials"][1]
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    session.add_all(
        Verification(
            serial=serial,
            client_hash=f"{n:064x}",
            new_client=True,
            verified_at=an_hour_ago + timedelta(minutes=n),
            district_code=["320404", "320411", "110101", "310101"][n % 4],
        )
        for n in range(6)
    )
    session.commit()
    return serial


def a_copied_code_on_file(client, make, world, session) -> str:
    serial = world["serials"][0]
    page(client, serial)
    copy_code(client, serial)  # the last place shared puts the finding on file
    return serial


def a_code_checked_many_times(client, make, world, session) -> str:
    """More checks than a roll-up waits for, by 150 clients, and none rolled up yet."""
    serial = world["serials"][2]
    add_old_checks(session, serial, ROLL_UP_AFTER + 10)
    return serial


def what_each_case_holds(case, facts: ScanFacts) -> None:
    """What makes each case the case it says it is (else comparing its facts would prove
    little)."""
    kinds = [t for t, _ in facts.findings]
    if case is a_genuine_unit_with_its_journey:
        assert len(facts.steps) == 7 and facts.steps[-1].type == "signed" and not kinds
        assert answer(facts)["verdict"]["level"] == "genuine"
    elif case is a_unit_of_a_recalled_batch:
        assert facts.unit.batch_status == "recalled" and "Salmonella" in facts.unit.recall_reason
    elif case is a_unit_with_an_open_finding:
        assert kinds == ["duplicate_sale"]
    elif case in (a_code_found_copied_by_this_check, a_copied_code_on_file):
        assert kinds == ["copied_code"] and facts.checks.first_district is not None
        assert answer(facts)["verdict"]["warnings"][0]["kind"] == "copied_code"
    else:
        assert (facts.checks.checks, facts.checks.clients) == (ROLL_UP_AFTER + 11, 151)


CASES = [
    a_genuine_unit_with_its_journey,
    a_unit_of_a_recalled_batch,
    a_unit_with_an_open_finding,
    a_code_found_copied_by_this_check,
    a_copied_code_on_file,
    a_code_checked_many_times,
]


def checks_of(session, serial: str) -> int:
    return session.scalar(sa.select(sa.func.count()).where(Verification.serial == serial))


def portable(app, session, serial: str, now: datetime) -> ScanFacts:
    """The facts as the statement-by-statement scan reads them, nothing kept beforehand."""
    forget_public_parts()
    config = app.extensions["trace"].config
    return scan(session, find_unit(session, serial), CLIENT, config, now)


def one_statement(app, session, serial: str, now: datetime) -> ScanFacts:
    """The facts as PostgreSQL's one-statement scan reads them, nothing kept beforehand."""
    forget_public_parts()
    engine, config = app.extensions["trace"].engine, app.extensions["trace"].config
    return scan_in_one(engine, lambda: session, serial, CLIENT, config, now=now)


@pytest.fixture(params=[portable, one_statement], ids=lambda way: way.__name__)
def way(request, app):
    if request.param is one_statement and app.extensions["trace"].engine.dialect.name != (
        "postgresql"
    ):
        pytest.skip("the one-statement scan is PostgreSQL's")
    return request.param


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_both_ways_to_scan_give_the_same_facts(app, client, make, world, session, way, case):
    """Does each way to scan read what the portable one reads from the same data: the unit
    and its recall, its batch and product, the merchant's credit, the checks with this one,
    the open findings and the journey? The portable scan is read first in a transaction
    that is then rolled back (its check and any finding with it: it commits nothing)."""
    serial = case(client, make, world, session)
    before = checks_of(session, serial)
    session.commit()
    now = datetime.now(UTC)
    expected = portable(app, session, serial, now)
    session.rollback()
    assert checks_of(session, serial) == before  # the use case left the commit to its caller
    session.rollback()

    facts = way(app, session, serial, now)
    session.commit()

    assert facts == expected
    assert answer(facts) == answer(expected)
    assert checks_of(session, serial) == before + 1
    assert facts.unit.serial == serial and facts.scanned_at == now
    assert facts.checks.checks == before + 1
    what_each_case_holds(case, facts)
