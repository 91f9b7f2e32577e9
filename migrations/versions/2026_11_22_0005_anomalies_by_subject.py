"""Anomalies found by their subject (a code's or parcel's open anomalies).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:45:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_anomalies_subject", "anomalies", ["subject_type", "subject"])


def downgrade() -> None:
    op.drop_index("ix_anomalies_subject", table_name="anomalies")
