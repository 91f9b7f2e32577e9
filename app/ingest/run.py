"""The ingest run: the one path every device event takes into the trace.

:func:`ingest` takes a batch of raw messages (from the MQTT worker or the HTTP endpoint),
stores what is a fact, rejects the rest with a reason, and answers one ack per event. All
lookups are done once per batch (devices, known event ids, codes, parcels), never per event,
and the caller commits: the MQTT worker acknowledges the messages to the broker only after
that commit, so a crash anywhere loses nothing and a redelivery is dropped as a duplicate.

The steps, in :meth:`_Batch.execute`: verify, drop duplicates, resolve codes, store, unpark,
replay (:mod:`app.events.replay`), judge (:mod:`app.anomalies.detect`), track sequence
numbers (:mod:`app.events.sequences`). The bulk writes are in :mod:`app.events.writers`.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.anomalies import detect
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.credit.operations import accounts as credit_accounts
from app.db import among, point
from app.events import rejections
from app.events.entrusted import judge_reports
from app.events.models import (
    PAYLOAD_KEEP,
    Device,
    Event,
    Parcel,
    ParcelItem,
    ParkedEvent,
)
from app.events.parking import parked_row, take_parked
from app.events.rejections import Caps, Rejection
from app.events.replay import Replayed, replay_subjects
from app.events.sequences import track_sequences
from app.events.writers import insert_events
from app.outbox import feed
from app.parties.models import LogisticsCompany
from devices import protocol
from devices.protocol import STORED_DATA_KEYS, Ack, DeviceEvent, Rejected
from tracecore import lifecycle
from tracecore.anomalies import Thresholds
from tracecore.credit import Policy
from tracecore.errors import ValidationError
from tracecore.gs1 import parse_digital_link, validate_serial
from tracecore.vocabulary import ALLOWED_BY_KIND, EventType

__all__ = ["PAYLOAD_KEEP", "Inbound", "IngestResult", "Limits", "ingest"]


class Inbound(NamedTuple):
    """One message as it arrived: the device it claims to come from, and its bytes."""

    device_id: str
    payload: bytes
    received_at: datetime
    #: The client's address over HTTP (its rejections are tallied by it); empty over MQTT.
    address: str = ""


@dataclass
class IngestResult:
    """What one :func:`ingest` call answers: the acks to publish, and commands to devices."""

    #: One list of acks per inbound message, in the order of its events.
    acks: list[list[Ack]]
    #: (device_id, command) to publish on the device's commands topic.
    commands: list[tuple[str, dict]] = field(default_factory=list)
    accepted: int = 0
    #: Per inbound message: did any of its events pass a registered device's signature?
    authenticated: list[bool] = field(default_factory=list)


class _Sender(NamedTuple):
    """An enabled device as ingestion uses it: read off the ORM object once per device and
    batch, not once per event (an ORM attribute costs a descriptor call per read)."""

    id: str
    owner_type: str
    owner_id: int
    #: Its secret, made ready to sign (protocol.signing_key)
    key: hmac.HMAC
    #: The event types its kind may report.
    allowed: frozenset[str]
    kind: str


@dataclass(slots=True)
class _Candidate:
    message: int
    position: int
    device: _Sender
    event: DeviceEvent
    serials: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    """How ingestion judges events, from the configuration."""

    max_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=30)
    #: Run the anomaly rules on each batch (off only to measure their cost).
    rules: bool = True
    thresholds: Thresholds = field(default_factory=Thresholds)
    policy: Policy = field(default_factory=Policy)
    #: How many rows rejections may open (app/events/rejections.py).
    caps: Caps = field(default_factory=Caps)


def ingest(
    session: Session,
    master_key: str,
    inbound: list[Inbound],
    *,
    limits: Limits = Limits(),
    now: datetime | None = None,
) -> IngestResult:
    """Store a batch of device messages. Flushes; the caller commits (then acks)."""
    now = now or datetime.now(UTC)
    run = _Batch(session, master_key, inbound, limits, now)
    return run.execute()


class _Batch:
    """The work of one :func:`ingest` call, step by step, each step one query or one write."""

    def __init__(
        self,
        session: Session,
        master_key: str,
        inbound: list[Inbound],
        limits: Limits,
        now: datetime,
        nested: bool = False,
    ) -> None:
        self.session, self.master_key, self.inbound = session, master_key, inbound
        self.limits, self.now = limits, now
        #: Unparked events: the outer batch replays them and runs the rules on them.
        self.nested = nested
        self.acks: list[list[Ack | None]] = [[] for _ in inbound]
        self.rejections: list[Rejection] = []
        #: The registered devices among the senders (their rejections are kept as rows).
        self.registered: set[str] = set()
        self.authenticated = [False] * len(inbound)
        #: device id -> sequence numbers that passed the signature check
        self.seen_seqs: dict[str, list[int]] = defaultdict(list)
        self.flagged_devices: set[str] = set()
        #: Waybills this batch packed, whose parked events can now be applied.
        self.packed_waybills: set[str] = set()
        self.accepted_rows: list[dict] = []
        #: This batch's rows and those it unparked: every event stored by this batch.
        self.stored_rows: list[dict] = []
        #: (device id, codes never issued, event id, place): counterfeit scans for the rules
        self.counterfeits: list[tuple] = []

    def execute(self) -> IngestResult:
        """Run the steps in order; flush, and answer the acks and the commands to publish."""
        candidates = self._verified()
        candidates = self._new(candidates)
        candidates = self._resolve_codes(candidates)
        accepted = self.accepted_rows = self._store(candidates)
        accepted = self.stored_rows = accepted + self._unpark()
        if not self.nested:
            replayed = self._replay(accepted, scans=self.limits.rules)
            if self.limits.rules:
                self._judge(accepted, replayed)
        rejections.record(self.session, self.rejections, self.registered, self.limits.caps)
        # Last: it locks the batch's devices until the commit (see track_sequences). An
        # unparked batch's sequence numbers are tracked by the batch that unparked them.
        commands = [] if self.nested else self._track_sequences()
        self.session.flush()
        acks = [[a for a in message if a is not None] for message in self.acks]
        return IngestResult(acks, commands, len(accepted), self.authenticated)

    # step 1: parse, check shape, device, signature, permission
    def _verified(self) -> list[_Candidate]:
        devices = {
            d.id: d
            for d in self.session.connection().execute(
                sa.select(
                    Device.id,
                    Device.kind,
                    Device.owner_type,
                    Device.owner_id,
                    Device.secret_version,
                    Device.disabled_at,
                ).where(among(self.session, Device.id, {m.device_id for m in self.inbound}))
            )
        }
        self.registered = set(devices)
        senders: dict[str, _Sender] = {}
        out = []
        for i, message in enumerate(self.inbound):
            try:
                raw_events = protocol.parse_payload(message.payload)
            except Rejected as exc:
                self._reject(i, message, exc, message.payload)
                continue
            device = devices.get(message.device_id)
            for position, raw in enumerate(raw_events):
                self.acks[i].append(None)
                try:
                    if device is None:  # first: nothing of what it sent is checked
                        raise Rejected("unknown_device", "this device is not registered")
                    event = protocol.check_event(
                        raw,
                        self.now,
                        max_skew=self.limits.max_skew,
                        max_age=self.limits.max_age,
                        source_bytes=len(message.payload),
                    )
                    sender = senders.get(message.device_id)
                    if sender is None:
                        if device.disabled_at is not None:
                            raise Rejected("disabled_device", "this device is disabled")
                        sender = senders[device.id] = self._sender(device)
                    protocol.verify(event, sender.key)
                    self.authenticated[i] = True
                    self.seen_seqs[message.device_id].append(event.seq)
                    if event.type not in sender.allowed:
                        raise Rejected(
                            "not_allowed", f"a {sender.kind} may not report {event.type}"
                        )
                except Rejected as exc:
                    exc.event_id = exc.event_id or _claimed_id(raw)
                    self._reject(i, message, exc, raw, position)
                    continue
                out.append(_Candidate(i, position, sender, event))
        return out

    def _sender(self, device: sa.Row) -> _Sender:
        kind = device.kind.value
        return _Sender(
            device.id,
            device.owner_type,
            device.owner_id,
            protocol.signing_key(
                protocol.derive_secret(self.master_key, device.id, device.secret_version)
            ),
            ALLOWED_BY_KIND[kind],
            kind,
        )

    # step 2: drop duplicates (already stored, or twice in this batch)
    def _new(self, candidates: list[_Candidate]) -> list[_Candidate]:
        ids = [c.event.event_id for c in candidates]
        db = self.session.connection()
        known = set(
            db.scalars(sa.select(Event.event_id).where(among(self.session, Event.event_id, ids)))
        ) | set(
            db.scalars(
                sa.select(ParkedEvent.event_id).where(
                    among(self.session, ParkedEvent.event_id, ids)
                )
            )
        )
        out = []
        for c in candidates:
            if c.event.event_id in known:
                self.acks[c.message][c.position] = Ack(c.event.event_id, "duplicate")
                continue
            known.add(c.event.event_id)
            out.append(c)
        return out

    # step 3: every code must have been issued, under the product and lot its link names
    def _resolve_codes(self, candidates: list[_Candidate]) -> list[_Candidate]:
        wanted: dict[str, tuple[str, str | None] | None] = {}
        for c in candidates:
            texts = [c.event.code] if c.event.code else c.event.codes
            try:
                c.serials = [_serial_of(text, wanted) for text in texts]
            except Rejected as exc:
                self._reject_candidate(c, exc)
        found = {
            serial: (gtin, lot)
            for serial, gtin, lot in self.session.connection().execute(
                sa.select(TraceCode.serial, Product.gtin, Batch.lot)
                .join(Batch, TraceCode.batch_id == Batch.id)
                .join(Product, Batch.product_id == Product.id)
                .where(among(self.session, TraceCode.serial, wanted))
            )
        }
        out = []
        for c in candidates:
            if self.acks[c.message][c.position] is not None:
                continue
            unknown = [
                s for s in c.serials if s not in found or not _link_matches(wanted[s], found[s])
            ]
            if unknown:
                self._reject_candidate(
                    c, Rejected("unknown_code", f"never issued: {', '.join(unknown[:5])}")
                )
                place = (c.event.lat, c.event.lon) if c.event.lat is not None else None
                self.counterfeits.append((c.device.id, unknown, c.event.event_id, place))
                continue
            out.append(c)
        return out

    # step 4: parcels, then the events themselves, in event-time order
    def _store(self, candidates: list[_Candidate]) -> list[dict]:
        candidates.sort(key=lambda c: c.event.utc)
        self.flagged_devices = self._black_listed_courier_devices(candidates)
        waybills = {c.event.waybill for c in candidates if c.event.waybill}
        named = {
            c.event.data.get("logistics_company_id")
            for c in candidates
            if c.event.type == EventType.PACKED
        }
        # (no statement for nothing: a batch of shop scans names no parcel)
        parcels = {
            p.waybill: p
            for p in (
                self.session.scalars(
                    sa.select(Parcel).where(among(self.session, Parcel.waybill, waybills))
                )
                if waybills
                else ()
            )
        }
        companies = (
            set(
                self.session.scalars(
                    sa.select(LogisticsCompany.id).where(LogisticsCompany.id.in_(named))
                )
            )
            if named
            else set()
        )
        rows, items, parked = [], [], []
        for c in candidates:
            event = c.event
            try:
                if event.type == EventType.PACKED:
                    items += self._pack(c, parcels, companies)
                elif event.waybill and event.waybill not in parcels:
                    # The courier's scan overtook the shop's packing: keep it for later.
                    parked.append(self._parked_row(c))
                    self.acks[c.message][c.position] = Ack(
                        event.event_id,
                        "accepted",
                        "parked",
                        "kept; applied when the waybill's packing arrives",
                    )
                    continue
            except Rejected as exc:
                self._reject_candidate(c, exc)
                continue
            rows.append(self._event_row(c))
            self.acks[c.message][c.position] = Ack(event.event_id, "accepted")
        if rows:
            judge_reports(self.session, rows, parcels)  # couriers of another company
            insert_events(self.session, rows)
            feed.record_events(self.session, rows)
        if items:
            self.session.execute(sa.insert(ParcelItem), items)
        if parked:
            self.session.execute(sa.insert(ParkedEvent), parked)
        self.session.flush()
        return rows

    def _parked_row(self, c: _Candidate) -> dict:
        return parked_row(
            c.event.event_id,
            c.device.id,
            c.event.waybill,
            c.event.raw,
            self.inbound[c.message].received_at,
        )

    def _pack(self, c: _Candidate, parcels: dict[str, Parcel], companies: set[int]) -> list[dict]:
        event, data = c.event, c.event.data
        if data["logistics_company_id"] not in companies:
            raise Rejected(
                "invalid_field", f"no logistics company with id {data['logistics_company_id']}"
            )
        parcel = parcels.get(event.waybill)
        if parcel is None:
            promised = data.get("promised_by")
            parcel = Parcel(
                waybill=event.waybill,
                merchant_id=c.device.owner_id,
                logistics_company_id=data["logistics_company_id"],
                consignee=point(data["consignee"]["lat"], data["consignee"]["lon"]),
                consignee_region_code=data["consignee_region_code"],
                state=lifecycle.ISSUED,  # until the replay derives it from its events
                promised_by=datetime.fromisoformat(promised).astimezone(UTC) if promised else None,
                packed_at=event.utc,
            )
            self.session.add(parcel)
            parcels[event.waybill] = parcel
            self.packed_waybills.add(event.waybill)
            self.session.flush()
        elif parcel.merchant_id != c.device.owner_id:
            raise Rejected("not_allowed", f"waybill {event.waybill} belongs to another merchant")
        return [{"waybill": event.waybill, "serial": s} for s in dict.fromkeys(c.serials)]

    def _event_row(self, c: _Candidate) -> dict:
        event = c.event
        offset = event.time.utcoffset() or timedelta(0)
        return {
            "event_id": event.event_id,
            "device_id": c.device.id,
            "seq": event.seq,
            "type": event.type,
            "serial": c.serials[0] if event.code else None,
            "waybill": event.waybill,
            "occurred_at": event.utc,
            "utc_offset_min": int(offset.total_seconds() // 60),
            "received_at": self.inbound[c.message].received_at,
            # (lat, lon): made a geometry only where the driver needs one (insert_events)
            "location": None if event.lat is None else (event.lat, event.lon),
            "accuracy_m": event.accuracy_m,
            "party_type": c.device.owner_type,
            "party_id": c.device.owner_id,
            "data": _stored_data(event),
            "violation": None,
            "flag": "black_listed_courier" if c.device.id in self.flagged_devices else None,
        }

    def _black_listed_courier_devices(self, candidates: list[_Candidate]) -> set[str]:
        """A black-listed courier's events are evidence: accepted, but flagged."""
        couriers = {
            (c.device.owner_type, c.device.owner_id)
            for c in candidates
            if c.device.owner_type == "courier"
        }
        if not couriers:
            return set()
        found = credit_accounts(self.session, couriers, self.limits.policy, self.now)
        black = {p for p, acc in found.items() if acc.standing.list == "black"}
        return {
            c.device.id for c in candidates if (c.device.owner_type, c.device.owner_id) in black
        }

    # step 5: the events parked for the waybills this batch packed, as one more batch
    def _unpark(self) -> list[dict]:
        """Apply the parked events of the waybills this batch packed, as one more batch."""
        inbound = [Inbound(*p) for p in take_parked(self.session, self.packed_waybills)]
        if not inbound:
            return []
        later = _Batch(self.session, self.master_key, inbound, self.limits, self.now, nested=True)
        later.execute()
        self.counterfeits += later.counterfeits
        for device_id, seqs in later.seen_seqs.items():
            self.seen_seqs[device_id] += seqs
        return later.accepted_rows

    # step 6: the lifecycle, replayed for every unit and parcel this batch touched
    def _replay(self, accepted: list[dict], scans: bool) -> Replayed | None:
        if not accepted:
            return None
        waybills = {r["waybill"] for r in accepted if r["waybill"]}
        serials = {r["serial"] for r in accepted if r["serial"]}
        if waybills:
            serials |= set(
                self.session.connection().scalars(
                    sa.select(ParcelItem.serial).where(
                        among(self.session, ParcelItem.waybill, waybills)
                    )
                )
            )
        return replay_subjects(self.session, serials, scans=scans)

    # step 7: the anomaly rules, on what the replay read
    def _judge(self, accepted: list[dict], replayed: Replayed | None) -> None:
        detect.after_ingest(
            self.session,
            accepted,
            self.counterfeits,
            self.limits.thresholds,
            self.limits.policy,
            self.now,
            replayed,
        )

    # step 8: sequence numbers: record gaps, ask the device to resend; and how far each
    # device has synced (last heard from, latest event time delivered), for the sweep
    def _track_sequences(self) -> list[tuple[str, dict]]:
        heard: dict[str, tuple[datetime, datetime]] = {}
        for row in self.stored_rows:
            device, received, occurred = row["device_id"], row["received_at"], row["occurred_at"]
            was = heard.get(device)
            if was is None:
                heard[device] = (received, occurred)
            elif received > was[0] or occurred > was[1]:
                heard[device] = (max(received, was[0]), max(occurred, was[1]))
        return track_sequences(self.session, self.seen_seqs, self.now, heard)

    def _reject(
        self,
        message_index: int,
        message: Inbound,
        exc: Rejected,
        payload: Any,
        position: int | None = None,
    ) -> None:
        """Answer ``rejected``; the rejection is recorded at the end of the batch, as a row
        or in a tally (app/events/rejections.py). ``payload``: the event, or the bytes of a
        message rejected whole."""
        ack = Ack(exc.event_id, "rejected", exc.reason, exc.message)
        if position is None:
            self.acks[message_index].append(ack)
        else:
            self.acks[message_index][position] = ack
        self.rejections.append(
            Rejection(
                message.device_id,
                exc.event_id or None,
                exc.reason,
                exc.message,
                payload,
                message.received_at,
                message.address,
            )
        )

    def _reject_candidate(self, c: _Candidate, exc: Rejected) -> None:
        exc.event_id = c.event.event_id
        self._reject(c.message, self.inbound[c.message], exc, c.event.raw, c.position)


def _claimed_id(raw) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("event_id"), str):
        return raw["event_id"][:64]
    return None


def _serial_of(text: str, wanted: dict) -> str:
    """The serial a scanned code names: a bare serial or a Digital Link URI."""
    try:
        if "/" in text:
            link = parse_digital_link(text, field="code")
            if link.serial is None:
                raise Rejected("invalid_field", "the link names no serial (AI 21)")
            wanted[link.serial] = (link.gtin14, link.lot)
            return link.serial
        serial = validate_serial(text, field="code")
    except ValidationError as exc:
        raise Rejected("invalid_field", exc.message) from None
    wanted.setdefault(serial, None)
    return serial


def _link_matches(claimed: tuple[str, str | None] | None, actual: tuple[str, str]) -> bool:
    if claimed is None:
        return True
    gtin, lot = claimed
    return gtin == actual[0] and (lot is None or lot == actual[1])


def _stored_data(event: DeviceEvent) -> dict:
    """What of ``data`` is kept (the consignee point lives on the parcel, for regulators)."""
    data = {k: event.data[k] for k in STORED_DATA_KEYS.get(event.type, ()) if k in event.data}
    if event.type == EventType.PACKED:
        data["codes"] = len(event.codes)
    return data
