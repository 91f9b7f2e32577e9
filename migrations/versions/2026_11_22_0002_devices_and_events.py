"""Devices, events, parcels, rejected events and sequence gaps (event ingestion).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 12:45:47.043318
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "shelf_scanner",
                "pos_scanner",
                "courier_handheld",
                name="device_kind",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("owner_type", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("secret_version", sa.Integer(), nullable=False),
        sa.Column("max_seq", sa.BigInteger(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_table(
        "rejected_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_events")),
    )
    with op.batch_alter_table("rejected_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rejected_events_device_id"), ["device_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_rejected_events_received_at"), ["received_at"], unique=False
        )

    op.create_geospatial_table(
        "parcels",
        sa.Column("waybill", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("logistics_company_id", sa.Integer(), nullable=False),
        sa.Column(
            "consignee",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("consignee_region_code", sa.String(length=6), nullable=False),
        sa.Column("promised_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("packed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["logistics_company_id"],
            ["logistics_companies.id"],
            name=op.f("fk_parcels_logistics_company_id_logistics_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_parcels_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("waybill", name=op.f("pk_parcels")),
    )
    with op.batch_alter_table("parcels", schema=None) as batch_op:
        batch_op.create_geospatial_index(
            "idx_parcels_consignee",
            ["consignee"],
            unique=False,
            postgresql_using="gist",
            postgresql_ops={},
        )
        batch_op.create_index(
            batch_op.f("ix_parcels_logistics_company_id"), ["logistics_company_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_parcels_merchant_id"), ["merchant_id"], unique=False)

    op.create_table(
        "sequence_gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=16), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resend_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_sequence_gaps_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_gaps")),
    )
    with op.batch_alter_table("sequence_gaps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sequence_gaps_device_id"), ["device_id"], unique=False)

    op.create_geospatial_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=True),
        sa.Column("waybill", sa.String(length=32), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("utc_offset_min", sa.SmallInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
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
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("party_type", sa.String(length=16), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("violation", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_events_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["serial"], ["trace_codes.serial"], name=op.f("fk_events_serial_trace_codes")
        ),
        sa.ForeignKeyConstraint(
            ["waybill"], ["parcels.waybill"], name=op.f("fk_events_waybill_parcels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_geospatial_index(
            "idx_events_location",
            ["location"],
            unique=False,
            postgresql_using="gist",
            postgresql_ops={},
        )
        batch_op.create_index("ix_events_device_id_seq", ["device_id", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_serial"), ["serial"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_waybill"), ["waybill"], unique=False)

    op.create_table(
        "parcel_items",
        sa.Column("waybill", sa.String(length=32), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["serial"], ["trace_codes.serial"], name=op.f("fk_parcel_items_serial_trace_codes")
        ),
        sa.ForeignKeyConstraint(
            ["waybill"], ["parcels.waybill"], name=op.f("fk_parcel_items_waybill_parcels")
        ),
        sa.PrimaryKeyConstraint("waybill", "serial", name=op.f("pk_parcel_items")),
    )
    with op.batch_alter_table("parcel_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_parcel_items_serial"), ["serial"], unique=False)

    op.create_table(
        "parked_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=16), nullable=False),
        sa.Column("waybill", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_parked_events_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_parked_events_event_id")),
    )
    op.create_index("ix_parcels_merchant_id_packed_at", "parcels", ["merchant_id", "packed_at"])
    op.create_index(op.f("ix_parked_events_waybill"), "parked_events", ["waybill"])
    op.create_index(op.f("ix_parked_events_received_at"), "parked_events", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_parcels_merchant_id_packed_at", table_name="parcels")
    op.drop_index(op.f("ix_parked_events_received_at"), table_name="parked_events")
    op.drop_index(op.f("ix_parked_events_waybill"), table_name="parked_events")
    op.drop_table("parked_events")
    with op.batch_alter_table("parcel_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parcel_items_serial"))

    op.drop_table("parcel_items")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_waybill"))
        batch_op.drop_index(batch_op.f("ix_events_serial"))
        batch_op.drop_index("ix_events_device_id_seq")
        batch_op.drop_geospatial_index(
            "idx_events_location", postgresql_using="gist", column_name="location"
        )

    op.drop_geospatial_table("events")
    with op.batch_alter_table("sequence_gaps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sequence_gaps_device_id"))

    op.drop_table("sequence_gaps")
    with op.batch_alter_table("parcels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parcels_merchant_id"))
        batch_op.drop_index(batch_op.f("ix_parcels_logistics_company_id"))
        batch_op.drop_geospatial_index(
            "idx_parcels_consignee", postgresql_using="gist", column_name="consignee"
        )

    op.drop_geospatial_table("parcels")
    with op.batch_alter_table("rejected_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rejected_events_received_at"))
        batch_op.drop_index(batch_op.f("ix_rejected_events_device_id"))

    op.drop_table("rejected_events")
    op.drop_table("devices")
