"""Trace codes: one per unit, identified by an unguessable serial (GS1 AI 21)."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.catalog.models import Batch
from app.db import Base, UTCDateTime, utcnow
from app.parties.models import _enum


class CodeState(enum.StrEnum):
    ISSUED = "issued"


class Issuance(Base):
    """One call that issued ``count`` codes for a batch: who asked, when."""

    __tablename__ = "issuances"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("batches.id"), index=True)
    count: Mapped[int]
    #: The API token (or CLI operator, when null) that issued them.
    token_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_tokens.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TraceCode(Base):
    """A unit's identity. Kept lean (no surrogate key, no stored URI): issuance writes
    millions of these rows at bulk-load speed, and the URI derives from batch + serial."""

    __tablename__ = "trace_codes"

    #: GS1 AI (21) serial, globally unique, 80 bits from a CSPRNG.
    serial: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("batches.id"), index=True)
    issuance_id: Mapped[int] = mapped_column(sa.ForeignKey("issuances.id"))
    state: Mapped[CodeState] = mapped_column(
        _enum(CodeState, "code_state"), default=CodeState.ISSUED
    )

    batch: Mapped[Batch] = relationship()
