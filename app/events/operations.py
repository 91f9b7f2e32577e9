"""Device registry and event ingestion: the one path every scan takes into the trace.

:func:`ingest` takes a batch of raw messages (from the MQTT worker or the HTTP endpoint),
stores what is a fact, rejects the rest with a reason, and answers one ack per event. All
lookups are done once per batch (devices, known event ids, codes, parcels), never per event,
and the caller commits: the MQTT worker acknowledges the messages to the broker only after
that commit, so a crash anywhere loses nothing and a redelivery is dropped as a duplicate.
"""

from __future__ import annotations

import hmac
import json
import secrets
import struct
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.auth.models import Role
from app.auth.principal import Principal
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.credit import detect
from app.credit.operations import accounts as credit_accounts
from app.db import Keys, among, is_postgresql, point
from app.events.models import (
    Device,
    DeviceKind,
    Event,
    Parcel,
    ParcelItem,
    ParkedEvent,
    RejectedEvent,
    SequenceGap,
)
from app.parties.models import Courier, LogisticsCompany, Merchant
from devices import protocol
from devices.protocol import Ack, DeviceEvent, Rejected
from tracecore import lifecycle
from tracecore.anomalies import Thresholds
from tracecore.credit import Policy
from tracecore.errors import NotFound, ValidationError
from tracecore.gs1 import parse_digital_link, validate_serial

OWNER_OF_KIND = {
    DeviceKind.SHELF_SCANNER: "merchant",
    DeviceKind.POS_SCANNER: "merchant",
    DeviceKind.COURIER_HANDHELD: "courier",
}
PAYLOAD_KEEP = 4096


# -- device registry ------------------------------------------------------------------------


def register_device(
    session: Session,
    actor: Principal,
    master_key: str,
    *,
    kind: DeviceKind,
    owner_type: str,
    owner_id: int,
) -> tuple[Device, str]:
    """Register a device; returns it and its secret (to be shown once).

    Scanners belong to a merchant, handhelds to a courier. A merchant registers its own
    scanners; a logistics company the handhelds of its own couriers; authorities any.
    """
    if OWNER_OF_KIND[kind] != owner_type:
        raise ValidationError(
            f"a {kind.value} belongs to a {OWNER_OF_KIND[kind]}", field="owner_type"
        )
    if owner_type == "merchant":
        if session.get(Merchant, owner_id) is None:
            raise NotFound(f"no merchant with id {owner_id}", field="owner_id")
        actor.require(Role.ADMIN, Role.REGULATOR, Role.MERCHANT)
        actor.require_merchant(owner_id)
    else:
        courier = session.get(Courier, owner_id)
        if courier is None:
            raise NotFound(f"no courier with id {owner_id}", field="owner_id")
        actor.require(Role.ADMIN, Role.REGULATOR, Role.LOGISTICS)
        actor.require_company(courier.company_id)
    device = Device(id=new_device_id(session), kind=kind, owner_type=owner_type, owner_id=owner_id)
    session.add(device)
    session.flush()
    return device, protocol.derive_secret(master_key, device.id, device.secret_version)


def new_device_id(session: Session) -> str:
    while True:
        candidate = secrets.token_hex(8).upper()
        if session.get(Device, candidate) is None:
            return candidate


def get_device(session: Session, actor: Principal, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"no device {device_id}")
    if device.owner_type == "merchant":
        actor.require_merchant(device.owner_id)
    else:
        actor.require_company(session.get(Courier, device.owner_id).company_id)
    return device


def disable_device(session: Session, actor: Principal, device_id: str) -> Device:
    """Refuse the device's events from now on (a lost or stolen handheld)."""
    device = get_device(session, actor, device_id)
    if device.disabled_at is None:
        device.disabled_at = datetime.now(UTC)
    session.flush()
    return device


# -- ingestion ------------------------------------------------------------------------------


class Inbound(NamedTuple):
    """One message as it arrived: the device it claims to come from, and its bytes."""

    device_id: str
    payload: bytes
    received_at: datetime


