"""API tokens: bearer credentials, each with one role and, for parties, the party it acts for."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow
from app.parties.models import _enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    REGULATOR = "regulator"
    MERCHANT = "merchant"  #: bound to one merchant
    LOGISTICS = "logistics"  #: bound to one logistics company


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    #: The merchant or logistics company the token acts for (null for admin, regulator).
    party_id: Mapped[int | None]
    label: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
