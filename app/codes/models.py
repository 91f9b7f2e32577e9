"""Trace codes: one per unit, identified by an unguessable serial (GS1 AI 21)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.catalog.models import Batch
from app.db import Base, UTCDateTime, utcnow
from tracecore.vocabulary import UnitState

#: A unit's lifecycle state (see tracecore.lifecycle): the last lawful event, or issued.
CodeState = UnitState


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
    #: Derived from the unit's events; no CHECK constraint so the bulk load stays lean.
    state: Mapped[CodeState] = mapped_column(
        sa.Enum(
            CodeState,
            native_enum=False,
            create_constraint=False,
            length=24,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=CodeState.ISSUED,
    )

    batch: Mapped[Batch] = relationship()
