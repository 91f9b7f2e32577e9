"""Workspace users and jurisdictions, the access log, consumers' verifications.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 15:14:47.717354
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROLE = sa.Enum(
    "admin",
    "regulator",
    "merchant",
    "logistics",
    name="role",
    native_enum=False,
    create_constraint=True,
    length=24,
)


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_token_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("target_type", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("personal_data", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_log_at"), ["at"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=True),
        sa.Column("jurisdiction", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_geospatial_table(
        "verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column("client_hash", sa.String(length=64), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=True),
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
        sa.ForeignKeyConstraint(
            ["serial"], ["trace_codes.serial"], name=op.f("fk_verifications_serial_trace_codes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.create_geospatial_index(
            "idx_verifications_location",
            ["location"],
            unique=False,
            postgresql_using="gist",
            postgresql_ops={},
        )
        batch_op.create_index("ix_verifications_serial_at", ["serial", "verified_at"])

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("jurisdiction", sa.String(length=200), nullable=False, server_default="")
        )
    # Plain ALTER TABLE on both engines: a batch copy would lose the append-only triggers.
    op.add_column("audit_entries", sa.Column("actor_user_id", sa.Integer(), nullable=True))
    _append_only_up()


def downgrade() -> None:
    _append_only_down()
    op.execute("ALTER TABLE audit_entries DROP COLUMN actor_user_id")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("jurisdiction")

    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_index("ix_verifications_serial_at")
        batch_op.drop_geospatial_index(
            "idx_verifications_location", postgresql_using="gist", column_name="location"
        )
    op.drop_geospatial_table("verifications")
    op.drop_table("users")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_log_at"))
    op.drop_table("access_log")


def _append_only_up() -> None:
    """The access log is append-only, like the audit trail (refuse_change() is from 0003)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log "
            "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER access_log_no_{verb.lower()} BEFORE {verb} ON access_log "
            "BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END"
        )


def _append_only_down() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS access_log_append_only ON access_log")
        return
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS access_log_no_{verb}")
