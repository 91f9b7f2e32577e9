"""Findings follow the evidence: what the service knows of each device's sync (when it was
last heard from, how far its own clock has delivered), and an anomaly's withdrawal (when the
evidence cleared it, why, by which events) and review flag (a decided finding that later
evidence contradicts).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns: added in place on both databases.
    op.add_column("devices", sa.Column("last_heard_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("devices", sa.Column("synced_through", sa.DateTime(timezone=True), nullable=True))
    op.add_column("anomalies", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("anomalies", sa.Column("withdrawal", sa.JSON(), nullable=True))
    op.add_column("anomalies", sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("anomalies", sa.Column("review_flag", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ has it): a batch copy of the anomalies
    # table would lose its SpatiaLite geometry column's registration.
    for column in ("review_flag", "flagged_at", "withdrawal", "withdrawn_at"):
        op.drop_column("anomalies", column)
    for column in ("synced_through", "last_heard_at"):
        op.drop_column("devices", column)
