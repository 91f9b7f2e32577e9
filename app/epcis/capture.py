"""EPCIS capture: an outside system's EPCIS document, read, checked and stored as a capture job.

One use case, read top to bottom in :func:`capture`: the document's frame (a malformed one is
refused whole, before any job), its size in events, then each event — read
(:mod:`tracecore.epcis_capture`), hashed (its CBV 2.0 event hash: its ID), checked against
what the system may speak for, and skipped as a duplicate when an event with that hash is
already stored — then stored, all or nothing (``rollback``, the default) or every valid one
(``proceed``). The job records what happened; the request that runs it owns the commit.

**What an outside system may capture.** It acts for its own party only (issue 14's rule): a
GS1 key of one of our products names that product's merchant's thing, so a merchant's system
may name its own products' GTINs (and their units), never another merchant's; a logistics
company's system none. A place of ours must be its party's own place; a parcel of ours is
never named (parcels are the devices'). This holds for every identifier an event names,
whatever its role (a transformation's inputs and outputs alike). Identifiers that are not ours
(other GTINs, SSCCs, GLNs, URNs of other schemes) are kept as outside identifiers.

**Untrusted for findings.** A captured event is kept apart from the devices' events
(``captured_events``): it moves no custody, replays no lifecycle, and no anomaly rule reads
it, so it can neither fake nor clear a finding against anyone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import authz
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.db import among
from app.epcis import ids
from app.epcis.models import CaptureJob, EpcisEventId
from app.events.models import CapturedEvent, CapturedEventEpc
from tracecore import epcis
from tracecore.access import Principal, Role
from tracecore.epcis_capture import CapturedEvent as ReadEvent
from tracecore.epcis_capture import read_document, read_event
from tracecore.errors import DomainError, Forbidden, NotFound, ValidationError

ROLLBACK, PROCEED = "rollback", "proceed"
BEHAVIOURS = (ROLLBACK, PROCEED)
#: The party type of an outside system's token, by its role.
PARTY_TYPE = {Role.MERCHANT: "merchant", Role.LOGISTICS: "logistics_company"}
#: The field an identifier's role stands for, in errors.
_FIELDS = {
    "input": "inputEPCList",
    "output": "outputEPCList",
    "class": "quantityList",
    "input_class": "inputQuantityList",
    "output_class": "outputQuantityList",
}


class CaptureLimitExceeded(DomainError):
    """More events than ``GS1-EPCIS-Capture-Limit`` (or more bytes than its file size)."""

    status = 413


@dataclass(frozen=True)
class Limits:
    events: int
    size: int


def require_outside_system(actor: Principal) -> None:
    """Only an outside system's token captures (least privilege: an ordinary merchant's
    token does not, and a system's token does nothing else)."""
    if actor.outside_system is None or actor.role not in PARTY_TYPE:
        raise Forbidden("only an outside system's token captures EPCIS events")


def _problem(kind: str, status: int, detail: str, instance: str) -> dict:
    titles = {
        "ValidationException": "Event invalid",
        "SecurityException": "Access to resource forbidden",
    }
    return {
        "type": f"epcisException:{kind}",
        "title": titles[kind],
        "status": status,
        "detail": detail,
        "instance": instance,
    }


