"""Untrusted input counted by its source: the network of each review and complaint (their
limits count per address and per network, and a network's complaints about one party are
one finding), and the checks a source placed, indexed by source (a place counts once per
source and code, and for a bounded number of codes a day).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_PLACED = sa.text("district_code IS NOT NULL")


def upgrade() -> None:
    # In place on both databases (a nullable column needs no table rebuild on SQLite).
    for table in ("reviews", "complaints"):
        op.add_column(table, sa.Column("network", sa.String(length=64), nullable=True))
        op.create_index(op.f(f"ix_{table}_network"), table, ["network"])
    op.create_index(
        "ix_verifications_placed_by_source",
        "verifications",
        ["client_hash", "verified_at"],
        postgresql_where=_PLACED,
        sqlite_where=_PLACED,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_verifications_placed_by_source",
        table_name="verifications",
        postgresql_where=_PLACED,
        sqlite_where=_PLACED,
    )
    for table in ("complaints", "reviews"):
        op.drop_index(op.f(f"ix_{table}_network"), table_name=table)
        # In place on both (SQLite ≥ 3.35 drops a column without a rebuild).
        op.execute(f"ALTER TABLE {table} DROP COLUMN network")