@dataclass
class IngestResult:
    #: One list of acks per inbound message, in the order of its events.
    acks: list[list[Ack]]
    #: (device_id, command) to publish on the device's commands topic.
    commands: list[tuple[str, dict]] = field(default_factory=list)
    accepted: int = 0


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
        self.rejected_rows: list[dict] = []
        #: device id -> sequence numbers that passed the signature check
        self.seen_seqs: dict[str, list[int]] = defaultdict(list)
        self.flagged_devices: set[str] = set()
        #: Waybills this batch packed, whose parked events can now be applied.
        self.packed_waybills: set[str] = set()
        self.accepted_rows: list[dict] = []
        #: (device id, codes never issued, event id, place): counterfeit scans for the rules
        self.counterfeits: list[tuple] = []

    def execute(self) -> IngestResult:
        candidates = self._verified()
        candidates = self._new(candidates)
        candidates = self._resolve_codes(candidates)
        accepted = self._store(candidates)
        self.accepted_rows = accepted
        accepted = accepted + self._unpark()
        if not self.nested:
            rules = self.limits.rules
            replayed = self._replay(accepted, scans=rules)
            if rules:
                detect.after_ingest(
                    self.session,
                    accepted,
                    self.counterfeits,
                    self.limits.thresholds,
                    self.limits.policy,
                    self.now,
                    replayed,
                )
        if self.rejected_rows:
            self.session.execute(sa.insert(RejectedEvent), self.rejected_rows)
        # Last: it locks the batch's devices until the commit (see _track_sequences). An
        # unparked batch's sequence numbers are tracked by the batch that unparked them.
        commands = [] if self.nested else self._track_sequences()
        self.session.flush()
        acks = [[a for a in message if a is not None] for message in self.acks]
        return IngestResult(acks, commands, len(accepted))

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
        senders: dict[str, _Sender] = {}
        out = []
        for i, message in enumerate(self.inbound):
            try:
                raw_events = protocol.parse_payload(message.payload)
            except Rejected as exc:
                self._reject(i, message, exc, message.payload.decode("utf-8", "replace"))
                continue
            device = devices.get(message.device_id)
            for position, raw in enumerate(raw_events):
                self.acks[i].append(None)
                try:
                    event = protocol.check_event(
                        raw,
                        self.now,
                        max_skew=self.limits.max_skew,
                        max_age=self.limits.max_age,
                        source_bytes=len(message.payload),
                    )
                    if device is None:
                        raise Rejected("unknown_device", "this device is not registered")
                    sender = senders.get(message.device_id)
                    if sender is None:
                        if device.disabled_at is not None:
                            raise Rejected("disabled_device", "this device is disabled")
                        sender = senders[device.id] = self._sender(device)
                    protocol.verify(event, sender.key)
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
            protocol.ALLOWED_BY_KIND[kind],
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
    def _store(self, candidates: list[_Candidate]) -> list[Event]:
        candidates.sort(key=lambda c: c.event.utc)
        self.flagged_devices = self._black_listed_courier_devices(candidates)
        waybills = {c.event.waybill for c in candidates if c.event.waybill}
        named = {
            c.event.data.get("logistics_company_id") for c in candidates if c.event.type == "packed"
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
                if event.type == "packed":
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
            insert_events(self.session, rows)
        if items:
            self.session.execute(sa.insert(ParcelItem), items)
        if parked:
            self.session.execute(sa.insert(ParkedEvent), parked)
        self.session.flush()
        return rows

    def _parked_row(self, c: _Candidate) -> dict:
        return {
            "event_id": c.event.event_id,
            "device_id": c.device.id,
            "waybill": c.event.waybill,
            "payload": json.dumps(c.event.raw, ensure_ascii=False),
            "received_at": self.inbound[c.message].received_at,
        }

    def _unpark(self) -> list[dict]:
        """Apply the parked events of the waybills this batch packed, as one more batch."""
        if not self.packed_waybills:
            return []
        waiting = list(
            self.session.scalars(
                sa.select(ParkedEvent)
                .where(ParkedEvent.waybill.in_(self.packed_waybills))
                .order_by(ParkedEvent.id)
            )
        )
        if not waiting:
            return []
        self.session.execute(
            sa.delete(ParkedEvent).where(ParkedEvent.id.in_([p.id for p in waiting]))
        )
        inbound = [
            Inbound(
                p.device_id, json.dumps({"events": [json.loads(p.payload)]}).encode(), p.received_at
            )
            for p in waiting
        ]
        later = _Batch(self.session, self.master_key, inbound, self.limits, self.now, nested=True)
        later.execute()
        self.counterfeits += later.counterfeits
        for device_id, seqs in later.seen_seqs.items():
            self.seen_seqs[device_id] += seqs
        return later.accepted_rows

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
                state="issued",
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

    # step 5: sequence numbers: record gaps, ask the device to resend
    def _track_sequences(self) -> list[tuple[str, dict]]:
        if not self.seen_seqs:
            return []
        # One writer per device at a time, from here to the commit: the batch's last step,
        # so that workers storing the same devices' events in parallel wait for each other
        # only this long (locked in id order; max_seq as committed by the one before). NO KEY
        # UPDATE, as the UPDATE of max_seq takes: FOR UPDATE would conflict with the KEY
        # SHARE locks that the foreign-key checks of other batches' event inserts hold on
        # the same devices, and two workers would deadlock. Core, not the ORM: two columns
        # of a few dozen devices, read and written once per batch.
        db = self.session.connection()
        max_seqs: dict[str, int] = dict(
            db.execute(
                sa.select(Device.id, Device.max_seq)
                .where(among(self.session, Device.id, self.seen_seqs))
                .order_by(Device.id)
                .with_for_update(key_share=True)
            ).all()
        )
        #: Only read if some number is not past the device's highest (a resend, a
        #: redelivery, another worker's batch): most batches have none to fill.
        gaps: dict[str, list[SequenceGap]] | None = None
        commands = []
        raised: dict[str, int] = {}
        for device_id, seqs in self.seen_seqs.items():
            highest = max_seqs[device_id]
            for seq in sorted(set(seqs)):
                if seq > highest:
                    if seq > highest + 1:
                        gaps = gaps if gaps is not None else self._gaps()
                        gap = SequenceGap(
                            device_id=device_id,
                            first_seq=highest + 1,
                            last_seq=seq - 1,
                            detected_at=self.now,
                            resend_requested_at=self.now,
                        )
                        self.session.add(gap)
                        gaps[device_id].append(gap)
                        commands.append(
                            (
                                device_id,
                                {
                                    "command": "resend",
                                    "from_seq": gap.first_seq,
                                    "to_seq": gap.last_seq,
                                },
                            )
                        )
                    highest = raised[device_id] = seq
                else:
                    gaps = gaps if gaps is not None else self._gaps()
                    self._fill(gaps[device_id], seq)
        _set_max_seqs(self.session, raised)
        self.session.flush()
        return commands

    def _gaps(self) -> dict[str, list[SequenceGap]]:
        """The open gaps of the batch's devices."""
        gaps: dict[str, list[SequenceGap]] = defaultdict(list)
        for gap in self.session.scalars(
            sa.select(SequenceGap).where(among(self.session, SequenceGap.device_id, self.seen_seqs))
        ):
            gaps[gap.device_id].append(gap)
        return gaps

    def _fill(self, gaps: list[SequenceGap], seq: int) -> None:
        for gap in gaps:
            if gap.first_seq <= seq <= gap.last_seq:
                if gap.first_seq == gap.last_seq:
                    self.session.delete(gap)
                    gaps.remove(gap)
                elif seq == gap.first_seq:
                    gap.first_seq += 1
                elif seq == gap.last_seq:
                    gap.last_seq -= 1
                else:
                    upper = SequenceGap(
                        device_id=gap.device_id,
                        first_seq=seq + 1,
                        last_seq=gap.last_seq,
                        detected_at=gap.detected_at,
                        resend_requested_at=gap.resend_requested_at,
                    )
                    gap.last_seq = seq - 1
                    self.session.add(upper)
                    gaps.append(upper)
                return

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

    def _reject(
        self,
        message_index: int,
        message: Inbound,
        exc: Rejected,
        payload,
        position: int | None = None,
    ) -> None:
        ack = Ack(exc.event_id, "rejected", exc.reason, exc.message)
        if position is None:
            self.acks[message_index].append(ack)
        else:
            self.acks[message_index][position] = ack
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        self.rejected_rows.append(
            {
                "device_id": message.device_id[:64],
                "event_id": (exc.event_id or None),
                "reason": exc.reason,
                "message": exc.message[:300],
                "payload": text[:PAYLOAD_KEEP],
                "received_at": message.received_at,
            }
        )

    def _reject_candidate(self, c: _Candidate, exc: Rejected) -> None:
        exc.event_id = c.event.event_id
        self._reject(c.message, self.inbound[c.message], exc, c.event.raw, c.position)


@dataclass
class Replayed:
    """What :func:`replay_subjects` read and derived, for the anomaly rules to reuse."""

    #: The units replayed.
    serials: set[str]
    #: (waybill, serial) of every parcel those units are in.
    items: list[tuple[str, str]]
    #: Every event of those units and parcels (:data:`detect.SUBJECT_COLUMNS` with scans).
    rows: list
    #: event_id -> why the lifecycle does not allow it, as now stored (absent: lawful).
    violations: dict[str, str]


#: What the replay reads of an event (with scans: what the rules read, which starts with the
#: same seven columns in the same order; the replay reads rows by position).
_REPLAY_COLUMNS = (
    Event.id,
    Event.event_id,
    Event.type,
    Event.occurred_at,
    Event.serial,
    Event.waybill,
    Event.violation,
)


def replay_subjects(
    session: Session, serials: Iterable[str], *, scans: bool = False
) -> Replayed | None:
    """Re-derive the state of these units, of their parcels, and the violation marks of
    their events, from all their events in time order. With ``scans``, also read what the
    anomaly rules need of those events, and return it all."""
    serials = set(serials)
    if not serials:
        return None
    # Core, not the ORM: plain rows, without the ORM's per-row loading.
    db = session.connection()
    _lock(session, "trace_codes", serials)  # before reading their parcels: see _lock
    items = db.execute(
        sa.select(ParcelItem.waybill, ParcelItem.serial).where(
            among(session, ParcelItem.serial, serials)
        )
    ).all()
    units_of: dict[str, set[str]] = defaultdict(set)
    for waybill, serial in items:
        units_of[waybill].add(serial)
    _lock(session, "parcels", units_of)
    columns = detect.SUBJECT_COLUMNS if scans else _REPLAY_COLUMNS
    query = sa.select(*columns).where(among(session, Event.serial, serials))
    if units_of:  # two index scans; an OR of two arrays can get a table scan as cached plan
        # UNION ALL: the JSON column has no equality operator. An event names either a code
        # or a waybill; the ids seen guard anyway.
        query = sa.union_all(
            query, sa.select(*columns).where(among(session, Event.waybill, units_of))
        )
    # Rows read by position (the first seven columns of both lists): an attribute of a Row
    # is looked up, and raises, as an ordinary attribute before it is found by name.
    events, seen = [], set()
    for row in db.execute(query).all():  # fetchall: one call, not one per row
        if row[0] not in seen:
            seen.add(row[0])
            events.append(row)
    steps_of_parcel: dict[str, list[lifecycle.Step]] = defaultdict(list)
    steps_of_unit: dict[str, list[lifecycle.Step]] = defaultdict(list)
    parcel_event_ids = set()
    Step = lifecycle.Step
    for row in events:
        id_, event_id, kind, occurred_at, serial, waybill = row[:6]
        step = Step(event_id, kind, occurred_at, id_)
        if waybill:
            parcel_event_ids.add(event_id)
            steps_of_parcel[waybill].append(step)
            for unit in units_of[waybill]:
                steps_of_unit[unit].append(step)
        else:
            steps_of_unit[serial].append(step)

    violations: dict[str, str] = {}
    parcel_states = {}
    for waybill, steps in steps_of_parcel.items():
        result = lifecycle.replay(steps)
        parcel_states[waybill] = result.state
        violations.update(result.violations)
    unit_states = {}
    for serial in serials:
        result = lifecycle.replay(steps_of_unit.get(serial, []))
        unit_states[serial] = result.state
        for event_id, reason in result.violations.items():
            # A parcel event can be lawful for the parcel yet not for one unit in it.
            where = f" (unit {serial})" if event_id in parcel_event_ids else ""
            violations.setdefault(event_id, reason + where)

    # (id, violation) of the events whose mark changes, in id order
    changed = sorted(
        (row[0], violations.get(row[1])) for row in events if violations.get(row[1]) != row[6]
    )
    if changed and is_postgresql(session):
        session.execute(
            _UPDATE_VIOLATIONS,
            {"ids": [id_ for id_, _ in changed], "values": [v for _, v in changed]},
        )
    elif changed:
        table = Event.__table__  # Core executemany, not the ORM's bulk update by key
        session.connection().execute(
            table.update()
            .where(table.c.id == sa.bindparam("b_id"))
            .values(violation=sa.bindparam("b_violation")),
            [{"b_id": id_, "b_violation": v} for id_, v in changed],
        )
    _set_states(session, TraceCode, TraceCode.serial, unit_states)
    _set_states(session, Parcel, Parcel.waybill, parcel_states)
    return Replayed(serials, items, events, violations)


#: One statement per batch on PostgreSQL, as for the violations below.
_UPDATE_MAX_SEQS = sa.text(
    "UPDATE devices SET max_seq = v.max_seq "
    "FROM unnest(CAST(:ids AS text[]), CAST(:max_seqs AS bigint[])) AS v(id, max_seq) "
    "WHERE devices.id = v.id"
)


def _set_max_seqs(session: Session, max_seqs: dict[str, int]) -> None:
    """Store the devices' new highest sequence numbers (in id order: the rows are locked)."""
    if not max_seqs:
        return
    ordered = sorted(max_seqs.items())
    if is_postgresql(session):
        session.execute(
            _UPDATE_MAX_SEQS,
            {"ids": Keys(k for k, _ in ordered), "max_seqs": Keys(v for _, v in ordered)},
        )
    else:
        table = Device.__table__
        session.connection().execute(
            table.update()
            .where(table.c.id == sa.bindparam("b_id"))
            .values(max_seq=sa.bindparam("b_max_seq")),
            [{"b_id": k, "b_max_seq": v} for k, v in ordered],
        )
    # Device objects this session holds (a caller's, or the counterfeit rule's) must not
    # keep the old number: set it as loaded, not as a change to flush.
    for device_id, max_seq in ordered:
        device = session.identity_map.get(identity_key(Device, device_id))
        if device is not None:
            set_committed_value(device, "max_seq", max_seq)


_LOCK = {
    table: sa.text(
        f"SELECT 1 FROM {table} WHERE {key} = ANY(CAST(:keys AS text[])) "
        f"ORDER BY {key} FOR NO KEY UPDATE"
    )
    for table, key in (("trace_codes", "serial"), ("parcels", "waybill"))
}


def _lock(session: Session, table: str, keys: Iterable[str]) -> None:
    """Lock these units (or parcels) until the commit, in key order, before reading what
    their replay reads: units first, then their parcels (PostgreSQL; SQLite has one writer
    at a time anyway).

    Workers store in parallel: without this, two batches holding events of the same unit
    (its shelving in one, its sale in the other) could each replay it without the other's
    uncommitted event, and the later commit leave a state and violation marks derived from
    half its history. With it, the second waits for the first's commit, then reads both. A
    batch that packs a unit locks it too, so its parcel is seen by whoever locks it next.
    ``FOR NO KEY UPDATE`` does not block the foreign-key checks of other batches' inserts."""
    keys = sorted(keys)
    if keys and is_postgresql(session):
        session.execute(_LOCK[table], {"keys": Keys(keys)})


#: One statement per batch on PostgreSQL: (key, value) pairs as two arrays, joined by key.
_UPDATE_VIOLATIONS = sa.text(
    "UPDATE events SET violation = v.violation "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:values AS text[])) AS v(id, violation) "
    "WHERE events.id = v.id"
)
_UPDATE_STATES = {
    (table, key): sa.text(
        f"UPDATE {table} SET state = v.state "
        "FROM unnest(CAST(:keys AS text[]), CAST(:states AS text[])) AS v(key, state) "
        f"WHERE {table}.{key} = v.key AND {table}.state <> v.state"
    )
    for table, key in (("trace_codes", "serial"), ("parcels", "waybill"))
}


