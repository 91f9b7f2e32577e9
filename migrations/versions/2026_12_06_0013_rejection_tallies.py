"""Rejections of unknown senders are tallied, rejected payloads keep no personal data, and a
rejected event's subject (serial, waybill) is an indexed column (issue 18, items 3 and 4).

- ``rejection_tallies``: counts per hour, client address, claimed device id and reason;
- ``rejected_events.serial`` and ``.waybill``, indexed, filled for the existing rows;
- ``rejected_events`` indexed by (device_id, received_at) instead of device_id alone (a
  device's rows in an hour are counted against its cap);
- the existing rows' payloads rewritten as the service now keeps them: the protocol's fields,
  of ``data`` only the stored keys, the consignee point to two decimals; what cannot be read
  as an event keeps only its masked start. Rejected events are not append-only (no trigger,
  nothing refers to them); this is their one sanctioned rewrite, and the downgrade cannot
  bring back what it dropped.

The rewrite is frozen here as devices/redaction.py had it on 2026-12-06: a migration must do
tomorrow what it did today, whatever that module becomes.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-06 10:00:00
"""

import json
import re

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None

#: Rows rewritten per statement.
CHUNK = 1000


def upgrade() -> None:
    op.create_table(
        "rejection_tallies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("sample", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejection_tallies")),
        sa.UniqueConstraint(
            "window_start",
            "address",
            "device_id",
            "reason",
            name="uq_rejection_tallies_window_start",
        ),
    )
    op.create_index(
        "ix_rejection_tallies_last_seen_at", "rejection_tallies", ["last_seen_at"], unique=False
    )
    # In place on both databases (nullable columns, plain indexes): no table rebuild.
    op.add_column("rejected_events", sa.Column("serial", sa.String(length=20), nullable=True))
    op.add_column("rejected_events", sa.Column("waybill", sa.String(length=32), nullable=True))
    op.create_index("ix_rejected_events_serial", "rejected_events", ["serial", "id"])
    op.create_index("ix_rejected_events_waybill", "rejected_events", ["waybill", "id"])
    op.drop_index("ix_rejected_events_device_id", table_name="rejected_events")
    op.create_index(
        "ix_rejected_events_device_id_received_at",
        "rejected_events",
        ["device_id", "received_at"],
    )
    _rewrite_payloads(op.get_bind())


def downgrade() -> None:
    # The payloads stay as rewritten: what the upgrade dropped is gone.
    op.drop_index("ix_rejected_events_device_id_received_at", table_name="rejected_events")
    op.create_index("ix_rejected_events_device_id", "rejected_events", ["device_id"])
    op.drop_index("ix_rejected_events_waybill", table_name="rejected_events")
    op.drop_index("ix_rejected_events_serial", table_name="rejected_events")
    with op.batch_alter_table("rejected_events") as batch:
        batch.drop_column("waybill")
        batch.drop_column("serial")
    op.drop_index("ix_rejection_tallies_last_seen_at", table_name="rejection_tallies")
    op.drop_table("rejection_tallies")


def _rewrite_payloads(conn) -> None:
    table = sa.table(
        "rejected_events",
        sa.column("id"),
        sa.column("payload"),
        sa.column("serial"),
        sa.column("waybill"),
    )
    update = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("row_id"))
        .values(
            payload=sa.bindparam("new_payload"),
            serial=sa.bindparam("new_serial"),
            waybill=sa.bindparam("new_waybill"),
        )
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(table.c.id, table.c.payload)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        changes = []
        for row_id, payload in rows:
            kept, serial, waybill = _kept(payload)
            changes.append(
                {
                    "row_id": row_id,
                    "new_payload": kept,
                    "new_serial": serial,
                    "new_waybill": waybill,
                }
            )
        conn.execute(update, changes)
        last = rows[-1][0]


# -- devices/redaction.py, frozen ---------------------------------------------------------------

_FIELDS = (
    "event_id",
    "seq",
    "type",
    "time",
    "code",
    "codes",
    "waybill",
    "lat",
    "lon",
    "accuracy_m",
    "data",
    "sig",
)
_STORED = {
    "sold": ("order_id", "price", "channel"),
    "packed": ("consignee_region_code", "promised_by", "logistics_company_id"),
    "delivery_failed": ("reason",),
    "signed": ("signer",),
}
_WAYBILL = re.compile(r"[A-Z0-9]{8,32}")
#: A bare serial (GS1 AI 21, character set 82) or the serial of a Digital Link's /21/.
_SERIAL = re.compile(r"[!\"%-?A-Z_a-z]{1,20}")
_LINK_SERIAL = re.compile(r"/21/([^/?#]{1,20})(?:[?#].*)?$")


def _kept(text: str) -> tuple[str, str | None, str | None]:
    """(payload as kept, serial, waybill) of an existing row's payload."""
    try:
        value = json.loads(text)
    except ValueError:
        return _masked(text), None, None
    if isinstance(value, dict) and isinstance(value.get("events"), list):
        events = value["events"][:20]
        return '{"events":[' + ",".join(_event(e) for e in events) + "]}", None, None
    if not isinstance(value, dict):
        return _masked(text), None, None
    return _event(value)[:4096], *_subject(value)


def _event(raw) -> str:
    if not isinstance(raw, dict):
        return _masked(json.dumps(raw, ensure_ascii=False))
    kept = {}
    for key in _FIELDS:
        if key not in raw:
            continue
        if key == "data":
            data = raw["data"]
            if isinstance(data, dict):
                kind = raw.get("type")
                keys = _STORED.get(kind, ()) if isinstance(kind, str) else ()
                out = {k: _scalar(data[k]) for k in keys if k in data}
                consignee = data.get("consignee")
                if kind == "packed" and isinstance(consignee, dict):
                    out["consignee"] = {
                        k: round(consignee[k], 2)
                        if isinstance(consignee[k], float)
                        else _scalar(consignee[k])
                        for k in ("lat", "lon")
                        if k in consignee
                    }
                kept["data"] = out
            else:
                kept["data"] = _scalar(data)
        elif key == "codes" and isinstance(raw["codes"], list):
            kept["codes"] = [_scalar(c) for c in raw["codes"][:20]]
            if len(raw["codes"]) > 20:
                kept["codes_total"] = len(raw["codes"])
        else:
            kept[key] = _scalar(raw[key])
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))


def _scalar(value):
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value[:256]
    return "<object>" if isinstance(value, dict) else "<array>" if isinstance(value, list) else "?"


def _masked(text: str) -> str:
    start = text[:80]
    masked = "".join("#" if c.isdigit() else c if " " <= c <= "~" else "*" for c in start)
    return masked + ("…" if len(text) > 80 else "")


def _subject(raw: dict) -> tuple[str | None, str | None]:
    serial = None
    code = raw.get("code")
    if isinstance(code, str):
        code = code.strip()
        link = _LINK_SERIAL.search(code) if "/" in code else None
        candidate = link.group(1) if link else None if "/" in code else code
        if candidate and _SERIAL.fullmatch(candidate):
            serial = candidate
    waybill = raw.get("waybill")
    waybill = waybill.strip().upper() if isinstance(waybill, str) else None
    return serial, waybill if waybill and _WAYBILL.fullmatch(waybill) else None
