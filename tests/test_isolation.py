"""The suite's own isolation (tests/conftest.py ``_isolated``): each test's commits land in
one transaction that is rolled back, or, for tests marked ``committed``, in the database,
emptied afterwards. The tests of this module run in order: each checks what the one before
it left."""

import pytest
import sqlalchemy as sa


def merchants(session) -> int:
    return session.scalar(sa.text("SELECT count(*) FROM merchants"))


def test_commits_of_make_and_of_requests_are_seen_by_the_test(client, make, session):
    """Does the test's session see what ``make`` and a request committed?"""
    merchant = make.merchant()
    resp = client.get(f"/api/v1/merchants/{merchant}", headers=make.auth("regulator"))
    assert resp.status_code == 200
    assert merchants(session) == 1


def test_the_test_before_left_nothing(session):
    """Was the last test's work rolled back?"""
    assert merchants(session) == 0


@pytest.mark.committed
def test_a_committed_test_commits_for_real(app, make):
    """Does a test marked ``committed`` write through the engine's own connections (the
    app's sessions given back to it after the tests before)?"""
    assert app.extensions["trace"].sessionmaker.kw["bind"] is app.extensions["trace"].engine
    make.merchant()
    with app.extensions["trace"].engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM merchants")) == 1


def test_the_committed_test_before_was_emptied(session):
    assert merchants(session) == 0
