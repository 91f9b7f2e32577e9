"""A throw-away PostgreSQL database for a benchmark: created empty, dropped afterwards."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def scratch_database(server: str, prefix: str = "trace_bench") -> Iterator[str]:
    """The URL of a new empty database on ``server`` (``postgresql://user@host:port``),
    named ``{prefix}_{random}``, dropped, connections and all, when the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1) + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def scratch_url(server: str | None) -> Iterator[str]:
    """A scratch PostgreSQL database on ``server``, or a SQLite file when there is none."""
    if server:
        with scratch_database(server) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