def _set_states(session: Session, model, key, states: dict[str, str]) -> None:
    if not states:
        return
    # In key order, so that concurrent workers take row locks in the same order.
    ordered = sorted(states.items())
    if is_postgresql(session):
        # One statement; rows already in that state are left alone (no new row version).
        session.execute(
            _UPDATE_STATES[(model.__tablename__, key.key)],
            {"keys": Keys(k for k, _ in ordered), "states": Keys(v for _, v in ordered)},
        )
        return
    current = dict(
        session.execute(sa.select(key, model.state).where(among(session, key, states))).all()
    )
    changed = [{"b_key": k, "b_state": v} for k, v in ordered if current.get(k) != v]
    if changed:
        table = model.__table__
        session.connection().execute(
            table.update()
            .where(table.c[key.key] == sa.bindparam("b_key"))
            .values(state=sa.bindparam("b_state")),
            changed,
        )


#: The columns of an ingested event row, in the order of :data:`_COPY_EVENTS`.
_EVENT_COLUMNS = (
    "event_id",
    "device_id",
    "seq",
    "type",
    "serial",
    "waybill",
    "occurred_at",
    "utc_offset_min",
    "received_at",
    "location",
    "accuracy_m",
    "party_type",
    "party_id",
    "data",
    "violation",
    "flag",
)
_COPY_EVENTS = f"COPY events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
#: How each column is sent in the binary COPY: what the column type's receive function
#: reads. Strings (varchar) and the JSON text as text, the point as EWKB (bytea: its bytes
#: as they are), timestamps as microseconds (no text to write, nor for the server to parse:
#: ``datetime.isoformat`` alone cost about 5 % of ingest).
_COPY_TYPES = (
    "text",  # event_id
    "text",  # device_id
    "int8",  # seq
    "text",  # type
    "text",  # serial
    "text",  # waybill
    "timestamptz",  # occurred_at
    "int2",  # utc_offset_min
    "timestamptz",  # received_at
    "bytea",  # location: EWKB
    "float8",  # accuracy_m
    "text",  # party_type
    "int4",  # party_id
    "text",  # data: JSON text
    "text",  # violation
    "text",  # flag
)
#: A point as little-endian EWKB: byte order, type (point, with SRID), SRID, x (lon), y (lat)
_EWKB_POINT = struct.Struct("<BIIdd")
_EWKB_POINT_SRID = 0x20000001


