"""Issuing trace codes and finding them again.

Issuance is one transaction: the batch's issued count is raised with a single conditional
UPDATE (so two concurrent requests can never both pass the quantity check), then the codes are
bulk-loaded (COPY on PostgreSQL, one executemany on SQLite) inside a savepoint. If a random
serial collides with a stored one (about 1e-12 per million), the savepoint is rolled back and
the codes are drawn again; on any other error the caller's rollback leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from app import authz
from app.catalog.models import Batch, BatchStatus, Product
from app.codes.models import CodeState, Issuance, TraceCode
from app.credit.operations import accounts as credit_accounts
from tracecore.access import Principal, Role
from tracecore.credit import Policy
from tracecore.errors import Conflict, Forbidden, NotFound, ValidationError
from tracecore.gs1 import digital_link_uri, parse_digital_link, validate_serial
from tracecore.serials import new_serials, normalize_serial

#: Rows per COPY write / executemany call: bounds memory and paces progress reports.
CHUNK = 50_000
COLLISION_RETRIES = 3

Progress = Callable[[int], None]


@dataclass(frozen=True)
class IssuedCodes:
    batch: Batch
    issuance: Issuance
    serials: list[str]


def issue_codes(
    session: Session,
    actor: Principal,
    batch_id: int,
    count: int,
    *,
    max_count: int,
    allow_over_quantity: bool = False,
    progress: Progress | None = None,
    serial_source: Callable[[int], list[str]] = new_serials,
    policy: Policy | None = None,
) -> IssuedCodes:
    """Issue ``count`` new trace codes for a batch, all or nothing.

    A merchant issues only for its own products; the batch's issued total may not pass its
    quantity unless ``allow_over_quantity`` says so; a recalled batch gets no new codes.
    """
    actor.require(Role.ADMIN, Role.REGULATOR, Role.MERCHANT)
    batch = session.get(Batch, batch_id, options=[joinedload(Batch.product)])
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    authz.require(session, actor, batch, "this batch")
    if count <= 0:
        raise ValidationError("count must be at least 1", field="count")
    if count > max_count:
        raise ValidationError(f"count may be at most {max_count} per request", field="count")
    if batch.status is BatchStatus.RECALLED:
        raise Conflict("the batch is recalled; no new codes can be issued for it")
    merchant = ("merchant", batch.product.merchant_id)
    policy = policy or Policy()
    if credit_accounts(session, {merchant}, policy)[merchant].standing.list == "black":
        raise Forbidden(
            "the merchant is on the black list (失信黑名单) and may not issue new trace codes"
        )

    reserve = (
        sa.update(Batch)
        .where(Batch.id == batch_id)
        .values(issued_count=Batch.issued_count + count)
        .execution_options(synchronize_session=False)
    )
    if not allow_over_quantity:
        reserve = reserve.where(Batch.issued_count + count <= Batch.quantity)
    if session.execute(reserve).rowcount != 1:
        session.refresh(batch)
        raise Conflict(
            f"issuing {count} codes would pass the batch quantity of {batch.quantity} "
            f"({batch.issued_count} already issued); send allow_over_quantity=true to insist",
            field="count",
            details={"quantity": batch.quantity, "issued": batch.issued_count},
        )

    issuance = Issuance(batch_id=batch_id, count=count, token_id=actor.token_id)
    session.add(issuance)
    session.flush()
    serials = _insert_codes(session, batch_id, issuance.id, count, progress, serial_source)
    session.refresh(batch)
    return IssuedCodes(batch, issuance, serials)


def _insert_codes(
    session: Session,
    batch_id: int,
    issuance_id: int,
    count: int,
    progress: Progress | None,
    serial_source: Callable[[int], list[str]],
) -> list[str]:
    integrity_error = session.get_bind().dialect.dbapi.IntegrityError
    for _attempt in range(COLLISION_RETRIES):
        serials = serial_source(count)
        try:
            with session.begin_nested():
                # Asking for the connection inside the block is what emits the SAVEPOINT.
                connection = session.connection()
                _bulk_load(connection, serials, batch_id, issuance_id, progress)
            return serials
        except integrity_error:
            continue  # a serial collided with a stored one: draw them all again
    raise Conflict("could not draw unique serials; try again")


def _bulk_load(
    connection: sa.Connection,
    serials: list[str],
    batch_id: int,
    issuance_id: int,
    progress: Progress | None,
) -> None:
    """Write the rows in chunks: COPY on PostgreSQL, executemany on SQLite."""
    raw = connection.connection.driver_connection
    with contextlib.ExitStack() as stack:
        if connection.dialect.name == "postgresql":
            copy = stack.enter_context(
                stack.enter_context(raw.cursor()).copy(
                    "COPY trace_codes (serial, batch_id, issuance_id, state) FROM STDIN"
                )
            )
            row_end = f"\t{batch_id}\t{issuance_id}\t{CodeState.ISSUED.value}\n"

            def write(chunk: list[str]) -> None:
                copy.write(row_end.join(chunk) + row_end)
        else:
            sql = (
                "INSERT INTO trace_codes (serial, batch_id, issuance_id, state) "
                f"VALUES (?, {int(batch_id)}, {int(issuance_id)}, '{CodeState.ISSUED.value}')"
            )

            def write(chunk: list[str]) -> None:
                raw.executemany(sql, ((s,) for s in chunk))

        for start in range(0, len(serials), CHUNK):
            write(serials[start : start + CHUNK])
            if progress:
                progress(min(start + CHUNK, len(serials)))


def code_uri(scheme: str, host: str, gtin14: str, lot: str, serial: str) -> str:
    """The canonical GS1 Digital Link URI of a unit."""
    return digital_link_uri(host, gtin14, lot, serial, scheme=scheme)


def find_code(session: Session, serial: str) -> TraceCode:
    """A trace code by its serial, with batch, product, merchant and certificates loaded in
    one query (a batch has a handful of certificates). The serial is read as typed
    (:func:`~tracecore.serials.normalize_serial`: case, spaces, dashes, confusable digits)."""
    serial = validate_serial(normalize_serial(serial))
    code = (
        session.scalars(
            sa.select(TraceCode)
            .where(TraceCode.serial == serial)
            .options(
                joinedload(TraceCode.batch).joinedload(Batch.product).joinedload(Product.merchant),
                joinedload(TraceCode.batch).joinedload(Batch.certificates),
            )
        )
        .unique()
        .one_or_none()
    )
    if code is None:
        raise NotFound("no trace code with this serial; it was never issued", field="serial")
    return code


def find_code_by_uri(session: Session, uri: str) -> TraceCode:
    """A trace code by its Digital Link URI (or path). The GTIN and lot in the URI must be
    the code's own: a real serial under another product's GTIN is a forged link."""
    link = parse_digital_link(uri)
    if link.serial is None:
        raise ValidationError("the URI has no serial (AI 21)", field="uri")
    code = find_code(session, link.serial)
    if code.batch.product.gtin != link.gtin14 or (
        link.lot is not None and code.batch.lot != link.lot
    ):
        raise NotFound(
            "this serial was not issued for the product and lot in the link", field="uri"
        )
    return code


def codes_of_batch(session: Session, batch_id: int, offset: int, limit: int) -> list[str]:
    """Serials of a batch in a stable order, one page."""
    return list(
        session.scalars(
            sa.select(TraceCode.serial)
            .where(TraceCode.batch_id == batch_id)
            .order_by(TraceCode.serial)
            .offset(offset)
            .limit(limit)
        )
    )
