"""Database engines, sessions and the declarative base.

Two engines are supported, both with spatial types:
- SQLite + SpatiaLite (the embedded default). The standard library's sqlite3 here cannot load
  extensions, so the engine uses ``pysqlite3`` (the same API, built with extension loading).
- PostgreSQL + PostGIS through psycopg 3 (production).
"""

from __future__ import annotations

import enum
import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from geoalchemy2 import Geometry, WKTElement
from geoalchemy2.admin.dialects.sqlite import load_spatialite
from psycopg.types.array import ListBinaryDumper
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

#: Constraint names that are the same on both databases, so migrations can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SPATIALITE_LIBRARY = "/usr/lib/x86_64-linux-gnu/mod_spatialite.so"


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator):
    """An aware UTC timestamp on both databases (SQLite keeps no offset, so we restore it)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class beijing_day(sa.sql.functions.FunctionElement):
    """The calendar day in Beijing (UTC+8, as :mod:`app.timefmt` shows moments) of a UTC
    timestamp column, worked out by the database, so rows can be counted per Beijing day
    with ``GROUP BY``: ``beijing_day(Anomaly.detected_at)``. A ``date`` on both databases."""

    type = sa.Date()
    name = "beijing_day"
    inherit_cache = True


@compiles(beijing_day, "postgresql")
def _beijing_day_postgresql(element, compiler, **kw) -> str:
    # The fixed offset of app.timefmt (China keeps no daylight saving): a third cheaper than
    # AT TIME ZONE 'Asia/Shanghai', which looks the zone's rules up for every row.
    column = compiler.process(element.clauses, **kw)
    return f"CAST((({column}) AT TIME ZONE 'UTC') + INTERVAL '8 hours' AS DATE)"


@compiles(beijing_day, "sqlite")
def _beijing_day_sqlite(element, compiler, **kw) -> str:
    # SQLite keeps the UTC time as text without an offset ("2026-12-01 21:12:09.000000").
    return f"date({compiler.process(element.clauses, **kw)}, '+8 hours')"


def utcnow() -> datetime:
    return datetime.now(UTC)


def Point() -> Geometry:
    """A WGS 84 point with a spatial index (PostGIS GiST, SpatiaLite R*Tree)."""
    return Geometry("POINT", srid=4326, spatial_index=True)


def point(lat: float | None, lon: float | None) -> WKTElement | None:
    """A WGS 84 point value from latitude and longitude (GeoJSON/WKT order is lon, lat)."""
    if lat is None or lon is None:
        return None
    return WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)


def normalize_url(url: str) -> str:
    """Pick our drivers: psycopg 3 for PostgreSQL, pysqlite3 for SQLite."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


#: How long a connection serves before it is renewed (idle timeouts of firewalls and proxies).
RECYCLE_S = 3600


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url`` with the spatial extension loaded on every connection."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        import pysqlite3.dbapi2 as sqlite

        path = make_url(url).database
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        os.environ.setdefault("SPATIALITE_LIBRARY_PATH", SPATIALITE_LIBRARY)
        engine = sa.create_engine(url, module=sqlite, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, record):
            # WGS84 only: initialising the full SRS table costs seconds per new database.
            load_spatialite(dbapi_conn, init_mode="WGS84", journal_mode="WAL")
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

        return engine
    # No ping before every checkout (a round trip, about a tenth of a consumer scan's CPU).
    # A connection the server dropped fails its next statement instead: SQLAlchemy then
    # discards it and every older connection of the pool, the request is answered 503 with
    # Retry-After (app.errors) and the next one gets a fresh connection; the consumer scan
    # sends its statement once more by itself (app.consumer.scan_pg).
    engine = sa.create_engine(url, pool_recycle=RECYCLE_S)

    @sa.event.listens_for(engine, "connect")
    def _on_connect_pg(dbapi_conn, record):
        dbapi_conn.adapters.register_dumper(Keys, ListBinaryDumper)

    return engine


