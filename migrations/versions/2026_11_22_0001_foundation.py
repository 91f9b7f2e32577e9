"""Foundation: parties, products, batches, certificates, trace codes, API tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 12:30:17.250203
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Needs a superuser once per database; a no-op when PostGIS is already there.
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "regulator",
                "merchant",
                "logistics",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("party_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_geospatial_table(
        "logistics_companies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
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
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_companies")),
        sa.UniqueConstraint("uscc", name=op.f("uq_logistics_companies_uscc")),
    )
    with op.batch_alter_table("logistics_companies", schema=None) as batch_op:
        batch_op.create_geospatial_index(
            "idx_logistics_companies_location",
            ["location"],
            unique=False,
            postgresql_using="gist",
            postgresql_ops={},
        )
        batch_op.create_index(
            batch_op.f("ix_logistics_companies_region_code"), ["region_code"], unique=False
        )

    op.create_geospatial_table(
        "merchants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "platform",
                "shop",
                "individual",
                "producer",
                name="merchant_kind",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
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
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants")),
        sa.UniqueConstraint("uscc", name=op.f("uq_merchants_uscc")),
    )
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.create_geospatial_index(
            "idx_merchants_location",
            ["location"],
            unique=False,
            postgresql_using="gist",
            postgresql_ops={},
        )
        batch_op.create_index(batch_op.f("ix_merchants_region_code"), ["region_code"], unique=False)

    op.create_geospatial_table(
        "couriers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("id_number_hash", sa.String(length=64), nullable=False),
        sa.Column("id_number_masked", sa.String(length=18), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("phone_masked", sa.String(length=11), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
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
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["logistics_companies.id"],
            name=op.f("fk_couriers_company_id_logistics_companies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_couriers")),
        sa.UniqueConstraint("id_number_hash", name=op.f("uq_couriers_id_number_hash")),
    )
    with op.batch_alter_table("couriers", schema=None) as batch_op:
        batch_op.create_geospatial_index(
            "idx_couriers_location",
            ["location"],
            unique=False,
            postgresql_using="gist",
            postgresql_ops={},
        )
        batch_op.create_index(batch_op.f("ix_couriers_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_couriers_phone_hash"), ["phone_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_couriers_region_code"), ["region_code"], unique=False)

    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "category",
            sa.Enum(
                "edible_agricultural",
                "food",
                "drug",
                "agricultural_input",
                "special_equipment",
                "hazardous_chemical",
                "rare_earth",
                "other",
                name="product_category",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_products_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("gtin", name=op.f("uq_products_gtin")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_products_merchant_id"), ["merchant_id"], unique=False)

    op.create_geospatial_table(
        "batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("lot", sa.String(length=20), nullable=False),
        sa.Column("produced_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("origin_name", sa.String(length=200), nullable=False),
        sa.Column(
            "origin",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=False,
        ),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("issued_count", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "recalled",
                name="batch_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "expires_on >= produced_on", name=op.f("ck_batches_expiry_after_production")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_batches_positive_quantity")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_batches_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("product_id", "lot", name="uq_batches_product_id_lot"),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_geospatial_index(
            "idx_batches_origin",
            ["origin"],
            unique=False,
            postgresql_using="gist",
            postgresql_ops={},
        )
        batch_op.create_index(batch_op.f("ix_batches_product_id"), ["product_id"], unique=False)

    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=200), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column(
            "result",
            sa.Enum(
                "passed",
                "failed",
                name="inspection_result",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("report_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_certificates_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificates_batch_id"), ["batch_id"], unique=False)

    op.create_table(
        "issuances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_issuances_batch_id_batches")
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["api_tokens.id"], name=op.f("fk_issuances_token_id_api_tokens")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuances")),
    )
    with op.batch_alter_table("issuances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issuances_batch_id"), ["batch_id"], unique=False)

    op.create_table(
        "trace_codes",
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("issuance_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.String(length=24),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_trace_codes_batch_id_batches")
        ),
        sa.ForeignKeyConstraint(
            ["issuance_id"], ["issuances.id"], name=op.f("fk_trace_codes_issuance_id_issuances")
        ),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_trace_codes")),
    )
    with op.batch_alter_table("trace_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trace_codes_batch_id"), ["batch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trace_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trace_codes_batch_id"))

    op.drop_table("trace_codes")
    with op.batch_alter_table("issuances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issuances_batch_id"))

    op.drop_table("issuances")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_batch_id"))

    op.drop_table("certificates")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_product_id"))
        batch_op.drop_geospatial_index(
            "idx_batches_origin", postgresql_using="gist", column_name="origin"
        )

    op.drop_geospatial_table("batches")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_merchant_id"))

    op.drop_table("products")
    with op.batch_alter_table("couriers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_couriers_region_code"))
        batch_op.drop_index(batch_op.f("ix_couriers_phone_hash"))
        batch_op.drop_index(batch_op.f("ix_couriers_company_id"))
        batch_op.drop_geospatial_index(
            "idx_couriers_location", postgresql_using="gist", column_name="location"
        )

    op.drop_geospatial_table("couriers")
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merchants_region_code"))
        batch_op.drop_geospatial_index(
            "idx_merchants_location", postgresql_using="gist", column_name="location"
        )

    op.drop_geospatial_table("merchants")
    with op.batch_alter_table("logistics_companies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_companies_region_code"))
        batch_op.drop_geospatial_index(
            "idx_logistics_companies_location", postgresql_using="gist", column_name="location"
        )

    op.drop_geospatial_table("logistics_companies")
    op.drop_table("api_tokens")
