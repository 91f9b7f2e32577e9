"""EPCIS event IDs: every CBV 2.0 event hash the service gives out, and the row it was made
from, so an event can be fetched by its ID (GET /epcis/events/{eventID}).

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-06 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "epcis_event_ids",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("ref_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_epcis_event_ids")),
    )


def downgrade() -> None:
    op.drop_table("epcis_event_ids")
