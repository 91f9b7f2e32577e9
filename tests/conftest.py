"""Fixtures: a real, migrated database (SQLite + SpatiaLite by default, PostgreSQL + PostGIS
when TEST_DATABASE_URL is set), each test's work in it rolled back (or, for tests marked
``committed``, the tables emptied) afterwards; the app, its client and runner; and
``make``, a factory of valid parties, products, batches and tokens. Signed device events
come from tests/factories.py."""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import date
from itertools import count

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from app import create_app, migrate
from app.auth.operations import create_token, create_user
from app.catalog import operations as catalog
from app.catalog.models import ProductCategory
from app.codes.operations import issue_codes
from app.db import Base
from app.parties import operations as parties
from app.parties.models import MerchantKind
from tracecore.access import OPERATOR, Role
from tracecore.gs1 import gtin_check_digit
from tracecore.identity import validate_resident_id
from tracecore.uscc import uscc_check_char

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """A database at the head migration, reset once per test run."""
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TRACE_ENV": "testing",
            "SECRET_KEY": "test-secret",
            "RESOLVER_HOST": "id.example.cn",
            "MAX_CODES_PER_REQUEST": 100_000,
            # The suite makes many requests from one address; one test checks the limits.
            "PUBLIC_RATE_LIMIT": "100000 per minute",
            "SIGN_IN_RATE_LIMIT": "100000 per minute",
            "UNAUTHENTICATED_EVENTS_RATE_LIMIT": "100000 per minute",
            "SIGN_IN_ACCOUNT_LIMIT": "100000 per minute",
            # Identifiers restart with every test: a grade kept from the last one would lie.
            "PUBLIC_CREDIT_MAX_AGE_S": 0,
            # The overview counts events afresh: each test has its own.
            "OVERVIEW_EVENT_COUNTS_MAX_AGE_S": 0,
        }
    )
    yield app
    app.extensions["trace"].engine.dispose()


def committed(node: pytest.Item, dialect: str) -> bool:
    """Does this test need its data committed (marked ``committed``, for every database or
    for this one)?"""
    marker = node.get_closest_marker("committed")
    return marker is not None and (not marker.args or dialect in marker.args)


@pytest.fixture(autouse=True)
def _isolated(request, monkeypatch):
    """Each test that uses the database leaves it as it found it.

    Most run inside one transaction that is rolled back at the end (SQLAlchemy's "Joining a
    Session into an External Transaction"): every session the test, ``make``, the CLI or a
    request opens is bound to one connection and begins with a SAVEPOINT, so their commits
    release a savepoint and commit nothing. Tests marked ``committed`` (another process,
    thread or connection reads their data) commit for real, and every table is emptied
    afterwards; so it is after any test that took another connection from a pool (its own
    ``engine.connect()``, a second app on ``database_url``), whatever it wrote there."""
    if "database_url" not in request.fixturenames:
        yield
        return
    own_app = "app" not in request.fixturenames  # the test makes an app of its own
    app = request.getfixturevalue("app")
    if own_app:
        with _other_connections() as used:
            yield
        if used:
            empty_tables(app.extensions["trace"].engine)
        return
    engine = app.extensions["trace"].engine
    if committed(request.node, engine.dialect.name):
        yield
        empty_tables(engine)
        return
    with engine.connect() as conn:
        outer = conn.begin()
        if engine.dialect.name == "sqlite":
            # pysqlite begins a transaction only before a write, and a SAVEPOINT outside one
            # is a transaction of its own: take BEGIN and SAVEPOINT from SQLAlchemy as sent.
            driver = conn.connection.driver_connection
            driver.isolation_level = None
            conn.exec_driver_sql("BEGIN")
        monkeypatch.setattr(
            app.extensions["trace"],
            "sessionmaker",
            sessionmaker(conn, expire_on_commit=False, join_transaction_mode="create_savepoint"),
        )
        try:
            with _other_connections() as used:
                yield
        finally:
            outer.rollback()
            if engine.dialect.name == "sqlite":
                driver.isolation_level = ""
    if used:
        empty_tables(engine)


@contextmanager
def _other_connections():
    """A list that fills with the connections taken from any pool meanwhile."""
    used: list = []

    def taken(*args):
        used.append(args)

    sa.event.listen(sa.pool.Pool, "checkout", taken)
    try:
        yield used
    finally:
        sa.event.remove(sa.pool.Pool, "checkout", taken)