class _Resolver:
    """Checks events' identifiers against what the system may speak for, and resolves units
    of ours to their serials: the products and codes a document names are read first, in
    two queries (:meth:`read`), then every check is a lookup."""

    def __init__(self, session: Session, actor: Principal, uris: epcis.Uris) -> None:
        self.session, self.actor, self.uris = session, actor, uris
        self.owners: dict[str, int] = {}  #: GTIN -> merchant, of the GTINs named
        self.units: dict[tuple[str, str], str] = {}  #: (serial, GTIN) -> lot, of ours named

    def _key(self, uri: str, field: str) -> epcis.Epc | None:
        """What an identifier names here (None: an outside identifier); Forbidden for an
        identifier of this service's that names nothing it gave."""
        ours = uri.startswith(f"{self.uris.base}/") and "/01/" not in uri
        if not ours and "/01/" not in uri:
            return None
        try:
            return epcis.read_epc(uri, self.uris, field=field)
        except ValidationError:
            if ours:
                raise Forbidden(f"{field}: {uri[:80]} is no identifier this service gave") from None
            return None  # a Digital Link we cannot read: an outside identifier

    def read(self, events: list[ReadEvent]) -> None:
        """Read the products and the codes of ours the events name."""
        keys = []
        for read in events:
            for _, uri in read.identifiers:
                try:
                    key = self._key(uri, "epc")
                except Forbidden:
                    continue  # refused when the event is checked
                if key is not None and key.gtin is not None:
                    keys.append(key)
        gtins = sorted({k.gtin for k in keys})
        if gtins:
            rows = self.session.execute(
                sa.select(Product.gtin, Product.merchant_id).where(
                    among(self.session, Product.gtin, gtins)
                )
            )
            self.owners = dict(rows.all())
        serials = sorted({k.serial for k in keys if k.kind == "unit" and k.gtin in self.owners})
        if serials:
            rows = self.session.execute(
                sa.select(TraceCode.serial, Product.gtin, Batch.lot)
                .join(Batch, TraceCode.batch_id == Batch.id)
                .join(Product, Batch.product_id == Product.id)
                .where(among(self.session, TraceCode.serial, serials))
            )
            self.units = {(serial, gtin): lot for serial, gtin, lot in rows}

    def check(self, uri: str, field: str) -> str | None:
        """The serial of ours ``uri`` names (None: an outside identifier or a class);
        Forbidden when it is a thing of ours the system may not speak for."""
        key = self._key(uri, field)
        if key is None:
            return None
        if key.kind == "place":
            mine = PARTY_TYPE[self.actor.role] == key.party_type
            if not (mine and key.party_id == self.actor.party_id):
                raise Forbidden(f"{field}: {uri[:80]} is another party's place")
            return None
        if key.kind == "parcel":
            raise Forbidden(f"{field}: a parcel of this service is named by its devices only")
        owner = self.owners.get(key.gtin)
        if owner is None:
            return None  # a GTIN of no product here: an outside identifier
        if not (self.actor.role is Role.MERCHANT and owner == self.actor.party_id):
            raise Forbidden(f"{field}: GTIN {key.gtin} is another party's product")
        if key.kind != "unit":
            return None
        lot = self.units.get((key.serial, key.gtin))
        found = lot is not None and key.lot in (None, lot)
        return key.serial if found else None

    def identifiers(self, read: ReadEvent) -> list[tuple[str, str, str | None]]:
        """(role, identifier as matched, serial) of each EPC, its places checked too."""
        event = read.event
        for field, uri in (
            ("readPoint", event.read_point),
            ("bizLocation", event.biz_location),
            *(("sourceList", u) for _, u in event.sources),
            *(("destinationList", u) for _, u in event.destinations),
        ):
            if uri is not None:
                self.check(uri, field)
        out: dict[tuple[str, str], tuple[str, str, str | None]] = {}
        for role, uri in read.identifiers:
            key = epcis.canonical_key(uri)
            if (role, key) not in out:
                out[role, key] = (role, key, self.check(uri, _FIELDS.get(role, role)))
        return list(out.values())


def _stored(session: Session, digests: list[str]) -> set[str]:
    """Which of these event hashes are already stored (given out or captured)."""
    if not digests:
        return set()
    query = sa.select(EpcisEventId.digest).where(among(session, EpcisEventId.digest, digests))
    return set(session.scalars(query))


def capture(
    session: Session,
    actor: Principal,
    document,
    behaviour: str,
    uris: epcis.Uris,
    limits: Limits,
    now: datetime,
) -> CaptureJob:
    """Capture ``document`` (parsed JSON) for ``actor``, an outside system: a ValidationError
    for a malformed document, CaptureLimitExceeded for too many events, else the job (each
    event's error in it)."""
    require_outside_system(actor)
    if behaviour not in BEHAVIOURS:
        raise ValidationError(
            "GS1-Capture-Error-Behaviour must be rollback or proceed",
            field="GS1-Capture-Error-Behaviour",
        )
    read = read_document(document)
    if len(read.events) > limits.events:
        raise CaptureLimitExceeded(
            f"the document holds {len(read.events)} events; this service captures at most "
            f"{limits.events} per document (GS1-EPCIS-Capture-Limit)"
        )
    job = CaptureJob(
        capture_id="c" + secrets.token_hex(12),
        token_id=actor.token_id,
        system=actor.outside_system,
        party_type=PARTY_TYPE[actor.role],
        party_id=actor.party_id,
        error_behaviour=behaviour,
        running=True,
        success=True,
        event_count=len(read.events),
        captured=0,
        duplicates=0,
        errors=[],
        created_at=now,
    )
    session.add(job)
    session.flush()
    errors: list[dict] = []
    read_events: list[tuple[int, ReadEvent]] = []
    for index, raw in enumerate(read.events):
        try:
            read_events.append((index, read_event(raw, read.namespaces, uris, now)))
        except ValidationError as exc:
            errors.append(_error(job, index, "ValidationException", 400, exc))
    resolver = _Resolver(session, actor, uris)
    resolver.read([event for _, event in read_events])
    checked: list[tuple[dict, ReadEvent, list]] = []
    for index, event in read_events:
        try:
            named = resolver.identifiers(event)
        except ValidationError as exc:
            errors.append(_error(job, index, "ValidationException", 400, exc))
            continue
        except Forbidden as exc:
            errors.append(_error(job, index, "SecurityException", 403, exc))
            continue
        checked.append((epcis.event_json(event.event, uris), event, named))
    errors.sort(key=lambda e: int(e["instance"].rsplit("-", 1)[1]))
    stored = _stored(session, [_digest(body) for body, _, _ in checked])
    accepted, seen = [], set()
    for body, event, named in checked:
        digest = _digest(body)
        if digest in stored or digest in seen:
            job.duplicates += 1  # an idempotent resend: already stored, not an error
            continue
        seen.add(digest)
        accepted.append((body, event, named))
    if not (errors and behaviour == ROLLBACK):
        _store(session, job, accepted)
        job.captured = len(accepted)
    job.errors, job.success, job.running, job.finished_at = errors, not errors, False, now
    session.flush()
    return job


def _digest(body: dict) -> str:
    return body["eventID"].split(";", 1)[1][:64]


def _error(job: CaptureJob, index: int, kind: str, status: int, exc: DomainError) -> dict:
    return _problem(
        kind, status, f"event {index}: {exc}", f"/epcis/capture/{job.capture_id}#event-{index}"
    )


def _store(session: Session, job: CaptureJob, accepted: list) -> None:
    """The events, their identifiers and their IDs, a few statements for the lot."""
    rows = [
        CapturedEvent(
            digest=_digest(body),
            job_id=job.id,
            system=job.system,
            party_type=job.party_type,
            party_id=job.party_id,
            type=read.event.type,
            action=read.event.action,
            event_time=read.event.event_time,
            record_time=read.event.record_time,
            biz_step=read.event.biz_step,
            disposition=read.event.disposition,
            read_point=read.event.read_point,
            biz_location=read.event.biz_location,
            our_type=read.our_type,
            transformation_id=read.event.transformation_id,
            body=body,
        )
        for body, read, _ in accepted
    ]
    session.add_all(rows)
    session.flush()
    session.add_all(
        CapturedEventEpc(captured_event_id=row.id, epc=epc, role=role, serial=serial)
        for row, (_, _, named) in zip(rows, accepted, strict=True)
        for role, epc, serial in named
    )
    ids.record(session, [(row.digest, "captured", row.id) for row in rows])


# -- reading the jobs ---------------------------------------------------------------------------


def _visible(actor: Principal):
    """The jobs ``actor`` may read: an outside system its own (its token's); a party its
    systems'; authorities every one (regulators those of parties in their jurisdiction)."""
    if actor.outside_system is not None:
        return CaptureJob.token_id == actor.token_id
    if actor.role in PARTY_TYPE:
        return sa.and_(
            CaptureJob.party_type == PARTY_TYPE[actor.role], CaptureJob.party_id == actor.party_id
        )
    return authz.parties_in_jurisdiction(actor, CaptureJob.party_type, CaptureJob.party_id)


def jobs(session: Session, actor: Principal, limit: int) -> list[CaptureJob]:
    """The newest capture jobs ``actor`` may read."""
    query = sa.select(CaptureJob).where(_visible(actor)).order_by(CaptureJob.id.desc())
    return list(session.scalars(query.limit(limit)))


def job(session: Session, actor: Principal, capture_id: str) -> CaptureJob:
    """One capture job; NotFound, or Forbidden for another's."""
    found = session.scalar(sa.select(CaptureJob).where(CaptureJob.capture_id == capture_id))
    if found is None:
        raise NotFound(f"no capture job {capture_id[:40]}")
    visible = sa.select(CaptureJob.id).where(_visible(actor), CaptureJob.id == found.id)
    if session.scalar(visible) is not None:
        return found
    raise Forbidden("this capture job is not one you may read")


def job_json(job: CaptureJob) -> dict:
    """The job in the standard's shape (and our counts)."""
    out = {
        "captureID": job.capture_id,
        "createdAt": epcis.utc_time(job.created_at),
        "running": job.running,
        "success": job.success,
        "captureErrorBehaviour": job.error_behaviour,
        "errors": job.errors,
        "eventCount": job.event_count,
        "captured": job.captured,
        "duplicates": job.duplicates,
        "outsideSystem": job.system,
    }
    if job.finished_at is not None:
        out["finishedAt"] = epcis.utc_time(job.finished_at)
    return out
