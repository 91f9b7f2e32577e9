"""Devices in the field and the events they report: the online trace of every unit."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Point, UTCDateTime, enum_column, utcnow
from tracecore.vocabulary import DeviceKind, ParcelState

__all__ = [
    "PAYLOAD_KEEP",
    "CapturedEvent",
    "CapturedEventEpc",
    "Device",
    "DeviceKind",
    "Event",
    "Parcel",
    "ParcelItem",
    "ParkedEvent",
    "RejectedEvent",
    "RejectionTally",
    "SequenceGap",
]

#: How much of an offending message or event a :class:`RejectedEvent` keeps (4 KiB).
PAYLOAD_KEEP = 4096


class Device(Base):
    """A registered device. Its secret is derived, never stored: HMAC(SECRET_KEY, id, version),
    so a copy of the database lets nobody forge events."""

    __tablename__ = "devices"

    #: 16 base32 characters, safe in MQTT topics.
    id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    kind: Mapped[DeviceKind] = mapped_column(enum_column(DeviceKind, "device_kind"))
    #: merchant (scanners) or courier (handhelds)
    owner_type: Mapped[str] = mapped_column(sa.String(16))
    owner_id: Mapped[int]
    #: Raised to rotate the device's secret.
    secret_version: Mapped[int] = mapped_column(default=1)
    #: Highest sequence number received; gaps below it are in sequence_gaps.
    max_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the service last received a signed event from it (its clock or ours: ours).
    last_heard_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The latest event time (its own clock) it has delivered: what it recorded up to then
    #: has reached the service, gaps in its sequence numbers aside. The time-based rules
    #: judge a deadline only once the device holding the parcel has synced past it.
    synced_through: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Parcel(Base):
    """A parcel (waybill) packed by a merchant and carried by a logistics company."""

    __tablename__ = "parcels"
    __table_args__ = (sa.Index("ix_parcels_merchant_id_packed_at", "merchant_id", "packed_at"),)

    waybill: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(sa.ForeignKey("merchants.id"), index=True)
    logistics_company_id: Mapped[int] = mapped_column(
        sa.ForeignKey("logistics_companies.id"), index=True
    )
    #: Where it must be delivered. Personal data: shown only to regulators.
    consignee = mapped_column(Point(), nullable=False)
    consignee_region_code: Mapped[str] = mapped_column(sa.String(6))
    promised_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Derived from the parcel's events in time order.
    state: Mapped[str] = mapped_column(sa.String(24), default=ParcelState.PACKED)
    packed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ParcelItem(Base):
    __tablename__ = "parcel_items"

    waybill: Mapped[str] = mapped_column(sa.ForeignKey("parcels.waybill"), primary_key=True)
    serial: Mapped[str] = mapped_column(
        sa.ForeignKey("trace_codes.serial"), primary_key=True, index=True
    )


class Event(Base):
    """One accepted event: a unit event (code) or a parcel event (waybill)."""

    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_device_id_seq", "device_id", "seq"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    #: The device's UUID for the event; the idempotency key.
    event_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    device_id: Mapped[str] = mapped_column(sa.ForeignKey("devices.id"))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    type: Mapped[str] = mapped_column(sa.String(24))
    serial: Mapped[str | None] = mapped_column(sa.ForeignKey("trace_codes.serial"), index=True)
    waybill: Mapped[str | None] = mapped_column(sa.ForeignKey("parcels.waybill"), index=True)
    #: When it happened, by the device's clock (stored in UTC).
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The device's UTC offset in minutes, to show local time as the device saw it.
    utc_offset_min: Mapped[int] = mapped_column(sa.SmallInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location = mapped_column(Point(), nullable=True)
    accuracy_m: Mapped[float | None]
    #: The reporting party: the device's owner (merchant or courier).
    party_type: Mapped[str] = mapped_column(sa.String(16))
    party_id: Mapped[int]
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    #: Why the lifecycle does not allow this event (null when lawful). Kept as evidence.
    violation: Mapped[str | None] = mapped_column(sa.String(120))
    #: Accepted but to be read with care, e.g. black_listed_courier.
    flag: Mapped[str | None] = mapped_column(sa.String(40))


class ParkedEvent(Base):
    """A parcel event whose waybill is not packed yet: its courier's scan overtook the shop's
    (devices send on their own connections, in no order between them). Kept, signature
    checked, and applied when the packing arrives; the sweep rejects it if that never comes."""

    __tablename__ = "parked_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    device_id: Mapped[str] = mapped_column(sa.ForeignKey("devices.id"))
    waybill: Mapped[str] = mapped_column(sa.String(32), index=True)
    #: The event exactly as the device sent it (signature included), to be applied later.
    payload: Mapped[str] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RejectedEvent(Base):
    """Something a registered device sent that was not stored as a fact, and why (a regulator
    reads it). What unknown senders send is counted in :class:`RejectionTally` instead."""

    __tablename__ = "rejected_events"
    __table_args__ = (
        sa.Index("ix_rejected_events_device_id_received_at", "device_id", "received_at"),
        # A unit's or parcel's newest rejected events (the pages read 50, newest first): the
        # index serves the filter and the order, so no plan prefers the primary key.
        sa.Index("ix_rejected_events_serial", "serial", "id"),
        sa.Index("ix_rejected_events_waybill", "waybill", "id"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    #: As claimed by the sender (a registered device's id, or an internal error's claim).
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    event_id: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str] = mapped_column(sa.String(300))
    #: The offending event (or message) as devices/redaction.py keeps it: the protocol's
    #: fields, no personal data, cut to 4 KiB.
    payload: Mapped[str] = mapped_column(sa.Text)
    #: The unit and the parcel the event names (valid ones only), for the pages' lookups.
    serial: Mapped[str | None] = mapped_column(sa.String(20))
    waybill: Mapped[str | None] = mapped_column(sa.String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RejectionTally(Base):
    """Rejections counted, not kept one row each: what unregistered senders send (anyone can
    send it, unauthenticated), and what a registered device sends beyond its rows' cap, per
    hour, sender and reason, with the first one kept as a sample (app/events/rejections.py)."""

    __tablename__ = "rejection_tallies"
    __table_args__ = (
        sa.UniqueConstraint(
            "window_start",
            "address",
            "device_id",
            "reason",
            name="uq_rejection_tallies_window_start",
        ),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    #: The hour counted (UTC).
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The client's address over HTTP; empty over MQTT (the broker authenticated the client);
    #: ``*`` for the senders beyond an hour's cap of tallies.
    address: Mapped[str] = mapped_column(sa.String(64))
    #: The device id as claimed (``*`` beyond the cap).
    device_id: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.String(32))
    count: Mapped[int] = mapped_column(sa.BigInteger)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: The first rejection's message and what is kept of it (cut to 1 KiB).
    message: Mapped[str] = mapped_column(sa.String(300))
    sample: Mapped[str] = mapped_column(sa.Text)


class SequenceGap(Base):
    """Events a device numbered but the service never received (seq first..last)."""

    __tablename__ = "sequence_gaps"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(sa.ForeignKey("devices.id"), index=True)
    first_seq: Mapped[int] = mapped_column(sa.BigInteger)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the device was asked to resend from first_seq.
    resend_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
    #: ObjectEvent, AggregationEvent or TransformationEvent
    type: Mapped[str] = mapped_column(sa.String(24))
    #: None for a TransformationEvent (it has no action)
    action: Mapped[str | None] = mapped_column(sa.String(8))
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
    #: A TransformationEvent's transformationID, as sent (EQ_transformationID).
    transformation_id: Mapped[str | None] = mapped_column(sa.String(300), index=True)
    #: The event's EPCIS JSON as served (eventID and recordTime included).
    body: Mapped[dict] = mapped_column(sa.JSON)


class CapturedEventEpc(Base):
    """An identifier a captured event names in one role, and the trace code of ours it is, if
    any (a transformation may name one EPC both as an input and as an output)."""

    __tablename__ = "captured_event_epcs"

    captured_event_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("captured_events.id"),
        primary_key=True,
    )
    #: As served (GS1 keys as Digital Link URIs), or an outside identifier as sent.
    epc: Mapped[str] = mapped_column(sa.String(300), primary_key=True, index=True)
    #: epc (epcList, childEPCs), parent (parentID), class (quantityList), or a
    #: transformation's input, output (inputEPCList, outputEPCList), input_class or
    #: output_class (inputQuantityList, outputQuantityList)
    role: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    #: The trace code of ours it names; null for an outside identifier or a class.
    serial: Mapped[str | None] = mapped_column(sa.String(20), index=True)
