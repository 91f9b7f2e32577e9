"""Where each EPCIS event ID we gave out comes from, so ``GET /epcis/events/{eventID}`` finds it.

An event ID is a hash of the event's content (CBV 2.0): it cannot be read back, so every ID
the service emits is recorded here as it goes out. An ID never emitted is not found."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class EpcisEventId(Base):
    """One emitted EPCIS event ID and the row it was made from."""

    __tablename__ = "epcis_event_ids"

    #: The SHA-256 of the event's pre-hash string, hex (the ID is ni:///sha-256;<digest>?ver=CBV2.0).
    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    #: event (a device's event, events.id), issuance (codes issued: commissioning, issuances.id)
    #: or recall (a batch's recall, batches.id)
    source: Mapped[str] = mapped_column(sa.String(16))
    ref_id: Mapped[int] = mapped_column(sa.BigInteger)
