"""The migrations build the same schema on both databases and revert it completely."""

import json
import os
import uuid

import pytest
import sqlalchemy as sa

from app import migrate
from app.db import Base, create_engine

# Each test builds a database from nothing and takes it down again: seconds each.
pytestmark = pytest.mark.slow

SPATIAL = {
    "merchants": "location",
    "logistics_companies": "location",
    "couriers": "location",
    "batches": "origin",
    "parcels": "consignee",
    "events": "location",
    "anomalies": "location",
}


@pytest.fixture
def empty_database_url(tmp_path):
    """A fresh empty database on the engine under test."""
    server = os.environ.get("TEST_DATABASE_URL", "")
    if not server:
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"trace_migrations_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def spatial_indexes(engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.execute(
                sa.text("SELECT tablename FROM pg_indexes WHERE indexdef LIKE '%USING gist%'")
            )
        else:
            rows = conn.execute(
                sa.text("SELECT f_table_name FROM geometry_columns WHERE spatial_index_enabled = 1")
            )
        return {r[0] for r in rows}


def test_upgrade_from_empty_creates_every_table_and_spatial_index(empty_database_url):
    """Does `db upgrade` on an empty database create all tables and spatial indexes?"""
    migrate.upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    assert set(Base.metadata.tables) <= set(sa.inspect(engine).get_table_names())
    assert set(SPATIAL) <= spatial_indexes(engine)
    engine.dispose()


def test_downgrade_to_base_leaves_nothing_of_ours(empty_database_url):
    """Does `db downgrade base` remove every table, spatial column and index again?"""
    migrate.upgrade(empty_database_url)
    migrate.downgrade(empty_database_url, "base")
    engine = create_engine(empty_database_url)
    names = set(sa.inspect(engine).get_table_names())
    assert not set(Base.metadata.tables) & names
    assert not any(n.startswith("idx_") for n in names)
    assert not set(SPATIAL) & spatial_indexes(engine)
    engine.dispose()


def test_schema_matches_the_models(empty_database_url):
    """Is there nothing in the models that the migrations forgot (autogenerate finds no diff)?"""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import migrations.env_include as env_include

    migrate.upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": env_include.include_object, "compare_type": False}
        )
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


@pytest.mark.parametrize("table", ["audit_entries", "credit_records"])
def test_audit_trail_and_credit_records_cannot_be_edited(empty_database_url, table):
    """Does the database itself refuse to change or delete an audit entry or credit record?"""
    migrate.upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    row = {
        "audit_entries": "INSERT INTO audit_entries (actor_role, action, target_type, "
        "target_id, reason, at) VALUES ('regulator', 'confirm', 'anomaly', "
        "'1', 'seen', '2026-11-22T00:00:00+00:00')",
        "credit_records": "INSERT INTO credit_records (party_type, party_id, kind, points, "
        "reason, effective_at, created_at) VALUES ('merchant', 1, "
        "'sanction', -150, 'x', '2026-11-22T00:00:00+00:00', "
        "'2026-11-22T00:00:00+00:00')",
    }[table]
    with engine.begin() as conn:
        conn.execute(sa.text(row))
    for change in (f"UPDATE {table} SET reason = 'edited'", f"DELETE FROM {table}"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(change))
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT reason FROM {table}")).scalar() != "edited"
    engine.dispose()


def test_each_clients_first_check_of_a_code_is_marked_on_upgrade(empty_database_url):
    """Checks made before the first checks were marked: the upgrade marks the earliest check
    of each client and code, so that counting marked checks counts distinct clients."""
    migrate.upgrade(empty_database_url, "0005")
    engine = create_engine(empty_database_url)
    with engine.connect() as conn:
        # Checks alone, without the codes, batches and parties they refer to.
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SET session_replication_role = replica"))
        else:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        for serial, client in (("A", "c1"), ("A", "c1"), ("A", "c2"), ("B", "c1"), ("A", "c2")):
            conn.execute(
                sa.text(
                    "INSERT INTO verifications (serial, client_hash, verified_at) "
                    "VALUES (:serial, :client, '2026-11-22T00:00:00+00:00')"
                ),
                {"serial": serial, "client": client},
            )
        conn.commit()
    engine.dispose()
    migrate.upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.connect() as conn:
        flags = conn.scalars(sa.text("SELECT new_client FROM verifications ORDER BY id")).all()
    engine.dispose()
    assert [bool(f) for f in flags] == [True, False, True, True, False]


