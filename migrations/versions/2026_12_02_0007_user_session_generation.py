"""A user's session generation: a workspace session is valid only while it carries the
user's current generation, so signing out (or a password change, or an admin's revocation)
ends every session of that user on the server, a copied cookie included.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place on both databases: a NOT NULL column with a default needs no table rebuild.
    op.add_column(
        "users",
        sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
