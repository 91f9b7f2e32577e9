"""Each client's first check of a code marked (one per client and code, unique), and checks
summed up per code before a moment (a scan of a much-checked code counts only the checks
since).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 01:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added in place on both databases (a NOT NULL column with a default needs no table
    # rebuild on SQLite; a rebuild of this spatial table fails under SpatiaLite).
    op.add_column(
        "verifications",
        sa.Column("new_client", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(
        "UPDATE verifications SET new_client = true WHERE id IN "
        "(SELECT min(id) FROM verifications GROUP BY serial, client_hash)"
    )
    op.create_index(
        "uq_verifications_first_check",
        "verifications",
        ["serial", "client_hash"],
        unique=True,
        postgresql_where=sa.text("new_client"),
        sqlite_where=sa.text("new_client"),
    )
    op.create_table(
        "check_rollups",
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column("upto", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("clients", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "districts", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["serial"], ["trace_codes.serial"], name=op.f("fk_check_rollups_serial_trace_codes")
        ),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_check_rollups")),
    )


def downgrade() -> None:
    op.drop_table("check_rollups")
    op.drop_index(
        "uq_verifications_first_check",
        table_name="verifications",
        postgresql_where=sa.text("new_client"),
        sqlite_where=sa.text("new_client"),
    )
    op.execute("ALTER TABLE verifications DROP COLUMN new_client")  # in place on both
