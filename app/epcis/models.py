"""Where each EPCIS event ID we gave out comes from, so ``GET /epcis/events/{eventID}`` finds it.

An event ID is a hash of the event's content (CBV 2.0): it cannot be read back, so every ID
the service emits is recorded here as it goes out. An ID never emitted is not found.

Capture (``POST /epcis/capture``): the jobs, the events captured and the identifiers they name.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class EpcisEventId(Base):
    """One emitted EPCIS event ID and the row it was made from."""

    __tablename__ = "epcis_event_ids"

    #: The SHA-256 of the event's pre-hash string, hex (the ID is ni:///sha-256;<digest>?ver=CBV2.0).
    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    #: event (a device's event, events.id), issuance (codes issued: commissioning, issuances.id)
    #: recall (a batch's recall, batches.id) or captured (an outside system's, captured_events.id)
    source: Mapped[str] = mapped_column(sa.String(16))
    ref_id: Mapped[int] = mapped_column(sa.BigInteger)


class CaptureJob(Base):
    """One ``POST /epcis/capture``: an outside system's EPCIS document and what became of it
    (the standard's capture job)."""

    __tablename__ = "capture_jobs"
    __table_args__ = (sa.Index("ix_capture_jobs_token_id", "token_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The job's public identifier (``/epcis/capture/{captureID}``), random.
    capture_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    token_id: Mapped[int] = mapped_column(sa.ForeignKey("api_tokens.id"))
    #: The outside system's name, as on its token when it captured.
    system: Mapped[str] = mapped_column(sa.String(100))
    #: The party the system acts for: merchant or logistics_company.
    party_type: Mapped[str] = mapped_column(sa.String(24))
    party_id: Mapped[int]
    #: rollback (all or nothing) or proceed (every valid event kept).
    error_behaviour: Mapped[str] = mapped_column(sa.String(8))
    running: Mapped[bool]
    success: Mapped[bool]
    #: Events in the document, captured, and skipped as already stored (same event hash).
    event_count: Mapped[int]
    captured: Mapped[int]
    duplicates: Mapped[int]
    #: The errors, each an EPCIS problem (RFC 7807) naming the event by its index.
    errors: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CapturedEvent(Base):
    """An EPCIS event an outside system captured, kept as it is served back. Never a device's
    event: it does not move custody, replay a lifecycle or raise or clear a finding."""

    __tablename__ = "captured_events"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    #: Its CBV 2.0 event hash (hex): its eventID, and what makes a resend a duplicate.
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("capture_jobs.id"), index=True)
    system: Mapped[str] = mapped_column(sa.String(100))
    party_type: Mapped[str] = mapped_column(sa.String(24))
    party_id: Mapped[int]
    #: ObjectEvent or AggregationEvent
    type: Mapped[str] = mapped_column(sa.String(24))
    action: Mapped[str] = mapped_column(sa.String(8))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the service captured it.
    record_time: Mapped[datetime] = mapped_column(UTCDateTime)
    #: A bare CBV word, or the URI the sender used.
    biz_step: Mapped[str | None] = mapped_column(sa.String(300))
    disposition: Mapped[str | None] = mapped_column(sa.String(300))
    read_point: Mapped[str | None] = mapped_column(sa.String(300))
    biz_location: Mapped[str | None] = mapped_column(sa.String(300))
    #: The event type of ours it reads as (tracecore.epcis.MAPPING backwards), if one fits.
    our_type: Mapped[str | None] = mapped_column(sa.String(24))
    #: The event's EPCIS JSON as served (eventID and recordTime included).
    body: Mapped[dict] = mapped_column(sa.JSON)


class CapturedEventEpc(Base):
    """An identifier a captured event names, and the trace code of ours it is, if any."""

    __tablename__ = "captured_event_epcs"

    captured_event_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("captured_events.id"),
        primary_key=True,
    )
    #: As served (GS1 keys as Digital Link URIs), or an outside identifier as sent.
    epc: Mapped[str] = mapped_column(sa.String(300), primary_key=True, index=True)
    #: epc (epcList, childEPCs), parent (parentID) or class (quantityList)
    role: Mapped[str] = mapped_column(sa.String(8))
    #: The trace code of ours it names; null for an outside identifier or a class.
    serial: Mapped[str | None] = mapped_column(sa.String(20), index=True)
