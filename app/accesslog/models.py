"""The access log's table: who looked at, exported or changed what."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class AccessEntry(Base):
    """Who looked at, exported or changed what, through the workspace or the API, and
    whether personal data was shown. Append-only (the database refuses edits); admins read it.
    """

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_role: Mapped[str] = mapped_column(sa.String(16))
    actor_user_id: Mapped[int | None]
    actor_token_id: Mapped[int | None]
    #: view | export | change | sign_in | sign_in_failed | sign_out
    action: Mapped[str] = mapped_column(sa.String(20))
    target_type: Mapped[str] = mapped_column(sa.String(20))
    target_id: Mapped[str] = mapped_column(sa.String(64))
    #: True when the answer showed personal data unmasked.
    personal_data: Mapped[bool] = mapped_column(default=False)
    detail: Mapped[str] = mapped_column(sa.String(300), default="")
