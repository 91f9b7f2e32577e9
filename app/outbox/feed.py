"""The webhook feed: what the use cases record, in their own transaction, for the deliverer
to send (a transactional outbox: a change and its feed row commit together, or neither).

Every payload is built here, one function per kind of thing, so that a change of format is
made in one place: :func:`credit_record_data` (a decision when taken; the credit exchange
items, public only after the response period, are read from the exchange API),
:func:`events_data` (EPCIS events, with the parcel events' courier status codes).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import is_postgresql, utcnow
from app.outbox.models import WebhookFeed
from tracecore.courier_status import courier_status

#: The writing transaction's id, as a number that only grows (xid8, PostgreSQL 13+).
_PG_XID = sa.text("CAST(CAST(pg_current_xact_id() AS text) AS bigint)")


def record(
    session: Session,
    topic: str,
    kind: str,
    data: dict,
    *,
    party: tuple[str, int] | None = None,
    region_code: str | None = None,
    batch_id: int | None = None,
    merchant_id: int | None = None,
) -> None:
    """Add a feed row in the session's transaction (no flush needed: it is an insert)."""
    session.execute(
        sa.insert(WebhookFeed).values(
            xid=_PG_XID if is_postgresql(session) else 0,
            topic=topic,
            kind=kind,
            party_type=party[0] if party else None,
            party_id=party[1] if party else None,
            region_code=region_code,
            batch_id=batch_id,
            merchant_id=merchant_id,
            data=data,
            created_at=utcnow(),
        )
    )


def rfc3339(moment: datetime | None) -> str | None:
    """A stored (UTC) time as RFC 3339, or None."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


# -- payloads ---------------------------------------------------------------------------------


def anomaly_data(anomaly) -> dict:
    """A finding as subscribers see it: what, about which subject and party, and its status;
    never its evidence (which may hold personal data)."""
    return {
        "anomaly_id": anomaly.id,
        "type": anomaly.type,
        "severity": anomaly.severity,
        "status": anomaly.status,
        "subject": {"type": anomaly.subject_type, "id": anomaly.subject},
        "party": {"type": anomaly.party_type, "id": anomaly.party_id},
        "region_code": anomaly.region_code,
        "detected_at": rfc3339(anomaly.detected_at),
        "decided_at": rfc3339(anomaly.decided_at),
        "final_at": rfc3339(anomaly.final_at),
        "withdrawn_at": rfc3339(anomaly.withdrawn_at),
    }


def record_anomaly(session: Session, topic: str, anomaly) -> None:
    """A finding found (``finding``) or decided (``decision``): one feed row."""
    record(
        session,
        topic,
        f"finding.{anomaly.status}",
        anomaly_data(anomaly),
        party=(anomaly.party_type, anomaly.party_id),
        region_code=anomaly.region_code,
        merchant_id=anomaly.party_id if anomaly.party_type == "merchant" else None,
    )


def credit_record_data(session: Session, credit_record, party: dict) -> dict:
    """A regulator's credit record (sanction, commendation) when it is decided, with the
    moment it counts publicly (``public_from``); its credit exchange item
    (app/credit/exchange.py) is public only from then, and read from the exchange API."""
    return {
        "record_id": credit_record.id,
        "kind": credit_record.kind,
        "points": credit_record.points,
        "reason": credit_record.reason,
        "party": party,
        "effective_at": rfc3339(credit_record.effective_at),
        "public_from": rfc3339(credit_record.public_from),
    }


def list_entry_data(entry, party: dict, *, left: bool) -> dict:
    """A party entering or leaving the red or black list."""
    return {
        "list": entry.list,
        "party": party,
        "at": rfc3339(entry.left_at if left else entry.entered_at),
        "because": entry.left_because if left else entry.entered_because,
    }


def recall_data(batch, product) -> dict:
    """A batch recalled: which product and lot, when and why."""
    return {
        "batch_id": batch.id,
        "gtin": product.gtin,
        "product": product.name,
        "lot": batch.lot,
        "merchant_id": product.merchant_id,
        "recalled_at": rfc3339(batch.recalled_at),
        "reason": batch.recall_reason,
    }


def events_data(found: list[tuple[dict, str | None]]) -> dict:
    """An ``events`` delivery: the events as EPCIS 2.0 JSON (each with its CBV hash eventID,
    untouched: an added field would change what the ID hashes), and beside them, by eventID,
    each parcel event's courier status codes (Kuaidi100 ``state``, AfterShip tag and subtag:
    docs/courier-status.md), so a platform that speaks either needs no mapping of its own.
    ``found``: each event with its parcel event type, or None for a unit's event."""
    statuses = {}
    for event, parcel_type in found:
        status = courier_status(parcel_type) if parcel_type else None
        if status is not None:
            statuses[event["eventID"]] = status.as_json()
    return {"events": [event for event, _ in found], "courierStatus": statuses}


def record_events(session: Session, rows: list[dict]) -> None:
    """One feed row for a batch of stored events (not one per event and subscriber): the
    deliverer reads the events themselves and sends each subscriber those it may see."""
    if rows:
        record(session, "events", "events", {"event_ids": [r["event_id"] for r in rows]})


def horizon(session: Session) -> int | None:
    """The feed rows every reader may take now: on PostgreSQL those of transactions with an
    id below the oldest one still running (every transaction below it has ended, so no row
    of a lower xid can commit later); None on SQLite, which writes one transaction at a time
    (row ids there are in commit order)."""
    if not is_postgresql(session):
        return None
    return session.scalar(
        sa.text("SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)")
    )


def end(session: Session) -> tuple[int, int]:
    """A cursor at the end of the feed: what a new subscription starts from (the rows of
    transactions still running are after it)."""
    top = horizon(session)
    if top is None:
        return 0, session.scalar(sa.select(sa.func.coalesce(sa.func.max(WebhookFeed.id), 0)))
    return top - 1, 2**62
