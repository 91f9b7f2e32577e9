"""Captured TransformationEvents: inputs and outputs, the transformation's ID, no action.

- ``captured_events.action`` may be null (a TransformationEvent has no action);
- ``captured_events.transformation_id``: its transformationID, for ``EQ_transformationID``;
- ``captured_event_epcs.role`` is wider (``input``, ``output``, ``input_class``,
  ``output_class`` beside ``epc``, ``parent`` and ``class``) and part of the primary key: a
  transformation may name one EPC both as an input and as an output.

On SQLite, both tables are rebuilt (batch mode): the identifiers are set aside meanwhile, since
rebuilding ``captured_events`` drops it, which its identifiers' foreign key refuses.

The downgrade removes the captured transformations (their identifiers, IDs and rows): the
schema before this revision cannot hold them.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 20:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


_STASH = "stash_captured_event_epcs"
_COLUMNS = "captured_event_id, epc, role, serial"


def _set_aside() -> bool:
    """On SQLite, move the identifiers to a temporary table (see above)."""
    if op.get_bind().dialect.name != "sqlite":
        return False
    op.execute(f"CREATE TEMPORARY TABLE {_STASH} AS SELECT {_COLUMNS} FROM captured_event_epcs")
    op.execute("DELETE FROM captured_event_epcs")
    return True


def _put_back(stashed: bool) -> None:
    if stashed:
        op.execute(f"INSERT INTO captured_event_epcs ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STASH}")
        op.execute(f"DROP TABLE {_STASH}")


def upgrade() -> None:
    stashed = _set_aside()
    with op.batch_alter_table("captured_events") as batch:
        batch.alter_column("action", existing_type=sa.String(length=8), nullable=True)
        batch.add_column(sa.Column("transformation_id", sa.String(length=300), nullable=True))
        batch.create_index(batch.f("ix_captured_events_transformation_id"), ["transformation_id"])
    with op.batch_alter_table("captured_event_epcs") as batch:
        batch.alter_column(
            "role",
            existing_type=sa.String(length=8),
            type_=sa.String(length=12),
            existing_nullable=False,
        )
        batch.drop_constraint(batch.f("pk_captured_event_epcs"), type_="primary")
        batch.create_primary_key(
            batch.f("pk_captured_event_epcs"), ["captured_event_id", "epc", "role"]
        )
    _put_back(stashed)


def downgrade() -> None:
    transformations = "SELECT id FROM captured_events WHERE type = 'TransformationEvent'"
    op.execute(f"DELETE FROM captured_event_epcs WHERE captured_event_id IN ({transformations})")
    op.execute(
        f"DELETE FROM epcis_event_ids WHERE source = 'captured' AND ref_id IN ({transformations})"
    )
    op.execute("DELETE FROM captured_events WHERE type = 'TransformationEvent'")
    stashed = _set_aside()
    with op.batch_alter_table("captured_event_epcs") as batch:
        batch.drop_constraint(batch.f("pk_captured_event_epcs"), type_="primary")
        batch.create_primary_key(batch.f("pk_captured_event_epcs"), ["captured_event_id", "epc"])
        batch.alter_column(
            "role",
            existing_type=sa.String(length=12),
            type_=sa.String(length=8),
            existing_nullable=False,
        )
    with op.batch_alter_table("captured_events") as batch:
        batch.drop_index(batch.f("ix_captured_events_transformation_id"))
        batch.drop_column("transformation_id")
        batch.alter_column("action", existing_type=sa.String(length=8), nullable=False)
    _put_back(stashed)
