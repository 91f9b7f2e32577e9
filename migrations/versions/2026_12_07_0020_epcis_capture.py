"""EPCIS 2.0 capture (issue 17): outside traceability systems send EPCIS documents.

- ``api_tokens.outside_system``: the name of the outside system a token is for; such a token
  may only capture EPCIS events for its own party and read its own capture jobs;
- ``capture_jobs``: one per ``POST /epcis/capture``, with its outcome and errors;
- ``captured_events``: each event captured, as served back (its JSON and its CBV 2.0 hash);
- ``captured_event_epcs``: the identifiers each names, with the trace code of ours an
  identifier resolves to (none for an outside identifier).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("outside_system", sa.String(length=100), nullable=True))
    op.create_table(
        "capture_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("capture_id", sa.String(length=40), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("party_type", sa.String(length=24), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("error_behaviour", sa.String(length=8), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("captured", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"], ["api_tokens.id"], name=op.f("fk_capture_jobs_token_id_api_tokens")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_jobs")),
        sa.UniqueConstraint("capture_id", name=op.f("uq_capture_jobs_capture_id")),
    )
    op.create_index(op.f("ix_capture_jobs_token_id"), "capture_jobs", ["token_id", "id"])
    op.create_table(
        "captured_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("party_type", sa.String(length=24), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("event_time", _TIME, nullable=False),
        sa.Column("record_time", _TIME, nullable=False),
        sa.Column("biz_step", sa.String(length=300), nullable=True),
        sa.Column("disposition", sa.String(length=300), nullable=True),
        sa.Column("read_point", sa.String(length=300), nullable=True),
        sa.Column("biz_location", sa.String(length=300), nullable=True),
        sa.Column("our_type", sa.String(length=24), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["capture_jobs.id"], name=op.f("fk_captured_events_job_id_capture_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captured_events")),
        sa.UniqueConstraint("digest", name=op.f("uq_captured_events_digest")),
    )
    op.create_index(op.f("ix_captured_events_job_id"), "captured_events", ["job_id"])
    op.create_table(
        "captured_event_epcs",
        sa.Column(
            "captured_event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("epc", sa.String(length=300), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["captured_event_id"],
            ["captured_events.id"],
            name=op.f("fk_captured_event_epcs_captured_event_id_captured_events"),
        ),
        sa.PrimaryKeyConstraint("captured_event_id", "epc", name=op.f("pk_captured_event_epcs")),
    )
    op.create_index(op.f("ix_captured_event_epcs_epc"), "captured_event_epcs", ["epc"])
    op.create_index(op.f("ix_captured_event_epcs_serial"), "captured_event_epcs", ["serial"])


def downgrade() -> None:
    op.drop_index(op.f("ix_captured_event_epcs_serial"), table_name="captured_event_epcs")
    op.drop_index(op.f("ix_captured_event_epcs_epc"), table_name="captured_event_epcs")
    op.drop_table("captured_event_epcs")
    op.drop_index(op.f("ix_captured_events_job_id"), table_name="captured_events")
    op.drop_table("captured_events")
    op.drop_index(op.f("ix_capture_jobs_token_id"), table_name="capture_jobs")
    op.drop_table("capture_jobs")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("outside_system")