def empty_tables(engine: sa.Engine) -> None:
    """Empty every table (a test committed its data)."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            # The append-only triggers refuse deletes: lift them for the purge, then restore.
            triggers = conn.execute(
                sa.text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    "AND sql LIKE '%append-only%'"
                )
            ).all()
            for name, _ in triggers:
                conn.execute(sa.text(f"DROP TRIGGER {name}"))
            for name in tables:
                conn.execute(sa.text(f"DELETE FROM {name}"))
            for _, sql in triggers:
                conn.execute(sa.text(sql))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    with app.extensions["trace"].sessionmaker() as s:
        yield s


def uscc(n: int) -> str:
    body = f"9132041{n:010d}"
    return body + uscc_check_char(body)


def gtin13(n: int) -> str:
    body = f"690{n:09d}"
    return body + str(gtin_check_digit(body))


def resident_id(n: int) -> str:
    body = f"3204021990{n:07d}"
    for check in "0123456789X":
        try:
            return validate_resident_id(body + check)
        except Exception:
            continue
    raise AssertionError("unreachable")


class Make:
    """Valid domain objects, committed, with unique identifiers per call."""

    def __init__(self, app):
        self.app = app
        self.seq = count(1)

    def _commit(self, fn):
        with self.app.extensions["trace"].sessionmaker() as s:
            result = fn(s)
            s.commit()
            return result

    def merchant(self, **kw) -> int:
        n = next(self.seq)
        args = (
            dict(
                name=f"商户{n}",
                uscc=uscc(n),
                kind=MerchantKind.SHOP,
                region_code="320411",
                lat=31.8,
                lon=119.97,
            )
            | kw
        )
        return self._commit(lambda s: parties.register_merchant(s, OPERATOR, **args).id)

    def company(self, **kw) -> int:
        n = next(self.seq)
        args = dict(name=f"快递公司{n}", uscc=uscc(n), region_code="320400") | kw
        return self._commit(lambda s: parties.register_logistics_company(s, OPERATOR, **args).id)

    def product(self, merchant_id: int | None = None, **kw) -> int:
        merchant_id = merchant_id or self.merchant()
        n = next(self.seq)
        args = dict(gtin=gtin13(n), name=f"产品{n}", category=ProductCategory.FOOD) | kw
        return self._commit(
            lambda s: catalog.register_product(s, OPERATOR, merchant_id=merchant_id, **args).id
        )

    def batch(self, product_id: int | None = None, **kw) -> int:
        product_id = product_id or self.product()
        n = next(self.seq)
        args = (
            dict(
                lot=f"L{n}",
                produced_on=date(2026, 10, 1),
                expires_on=date(2027, 10, 1),
                origin_name="江苏省常州市",
                origin_lat=31.81,
                origin_lon=119.97,
                quantity=1000,
            )
            | kw
        )
        return self._commit(
            lambda s: catalog.register_batch(s, OPERATOR, product_id=product_id, **args).id
        )

    def courier(self, company_id: int | None = None, **kw) -> int:
        company_id = company_id or self.company()
        n = next(self.seq)
        args = (
            dict(
                name=f"快递员{n}",
                id_number=resident_id(n),
                phone=f"139{n:08d}",
                region_code="320411",
            )
            | kw
        )
        return self._commit(
            lambda s: (
                parties.register_courier(
                    s, OPERATOR, "test-secret", company_id=company_id, **args
                ).id
            )
        )

    def device(self, kind: str, owner_id: int) -> tuple[str, str]:
        """A registered device: (device_id, secret)."""
        from app.events.models import DeviceKind
        from app.events.registry import OWNER_OF_KIND, register_device

        kind = DeviceKind(kind)

        def create(s):
            device, secret = register_device(
                s,
                OPERATOR,
                "test-secret",
                kind=kind,
                owner_type=OWNER_OF_KIND[kind],
                owner_id=owner_id,
            )
            return device.id, secret

        return self._commit(create)

    def codes(self, batch_id: int, n: int) -> list[str]:
        return self._commit(
            lambda s: issue_codes(s, OPERATOR, batch_id, n, max_count=1_000_000).serials
        )

    def token(self, role: Role | str, party_id: int | None = None) -> str:
        return self._commit(lambda s: create_token(s, Role(role), party_id)[0])

    def user(self, role: Role | str = "regulator", jurisdiction: str = "", **kw) -> tuple:
        """A workspace user: (username, password)."""
        n = next(self.seq)
        username, password = f"user{n}", f"correct horse {n}"
        self._commit(
            lambda s: (
                create_user(s, username, password, Role(role), jurisdiction=jurisdiction, **kw).id
            )
        )
        return username, password

    def auth(self, role: Role | str, party_id: int | None = None) -> dict:
        return {"Authorization": f"Bearer {self.token(role, party_id)}"}

    def outside_system(self, party_id: int, name: str = "某ERP", role: str = "merchant") -> dict:
        """The headers of an outside traceability system's token, acting for ``party_id``."""
        token = self._commit(
            lambda s: create_token(s, Role(role), party_id, outside_system=name)[0]
        )
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make(app) -> Make:
    return Make(app)