def test_existing_rejected_payloads_are_masked_and_their_subjects_filled_on_upgrade(
    empty_database_url,
):
    """Rejected events stored before issue 18 kept payloads verbatim: does the upgrade keep
    only what the service keeps now (no consignee name or phone, the point to two decimals,
    unreadable text masked), fill the serial and waybill, and does the downgrade run?"""
    migrate.upgrade(empty_database_url, "0007")
    engine = create_engine(empty_database_url)
    packing = {
        "event_id": "0b6f8c2e-8d0a-4b7e-9c59-2f1f0f8f6a11",
        "type": "packed",
        "waybill": "sf7700000001",
        "codes": ["AAAAAAAAAAAAAAAA"],
        "data": {
            "consignee": {"name": "王小明", "phone": "13912345678", "lat": 31.781234, "lon": 1.0},
            "consignee_region_code": "320411",
        },
    }
    scan = {"type": "shelved", "code": "https://id.example.cn/01/09506000134352/21/Q7X", "n": 1}
    payloads = [json.dumps(packing, ensure_ascii=False), json.dumps(scan), '{"phone": "139123']
    with engine.begin() as conn:
        for payload in payloads:
            conn.execute(
                sa.text(
                    "INSERT INTO rejected_events (device_id, reason, message, payload, "
                    "received_at) VALUES ('D', 'invalid_field', 'm', :p, "
                    "'2026-11-22T00:00:00+00:00')"
                ),
                {"p": payload},
            )
    engine.dispose()
    migrate.upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT payload, serial, waybill FROM rejected_events ORDER BY id")
        ).all()
    engine.dispose()
    kept = json.loads(rows[0].payload)
    assert "王小明" not in rows[0].payload and "13912345678" not in rows[0].payload
    assert kept["data"]["consignee"] == {"lat": 31.78, "lon": 1.0}
    assert (rows[0].serial, rows[0].waybill) == (None, "SF7700000001")
    assert json.loads(rows[1].payload) == {"type": "shelved", "code": scan["code"]}
    assert (rows[1].serial, rows[1].waybill) == ("Q7X", None)
    assert rows[2].payload == '{"phone": "######' and rows[2].serial is None
    migrate.downgrade(empty_database_url, "0007")


def test_searched_numbers_in_the_access_log_are_masked_on_upgrade(empty_database_url, monkeypatch):
    """Search terms logged before issue 15 kept a courier's phone or ID number in clear: does
    the upgrade mask them with their keyed hash (and a name that found a courier), mark them
    personal, record the rewrite, leave the log append-only, and does the downgrade run?"""
    from tracecore.identity import keyed_hash

    monkeypatch.setenv("SECRET_KEY", "migration-secret")
    migrate.upgrade(empty_database_url, "0015")
    engine = create_engine(empty_database_url)
    lines = [
        ("search", "13800000001", False),
        ("search", "320402199001011237", False),
        ("search", "欧阳", True),  # listed a courier: a name
        ("search", "SF1234567890", False),
        ("code", "13800000001", True),  # not a search: left alone
    ]
    with engine.begin() as conn:
        for target_type, target_id, personal in lines:
            conn.execute(
                sa.text(
                    "INSERT INTO access_log (at, actor_role, action, target_type, target_id, "
                    "personal_data, detail) VALUES ('2026-12-01T21:12:00+00:00', 'regulator', "
                    "'view', :t, :i, :p, '')"
                ),
                {"t": target_type, "i": target_id, "p": personal},
            )
    engine.dispose()
    migrate.upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT target_id, personal_data, detail, action FROM access_log ORDER BY id")
        ).all()
    assert [(r.target_id, bool(r.personal_data)) for r in rows[:5]] == [
        ("138****0001", True),
        ("320402********1237", True),
        ("欧*", True),
        ("SF1234567890", False),
        ("13800000001", True),
    ]
    assert rows[0].detail == "phone:" + keyed_hash("migration-secret", "13800000001")
    assert rows[1].detail == "id_number:" + keyed_hash("migration-secret", "320402199001011237")
    assert (rows[5].action, rows[5].target_id) == ("rewrite", "0016")
    assert rows[5].detail.startswith("3 search terms")
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text("UPDATE access_log SET detail = 'edited'"))
    engine.dispose()
    migrate.downgrade(empty_database_url, "0015")


