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
