"""Counterfeits as consumers meet them (issue 16): checks of fake codes and reports of fakes.

- ``counterfeit_checks``: checks of never-issued codes and forged links, one row per code,
  network and day (a fake has no ``trace_codes`` row for ``verifications`` to refer to);
- ``counterfeit_reports``: consumers' reports of fakes, with an optional contact that only
  regulators see.

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-06 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counterfeit_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("lot", sa.String(length=20), nullable=True),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.Column("client_hash", sa.String(length=64), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counterfeit_checks")),
        sa.UniqueConstraint("code", "network", "day", name="uq_counterfeit_checks_once_a_day"),
    )
    op.create_index("ix_counterfeit_checks_network_day", "counterfeit_checks", ["network", "day"])
    op.create_index("ix_counterfeit_checks_gtin_last_at", "counterfeit_checks", ["gtin", "last_at"])
    op.create_table(
        "counterfeit_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("lot", sa.String(length=20), nullable=True),
        sa.Column("what", sa.String(length=200), nullable=False),
        sa.Column("where_bought", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=True),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.Column("client_hash", sa.String(length=64), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counterfeit_reports")),
    )
    op.create_index(
        "ix_counterfeit_reports_gtin_created_at", "counterfeit_reports", ["gtin", "created_at"]
    )
    op.create_index("ix_counterfeit_reports_client_hash", "counterfeit_reports", ["client_hash"])
    op.create_index("ix_counterfeit_reports_network", "counterfeit_reports", ["network"])
    op.create_index("ix_counterfeit_reports_created_at", "counterfeit_reports", ["created_at"])


def downgrade() -> None:
    op.drop_table("counterfeit_reports")
    op.drop_table("counterfeit_checks")