def insert_events(session: Session, rows: list[dict]) -> None:
    """Insert event rows (as built by ingest) in one statement.

    On PostgreSQL a binary ``COPY … FROM STDIN`` in the session's transaction: psycopg
    formats the rows in C and the server takes them in one statement, where an executemany
    is one statement per row (pipelined, but still parsed, planned and executed one by one) and an
    ``INSERT … SELECT FROM unnest(arrays)`` spends as long in psycopg's Python array dumper.
    Elsewhere the ORM's bulk insert (an executemany)."""
    if not rows:
        return
    if not is_postgresql(session):
        session.execute(
            sa.insert(Event),
            [r | {"location": r["location"] and point(*r["location"])} for r in rows],
        )
        return
    dumps = orjson.dumps  # the same JSON the column type would store, written faster
    ewkb = _EWKB_POINT.pack
    dbapi = session.connection().connection.driver_connection
    try:
        with dbapi.cursor() as cursor, cursor.copy(_COPY_EVENTS) as copy:
            copy.set_types(_COPY_TYPES)
            for r in rows:
                location = r["location"]
                copy.write_row(
                    (
                        r["event_id"],
                        r["device_id"],
                        r["seq"],
                        r["type"],
                        r["serial"],
                        r["waybill"],
                        r["occurred_at"],
                        r["utc_offset_min"],
                        r["received_at"],
                        None
                        if location is None
                        else ewkb(1, _EWKB_POINT_SRID, 4326, location[1], location[0]),
                        r["accuracy_m"],
                        r["party_type"],
                        r["party_id"],
                        dumps(r["data"]).decode(),
                        r["violation"],
                        r["flag"],
                    )
                )
    except psycopg.Error as exc:
        # What SQLAlchemy would have raised (IntegrityError, OperationalError...): the ingest
        # worker decides on retries by these.
        raise sa.exc.DBAPIError.instance(_COPY_EVENTS, None, exc, psycopg.Error) from exc


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


#: The keys of ``data`` that are stored, per event type. Anything else a device sends (a
#: consignee's name or phone, say) is dropped: histories must never carry personal data.
STORED_DATA_KEYS = {
    "sold": ("order_id", "price", "channel"),
    "packed": ("consignee_region_code", "promised_by", "logistics_company_id"),
    "delivery_failed": ("reason",),
    "signed": ("signer",),
}


def _stored_data(event: DeviceEvent) -> dict:
    """What of ``data`` is kept (the consignee point lives on the parcel, for regulators)."""
    data = {k: event.data[k] for k in STORED_DATA_KEYS.get(event.type, ()) if k in event.data}
    if event.type == "packed":
        data["codes"] = len(event.codes)
    return data


def expire_parked(session: Session, now: datetime, max_age: timedelta) -> int:
    """Parked events whose waybill was never packed within ``max_age`` are rejected
    (``unknown_waybill``), where regulators read them; returns how many."""
    stale = list(
        session.scalars(sa.select(ParkedEvent).where(ParkedEvent.received_at < now - max_age))
    )
    if not stale:
        return 0
    session.execute(
        sa.insert(RejectedEvent),
        [
            {
                "device_id": p.device_id,
                "event_id": p.event_id,
                "reason": "unknown_waybill",
                "message": f"no parcel with waybill {p.waybill} was packed within "
                f"{max_age.total_seconds() / 3600:.0f} h",
                "payload": p.payload[:PAYLOAD_KEEP],
                "received_at": p.received_at,
            }
            for p in stale
        ],
    )
    session.execute(sa.delete(ParkedEvent).where(ParkedEvent.id.in_([p.id for p in stale])))
    session.flush()
    return len(stale)
