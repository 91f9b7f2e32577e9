"""API tokens: bearer credentials, each with one role and, for parties, the party it acts for."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, enum_column, utcnow
from tracecore.access import Role


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    role: Mapped[Role] = mapped_column(enum_column(Role, "role"))
    #: The merchant or logistics company the token acts for (null for admin, regulator).
    party_id: Mapped[int | None]
    label: Mapped[str] = mapped_column(sa.String(100), default="")
    #: The outside traceability system the token is for (its name, shown beside what it
    #: captured): such a token may only capture EPCIS events for its party and read its own
    #: capture jobs (app/epcis/capture.py). Null for every other token.
    outside_system: Mapped[str | None] = mapped_column(sa.String(100))
    #: Comma-separated region-code prefixes a regulator's token acts in; "" means nationwide.
    jurisdiction: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class User(Base):
    """A person who signs in to the workspace (regulators, admins, merchants' staff).

    The password is kept only as a salted scrypt hash (werkzeug.security); ``jurisdiction``
    is the set of GB/T 2260 region-code prefixes a regulator acts in (empty: the whole
    country, for national regulators and admins).
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(enum_column(Role, "role"))
    party_id: Mapped[int | None]
    #: Comma-separated region-code prefixes (2, 4 or 6 digits); "" means nationwide.
    jurisdiction: Mapped[str] = mapped_column(sa.String(200), default="")
    display_name: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A workspace session is valid only while it carries this number: signing out (or a
    #: password change, or an admin's revocation) adds one, ending every session of the user.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