def _captured(conn, key: int, type_: str, action: str | None, roles: tuple[str, ...]) -> None:
    """A captured event (with its ID and one EPC in ``roles``), as raw rows."""
    conn.execute(
        sa.text(
            "INSERT INTO captured_events (id, digest, job_id, system, party_type, party_id, "
            "type, action, event_time, record_time, body) VALUES (:id, :d, 1, 'ERP', "
            "'merchant', 1, :t, :a, '2026-12-01T00:00:00+00:00', '2026-12-01T00:00:00+00:00', "
            "'{}')"
        ),
        {"id": key, "d": f"{key:064x}", "t": type_, "a": action},
    )
    conn.execute(
        sa.text(
            "INSERT INTO epcis_event_ids (digest, source, ref_id) VALUES (:d, 'captured', :id)"
        ),
        {"id": key, "d": f"{key:064x}"},
    )
    for role in roles:
        conn.execute(
            sa.text(
                "INSERT INTO captured_event_epcs (captured_event_id, epc, role) "
                "VALUES (:id, 'https://id.gs1.org/01/04012345123456/21/7', :role)"
            ),
            {"id": key, "role": role},
        )


def test_captured_events_survive_0024_and_transformations_go_on_its_downgrade(
    empty_database_url,
):
    """Revision 0024 lets a captured event name one EPC as an input and as an output, and
    rebuilds the captured tables on SQLite: are the events captured before kept (their
    identifiers too); does its downgrade remove the captured transformations (the older
    schema cannot hold them) and keep the rest; and does it upgrade again? (Party 1 need not
    exist: party ids are not foreign keys.)"""
    migrate.upgrade(empty_database_url, "0023")
    engine = create_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_tokens (id, token_hash, role, party_id, label, outside_system, "
                "jurisdiction, created_at) VALUES (1, :h, 'merchant', 1, '', 'ERP', '', "
                "'2026-12-01T00:00:00+00:00')"
            ),
            {"h": "0" * 64},
        )
        conn.execute(
            sa.text(
                "INSERT INTO capture_jobs (id, capture_id, token_id, system, party_type, "
                "party_id, error_behaviour, running, success, event_count, captured, "
                "duplicates, errors, created_at) VALUES (1, 'c1', 1, 'ERP', 'merchant', 1, "
                "'rollback', false, true, 2, 2, 0, '[]', '2026-12-01T00:00:00+00:00')"
            )
        )
        _captured(conn, 1, "ObjectEvent", "ADD", ("epc",))
    engine.dispose()
    migrate.upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.begin() as conn:
        assert conn.scalars(sa.text("SELECT role FROM captured_event_epcs")).all() == ["epc"]
        _captured(conn, 2, "TransformationEvent", None, ("input", "output", "output_class"))
    engine.dispose()
    migrate.downgrade(empty_database_url, "0023")
    engine = create_engine(empty_database_url)
    with engine.connect() as conn:
        assert conn.scalars(sa.text("SELECT type FROM captured_events")).all() == ["ObjectEvent"]
        assert conn.scalars(sa.text("SELECT role FROM captured_event_epcs")).all() == ["epc"]
        assert conn.scalars(sa.text("SELECT ref_id FROM epcis_event_ids")).all() == [1]
    engine.dispose()
    migrate.upgrade(empty_database_url)
