"""The credit exchange items pushed to the webhooks as they become public: which item, with
which content, when (or settled: a record that can never be public).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 19:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_pushes",
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("content_hash", sa.String(length=71), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_exchange_pushes")),
    )


def downgrade() -> None:
    op.drop_table("exchange_pushes")
