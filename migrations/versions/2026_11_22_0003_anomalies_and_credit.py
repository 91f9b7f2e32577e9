"""Anomalies, credit records, audit trail, appeals, commitments, ratings, reviews, complaints;
courier service areas and batch recall fields.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 13:10:10.810506
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_geospatial_table(
        "anomalies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("subject_type", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("party_type", sa.String(length=20), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
        sa.UniqueConstraint(
            "type", "subject_type", "subject", "party_type", "party_id", name="uq_anomalies_finding"
        ),
    )
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.create_geospatial_index(
            "idx_anomalies_location",
            ["location"],
            unique=False,
            postgresql_using="gist",
            postgresql_ops={},
        )
        batch_op.create_index("ix_anomalies_party", ["party_type", "party_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_anomalies_region_code"), ["region_code"], unique=False)
        batch_op.create_index(
            "ix_anomalies_status_detected_at", ["status", "detected_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_anomalies_type"), ["type"], unique=False)

    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor_token_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target_type", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entries_at"), ["at"], unique=False)

    op.create_table(
        "commitments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_type", sa.String(length=20), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("text_version", sa.String(length=16), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitments")),
        sa.UniqueConstraint("party_type", "party_id", name="uq_commitments_party"),
    )
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=False),
        sa.Column("statement", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["anomaly_id"], ["anomalies.id"], name=op.f("fk_appeals_anomaly_id_anomalies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
    )
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appeals_anomaly_id"), ["anomaly_id"], unique=False)

    op.create_table(
        "credit_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_type", sa.String(length=20), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=True),
        sa.Column("severity", sa.String(length=8), nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["anomaly_id"], ["anomalies.id"], name=op.f("fk_credit_records_anomaly_id_anomalies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_records")),
    )
    with op.batch_alter_table("credit_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credit_records_anomaly_id"), ["anomaly_id"], unique=False
        )
        batch_op.create_index("ix_credit_records_party", ["party_type", "party_id"], unique=False)

    op.create_table(
        "delivery_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("waybill", sa.String(length=32), nullable=False),
        sa.Column("rater", sa.String(length=10), nullable=False),
        sa.Column("courier_id", sa.Integer(), nullable=True),
        sa.Column("logistics_company_id", sa.Integer(), nullable=False),
        sa.Column("courier_stars", sa.Integer(), nullable=False),
        sa.Column("company_stars", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["courier_id"], ["couriers.id"], name=op.f("fk_delivery_ratings_courier_id_couriers")
        ),
        sa.ForeignKeyConstraint(
            ["logistics_company_id"],
            ["logistics_companies.id"],
            name=op.f("fk_delivery_ratings_logistics_company_id_logistics_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["waybill"], ["parcels.waybill"], name=op.f("fk_delivery_ratings_waybill_parcels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_ratings")),
        sa.UniqueConstraint("waybill", "rater", name="uq_delivery_ratings_rater"),
    )
    with op.batch_alter_table("delivery_ratings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_ratings_courier_id"), ["courier_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_ratings_logistics_company_id"),
            ["logistics_company_id"],
            unique=False,
        )

    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=12), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=True),
        sa.Column("party_type", sa.String(length=20), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=True),
        sa.Column("client_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["anomaly_id"], ["anomalies.id"], name=op.f("fk_complaints_anomaly_id_anomalies")
        ),
        sa.ForeignKeyConstraint(
            ["serial"], ["trace_codes.serial"], name=op.f("fk_complaints_serial_trace_codes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
    )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_complaints_client_hash"), ["client_hash"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_complaints_serial"), ["serial"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("client_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["serial"], ["trace_codes.serial"], name=op.f("fk_reviews_serial_trace_codes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_client_hash"), ["client_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_reviews_serial"), ["serial"], unique=False)

    # Plain ALTER TABLE (no batch table copy): SQLite adds and drops columns in place, and a
    # copy of a spatial table with foreign keys pointing at it fails in SpatiaLite.
    op.add_column("events", sa.Column("flag", sa.String(length=40), nullable=True))
    op.add_column("batches", sa.Column("recalled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("batches", sa.Column("recall_reason", sa.String(length=500), nullable=True))
    op.add_geospatial_column(
        "couriers",
        sa.Column(
            "service_area",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
    )
    op.create_geospatial_index(
        "idx_couriers_service_area",
        "couriers",
        ["service_area"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )

    _append_only_up()


def downgrade() -> None:
    _append_only_down()
    if op.get_bind().dialect.name == "sqlite":
        # SpatiaLite keeps triggers and metadata on a geometry column: discard them first.
        op.execute("SELECT DisableSpatialIndex('couriers', 'service_area')")
        op.execute("DROP TABLE IF EXISTS idx_couriers_service_area")
        op.execute("SELECT DiscardGeometryColumn('couriers', 'service_area')")
        op.drop_column("couriers", "service_area")
    else:
        op.drop_index("idx_couriers_service_area", table_name="couriers")
        op.drop_column("couriers", "service_area")
    op.drop_column("events", "flag")
    op.drop_column("batches", "recall_reason")
    op.drop_column("batches", "recalled_at")

    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_serial"))
        batch_op.drop_index(batch_op.f("ix_reviews_client_hash"))

    op.drop_table("reviews")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaints_serial"))
        batch_op.drop_index(batch_op.f("ix_complaints_client_hash"))

    op.drop_table("complaints")
    with op.batch_alter_table("delivery_ratings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_ratings_logistics_company_id"))
        batch_op.drop_index(batch_op.f("ix_delivery_ratings_courier_id"))

    op.drop_table("delivery_ratings")
    with op.batch_alter_table("credit_records", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_records_party")
        batch_op.drop_index(batch_op.f("ix_credit_records_anomaly_id"))

    op.drop_table("credit_records")
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appeals_anomaly_id"))

    op.drop_table("appeals")
    op.drop_table("commitments")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entries_at"))

    op.drop_table("audit_entries")
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anomalies_type"))
        batch_op.drop_index("ix_anomalies_status_detected_at")
        batch_op.drop_index(batch_op.f("ix_anomalies_region_code"))
        batch_op.drop_index("ix_anomalies_party")
        batch_op.drop_geospatial_index(
            "idx_anomalies_location", postgresql_using="gist", column_name="location"
        )

    op.drop_geospatial_table("anomalies")


APPEND_ONLY = ("audit_entries", "credit_records")


def _append_only_up() -> None:
    """Nobody can edit or delete an audit entry or a credit record, not even the service."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
            )
        return
    for table in APPEND_ONLY:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _append_only_down() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS refuse_change()")
        return
    for table in APPEND_ONLY:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