class StatementConnections:
    """One PostgreSQL connection per thread, in autocommit, for a statement that is its own
    transaction and runs on every public request (the consumer scan).

    Each is opened with the engine's connect arguments, outside its pool, and keeps one
    cursor: checking a connection out of the pool and back, switching it to
    autocommit and back, and opening a cursor cost about a tenth of a scan's CPU. A thread
    keeps one connection, for the engine it last used, renewed after :data:`RECYCLE_S`.
    ``engine.dispose()`` closes every thread's connection to that engine (a thread that
    has ended leaves its connection open until then). The connections show as
    ``application_name`` :attr:`NAME` in ``pg_stat_activity``.

    They plan without sequential scans (:attr:`OPTIONS`). The statement is prepared, and
    PostgreSQL keeps its generic plan for as long as the connection lives, until the
    tables' statistics change. A plan made while a table was small read all of it when
    it had grown: made on an empty ``verifications``, it counted a code's checks by
    reading every check of every code (in bench/bench_consumer.py, a third of the scans,
    thousands of rows each; the database's CPU a scan doubled, and the scans went from
    about 1,600 to 1,100 a second). Every part of the statement is a lookup by key, with an
    index for it, so an index is always the right path."""

    NAME = "trace statement"
    OPTIONS = "-c enable_seqscan=off"

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        #: Every open connection, by id: (its engine, the connection).
        self._open: dict[int, tuple[sa.Engine, object]] = {}

    def cursor(self, engine: sa.Engine):
        """This thread's cursor on ``engine``'s database (a psycopg cursor, autocommit)."""
        held = getattr(self._local, "held", None)
        if held is not None:
            held_engine, born, conn, cur = held
            if held_engine is engine and not conn.closed and time.monotonic() - born < RECYCLE_S:
                return cur
            self.discard()
        if not sa.event.contains(engine, "engine_disposed", self._close_all):
            sa.event.listen(engine, "engine_disposed", self._close_all)
        # A new connection, not one of the pool's: after a server restart the pool may still
        # hold dead ones. The engine's own connect arguments, with psycopg directly.
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        options = f"{cparams.get('options', '')} {self.OPTIONS}".strip()
        cparams = {
            **cparams,
            "autocommit": True,
            "application_name": self.NAME,
            "options": options,
        }
        conn = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
        cur = conn.cursor()
        with self._lock:
            self._open[id(conn)] = (engine, conn)
        self._local.held = (engine, time.monotonic(), conn, cur)
        return cur

    def discard(self) -> None:
        """Close this thread's connection (a dropped one, an old one)."""
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            with self._lock:
                self._open.pop(id(held[2]), None)
            held[2].close()  # psycopg closes a broken connection without raising

    def _close_all(self, engine: sa.Engine) -> None:
        with self._lock:
            mine = [k for k, (e, _) in self._open.items() if e is engine]
            closing = [self._open.pop(k)[1] for k in mine]
        for conn in closing:
            conn.close()  # its thread opens another on its next statement


def make_sessionmaker(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def lat_lon_of(column, prefix: str = "") -> tuple[sa.ColumnElement, sa.ColumnElement]:
    """A point column read as two numbers, ``{prefix}lat`` and ``{prefix}lon``, by the
    database (ST_Y, ST_X on both PostGIS and SpatiaLite): how a statement reads a point,
    with nothing to decode here. NULL for no point."""
    return (
        sa.func.ST_Y(column, type_=sa.Float).label(f"{prefix}lat"),
        sa.func.ST_X(column, type_=sa.Float).label(f"{prefix}lon"),
    )


def lat_lon(geometry) -> tuple[float, float] | None:
    """(lat, lon) of a point loaded with an ORM object (a WKB element), or None; a statement
    reads points with :func:`lat_lon_of` instead."""
    if geometry is None:
        return None
    from geoalchemy2.shape import to_shape

    shape = to_shape(geometry)
    return shape.y, shape.x


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


_ASYNCHRONOUS_COMMIT = sa.text("SET LOCAL synchronous_commit = off")


def commit_without_flush_wait(session: Session) -> None:
    """On PostgreSQL, let this transaction's commit return before its write-ahead log is on
    disk (asynchronous commit), for a transaction that writes only a line of the access log
    about a read. The disk flush took 3 ms at the median and over 10 ms in the tail on a
    busy machine, most of a history's answer. A crash of the database server may lose the
    lines of the last fraction of a second (up to three ``wal_writer_delay``, 0.6 s by
    default); it never leaves the database inconsistent. SQLite (WAL, ``synchronous=NORMAL``)
    does not flush at a commit anyway. Not for a line about a read of personal data: those
    are committed durably."""
    if is_postgresql(session):
        session.execute(_ASYNCHRONOUS_COMMIT)


def among(session: Session, column, values: Iterable) -> sa.ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)``, one array parameter.

    An IN list is rendered with one placeholder per value, so every list length is a new SQL
    text that SQLAlchemy renders and psycopg parses again, and the server plans again: that
    was the largest overhead of a batch (bench/bench_ingest.py). The array form is one text,
    cached by both and prepared by the server."""
    values = list(values)
    if not values:
        return sa.false()
    if not is_postgresql(session):
        return column.in_(values)
    if isinstance(column.type, sa.String | sa.Integer):
        return column == sa.any_(sa.bindparam(None, Keys(values), type_=_KeysType()))
    item = sa.String() if isinstance(column.type, sa.String) else column.type
    return column == sa.any_(sa.bindparam(None, values, type_=postgresql.ARRAY(item)))


class Keys(list):
    """Strings or integers for ``= ANY(:array)``, sent to PostgreSQL as a binary array: psycopg
    dumps a text array literal in Python, several times slower (a few ms per 500 keys, and an
    ingest batch sends a dozen such arrays). Registered on each connection (create_engine)."""


class _KeysType(sa.types.UserDefinedType):
    """Passes a :class:`Keys` through to psycopg untouched (no SQLAlchemy bind processing)."""

    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return "TEXT[]"


def enum_column(cls: type[enum.Enum], name: str) -> sa.Enum:
    """An enum column stored as its values' text with a CHECK constraint: portable, and a new
    value needs only a migration."""
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )
