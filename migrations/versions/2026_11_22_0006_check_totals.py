"""Each code's checks summed up as they are recorded (a scan reads one row instead of
counting every check of its code), and checks found by code and client.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 23:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_totals",
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("clients", sa.Integer(), nullable=False),
        sa.Column("districts", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["serial"], ["trace_codes.serial"], name=op.f("fk_check_totals_serial_trace_codes")
        ),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_check_totals")),
    )
    op.execute(
        "INSERT INTO check_totals (serial, checks, clients, districts, first_at) "
        "SELECT serial, count(*), count(DISTINCT client_hash), count(DISTINCT district_code), "
        "min(verified_at) FROM verifications GROUP BY serial"
    )
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_index("ix_verifications_serial_at")
        batch_op.create_index("ix_verifications_serial_client", ["serial", "client_hash"])


def downgrade() -> None:
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_index("ix_verifications_serial_client")
        batch_op.create_index("ix_verifications_serial_at", ["serial", "verified_at"])
    op.drop_table("check_totals")
