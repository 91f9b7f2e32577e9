"""Due process (issue 14): a confirmed anomaly's final date, a record's public date, appeals
of sanctions, and the dated red and black list entries.

Records made before this revision count publicly as they did: a decided anomaly from its
decision, any other record from its effective time; an open anomaly no longer does (it is a
risk signal now). Credit records are append-only, so their update trigger is lifted for the
one backfill and put back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_UPDATE_TRIGGER_SQLITE = (
    "CREATE TRIGGER credit_records_no_update BEFORE UPDATE ON credit_records "
    "BEGIN SELECT RAISE(ABORT, 'credit_records is append-only'); END"
)


def upgrade() -> None:
    # Plain ALTER TABLE: a batch copy of credit_records would lose its append-only triggers,
    # and a copy of anomalies (spatial, referenced) fails in SpatiaLite.
    op.add_column("anomalies", sa.Column("final_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "credit_records", sa.Column("public_from", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("UPDATE anomalies SET final_at = decided_at WHERE status = 'confirmed'")
    _backfill_public_from()

    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_id", sa.Integer(), nullable=True))
        batch_op.alter_column("anomaly_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_appeals_record_id_credit_records"),
            "credit_records",
            ["record_id"],
            ["id"],
        )
        batch_op.create_index(batch_op.f("ix_appeals_record_id"), ["record_id"], unique=False)
        batch_op.create_check_constraint(
            "anomaly_or_record", "(anomaly_id IS NULL) <> (record_id IS NULL)"
        )

    op.create_table(
        "list_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_type", sa.String(length=20), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("list", sa.String(length=5), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entered_because", sa.String(length=300), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_because", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["anomaly_id"], ["anomalies.id"], name=op.f("fk_list_entries_anomaly_id_anomalies")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["credit_records.id"],
            name=op.f("fk_list_entries_record_id_credit_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_list_entries")),
    )
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.create_index("ix_list_entries_party", ["party_type", "party_id"], unique=False)
        batch_op.create_index("ix_list_entries_list_left_at", ["list", "left_at"], unique=False)


def _backfill_public_from() -> None:
    """Records before this revision count publicly as before (anomalies: by their status)."""
    backfill = (
        "UPDATE credit_records SET public_from = effective_at "
        "WHERE kind NOT IN ('anomaly', 'reversal')"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE credit_records DISABLE TRIGGER credit_records_append_only")
        op.execute(backfill)
        op.execute("ALTER TABLE credit_records ENABLE TRIGGER credit_records_append_only")
        return
    op.execute("DROP TRIGGER credit_records_no_update")
    op.execute(backfill)
    op.execute(_UPDATE_TRIGGER_SQLITE)


def downgrade() -> None:
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_list_entries_list_left_at")
        batch_op.drop_index("ix_list_entries_party")
    op.drop_table("list_entries")

    # Appeals of sanctions have no place in the older schema.
    op.execute("DELETE FROM appeals WHERE record_id IS NOT NULL")
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_appeals_anomaly_or_record"), type_="check")
        batch_op.drop_index(batch_op.f("ix_appeals_record_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_appeals_record_id_credit_records"), type_="foreignkey"
        )
        batch_op.alter_column("anomaly_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("record_id")

    op.drop_column("credit_records", "public_from")
    op.drop_column("anomalies", "final_at")
