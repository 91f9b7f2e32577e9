"""Credit accounts and what feeds them: records, audit entries, commitments, and the
anomalies (findings) and appeals that credit records come from. The anomaly use cases
(detect, findings, decisions, sweep) are in :mod:`app.anomalies`; they write here, and
credit scoring reads an anomaly's status."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Point, UTCDateTime, utcnow


class CreditRecord(Base):
    """One entry of a party's credit account. Append-only: a dismissed anomaly's points are
    taken back by a reversal record with the same effective time, never by an edit."""

    __tablename__ = "credit_records"
    __table_args__ = (sa.Index("ix_credit_records_party", "party_type", "party_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    party_type: Mapped[str] = mapped_column(sa.String(20))
    party_id: Mapped[int]
    #: anomaly | reversal | complaint | sanction | commendation | commitment | inspection | rating
    kind: Mapped[str] = mapped_column(sa.String(16))
    points: Mapped[int]
    reason: Mapped[str] = mapped_column(sa.String(300))
    anomaly_id: Mapped[int | None] = mapped_column(sa.ForeignKey("anomalies.id"), index=True)
    #: For anomalies: severity, and whether a regulator has confirmed it.
    severity: Mapped[str | None] = mapped_column(sa.String(8))
    #: When the record takes effect; its weight fades from here (credit repair).
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the record starts to count publicly: a sanction at the end of the party's
    #: response period (an appeal filed within it holds it longer), other regulators' and
    #: parties' records at once. Null for an anomaly's record (its anomaly's ``final_at``
    #: and appeals decide) and for a reversal (never scored).
    public_from: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who decided what, when and why. The database refuses updates and deletes."""

    __tablename__ = "audit_entries"
    #: A finding's decisions, read for each row of the queue and its CSV.
    __table_args__ = (sa.Index("ix_audit_entries_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_role: Mapped[str] = mapped_column(sa.String(16))
    actor_token_id: Mapped[int | None]
    actor_user_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(sa.String(40))
    target_type: Mapped[str] = mapped_column(sa.String(20))
    target_id: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.String(1000))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Commitment(Base):
    """A signed credit commitment (信用承诺), shown publicly."""

    __tablename__ = "commitments"
    __table_args__ = (sa.UniqueConstraint("party_type", "party_id", name="uq_commitments_party"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    party_type: Mapped[str] = mapped_column(sa.String(20))
    party_id: Mapped[int]
    #: Version of the standard commitment text that was signed.
    text_version: Mapped[str] = mapped_column(sa.String(16))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Anomaly(Base):
    """A finding of one rule about one subject, against one responsible party.

    Starts ``open`` (its credit record provisional); a regulator confirms or dismisses it.
    One ongoing anomaly per rule, subject and party: the unique key deduplicates findings.
    """

    __tablename__ = "anomalies"
    __table_args__ = (
        sa.UniqueConstraint(
            "type", "subject_type", "subject", "party_type", "party_id", name="uq_anomalies_finding"
        ),
        sa.Index("ix_anomalies_party", "party_type", "party_id"),
        # A code's or parcel's anomalies (its history, the consumer's scan); the unique key
        # above leads with the type and cannot serve them.
        sa.Index("ix_anomalies_subject", "subject_type", "subject"),
        sa.Index("ix_anomalies_status_detected_at", "status", "detected_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(32), index=True)
    severity: Mapped[str] = mapped_column(sa.String(8))
    #: open | confirmed | dismissed | withdrawn (the evidence no longer holds: automatic)
    status: Mapped[str] = mapped_column(sa.String(12), default="open")
    #: code | waybill | batch | merchant
    subject_type: Mapped[str] = mapped_column(sa.String(12))
    subject: Mapped[str] = mapped_column(sa.String(64))
    party_type: Mapped[str] = mapped_column(sa.String(20))
    party_id: Mapped[int]
    #: GB/T 2260 code of the responsible party, for regulators' jurisdiction.
    region_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    #: Where it happened (the evidence's place), for map and spatial filters.
    location = mapped_column(Point(), nullable=True)
    evidence: Mapped[dict] = mapped_column(sa.JSON)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: For a confirmed anomaly: the end of the party's response period, from which its
    #: credit record counts publicly (an appeal filed before then holds it until decided).
    final_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When later evidence cleared an open finding (status ``withdrawn``).
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Why: {"reason": text, "event_ids": the events that cleared it}.
    withdrawal: Mapped[dict | None] = mapped_column(sa.JSON)
    #: When later evidence contradicted a confirmed finding: flagged for a regulator's
    #: review, never undone by the machine.
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: {"reason": text, "event_ids": the contradicting events}.
    review_flag: Mapped[dict | None] = mapped_column(sa.JSON)


class Appeal(Base):
    """The responsible party's appeal of an anomaly or of a sanction, with its statement; a
    regulator upholds it (the anomaly is dismissed, the sanction reversed) or rejects it."""

    __tablename__ = "appeals"
    __table_args__ = (
        sa.CheckConstraint("(anomaly_id IS NULL) <> (record_id IS NULL)", name="anomaly_or_record"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    anomaly_id: Mapped[int | None] = mapped_column(sa.ForeignKey("anomalies.id"), index=True)
    #: A sanction appealed (a credit record), when the appeal is not of an anomaly.
    record_id: Mapped[int | None] = mapped_column(sa.ForeignKey("credit_records.id"), index=True)
    statement: Mapped[str] = mapped_column(sa.String(2000))
    #: pending | upheld | rejected
    status: Mapped[str] = mapped_column(sa.String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ListEntry(Base):
    """A party's time on the red or black list (守信红名单, 失信黑名单): entered at a dated
    moment because of a decision (the record that became final, when one did), left at
    another. Kept up to date when a decision becomes final and by the periodic sweep; the
    public lists and notices are read from here."""

    __tablename__ = "list_entries"
    __table_args__ = (
        sa.Index("ix_list_entries_party", "party_type", "party_id"),
        sa.Index("ix_list_entries_list_left_at", "list", "left_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    party_type: Mapped[str] = mapped_column(sa.String(20))
    party_id: Mapped[int]
    #: red | black
    list: Mapped[str] = mapped_column(sa.String(5))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Why: the decision whose record made the change final, in words.
    entered_because: Mapped[str] = mapped_column(sa.String(300))
    #: The decided anomaly or the credit record (a sanction, commendation...) behind entering.
    anomaly_id: Mapped[int | None] = mapped_column(sa.ForeignKey("anomalies.id"))
    record_id: Mapped[int | None] = mapped_column(sa.ForeignKey("credit_records.id"))
    #: Null while the party is on the list.
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    left_because: Mapped[str | None] = mapped_column(sa.String(300))


class ExchangePush(Base):
    """A credit exchange item (app/credit/exchange.py) as last pushed to the webhooks: the
    sweep pushes an item once it is public, and again if its content changes (a list
    entry's item gains its end when the party leaves). A decision that can never be public
    (voided by an upheld appeal) is kept here without a hash: settled, so the sweep stops
    looking at it."""

    __tablename__ = "exchange_pushes"

    #: The item's id: ``record-{id}``, ``list-{id}-in``, ``list-{id}-out``.
    item_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    #: The pushed item's ``content_hash``; None: settled, never pushed.
    content_hash: Mapped[str | None] = mapped_column(sa.String(71))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
