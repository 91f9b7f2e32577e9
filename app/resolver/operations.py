"""The resolver's use cases: which thing a Digital Link names and the links it has, the
description file, and the public facts those links lead to. Reads only; nothing here
writes or commits."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from app.catalog.models import Batch, BatchStatus, Product
from app.codes.models import TraceCode
from app.timefmt import rfc3339_beijing
from config import Config
from tracecore import resolver
from tracecore.epcis import Uris
from tracecore.errors import NotFound
from tracecore.gs1 import DigitalLink, digital_link_uri
from tracecore.serials import normalize_serial

PIP = resolver.GS1_VOC + "pip"
MASTER_DATA = resolver.GS1_VOC + "masterData"
TRACEABILITY = resolver.GS1_VOC + "traceability"
CERTIFICATION_INFO = resolver.GS1_VOC + "certificationInfo"
RECALL_STATUS = resolver.GS1_VOC + "recallStatus"
#: Every link type some thing of ours has (the description file and the docs list them).
LINK_TYPES = (PIP, MASTER_DATA, TRACEABILITY, CERTIFICATION_INFO, RECALL_STATUS)

_HTML, _JSON, _EPCIS = "text/html", "application/json", "application/ld+json"
_TOKEN_NEEDED = "; needs the token of an authority or of the product's merchant"


@dataclass(frozen=True)
class Item:
    """The thing a Digital Link names: a product (GTIN), a batch of it (lot) or a unit
    (serial), with the rows its links point to."""

    gtin14: str
    product_id: int
    product_name: str
    lot: str | None = None
    batch_id: int | None = None
    serial: str | None = None
    #: The link's own lot: None when a unit's link leaves it out (its anchor does too).
    link_lot: str | None = None


# Statements built once (as the scan's, app.consumer.units): building them again on every
# request cost more than running them.
_UNIT = (
    sa.select(TraceCode.serial, Batch.id, Batch.lot, Product.id, Product.gtin, Product.name)
    .join(Batch, TraceCode.batch_id == Batch.id)
    .join(Product, Batch.product_id == Product.id)
    .where(TraceCode.serial == sa.bindparam("serial"))
)
_PRODUCT = sa.select(Product.id, Product.name).where(Product.gtin == sa.bindparam("gtin"))
_LOT = (
    sa.select(Product.id, Product.name, Batch.id.label("batch_id"))
    .join(Batch, Batch.product_id == Product.id)
    .where(Product.gtin == sa.bindparam("gtin"), Batch.lot == sa.bindparam("lot"))
)


def find_item(session: Session, link: DigitalLink) -> Item | None:
    """The product, batch or unit ``link`` names, or None when there is none (a GTIN or lot
    never registered, a serial never issued, or a real serial under another product's GTIN
    or lot: a forged link, which names nothing)."""
    if link.serial is not None:
        row = session.execute(_UNIT, {"serial": normalize_serial(link.serial)}).first()
        if row is None or row.gtin != link.gtin14 or link.lot not in (None, row.lot):
            return None
        serial, batch_id, lot, product_id, _, name = row
        return Item(link.gtin14, product_id, name, lot, batch_id, serial, link.lot)
    if link.lot is None:
        row = session.execute(_PRODUCT, {"gtin": link.gtin14}).first()
        return None if row is None else Item(link.gtin14, row.id, row.name)
    row = session.execute(_LOT, {"gtin": link.gtin14, "lot": link.lot}).first()
    if row is None:
        return None
    return Item(link.gtin14, row.id, row.name, link.lot, row.batch_id, None, link.lot)


def _root(config: Config) -> str:
    return f"{config.RESOLVER_SCHEME}://{config.RESOLVER_HOST}"


def anchor(item: Item, config: Config) -> str:
    """The Digital Link URI of the thing itself, canonical (GTIN-14, the unit's serial as
    issued), with the link's own lot or none."""
    return digital_link_uri(
        config.RESOLVER_HOST, item.gtin14, item.link_lot, item.serial, scheme=config.RESOLVER_SCHEME
    )


def entries(item: Item, config: Config) -> list[resolver.Entry]:
    """The links of ``item`` and of each level above it (a unit's batch, the product), the
    asked thing first; each level's default link is its first."""
    root, uris = _root(config), Uris(config.RESOLVER_HOST, config.RESOLVER_SCHEME)
    found = []
    if item.serial is not None:
        page = anchor(item, config)
        epc = uris.unit(item.gtin14, item.lot, item.serial)
        found.append(
            resolver.Entry(
                page,
                f"{item.product_name}, unit {item.serial}",
                (
                    resolver.Link(resolver.DEFAULT_LINK, page, "商品追溯页 Trace page"),
                    resolver.Link(PIP, page + "?lang=zh", "商品追溯页", _HTML, ("zh",)),
                    resolver.Link(PIP, page + "?lang=en", "Trace page", _HTML, ("en",)),
                    *_batch_links(root, item),
                    resolver.Link(
                        TRACEABILITY,
                        f"{root}/epcis/epcs/{epc}/events",
                        "EPCIS events of this unit" + _TOKEN_NEEDED,
                        _EPCIS,
                    ),
                ),
            )
        )
    if item.batch_id is not None:
        lot_uri = uris.lot(item.gtin14, item.lot)
        details = f"{root}/api/v1/batches/{item.batch_id}"
        found.append(
            resolver.Entry(
                lot_uri,
                f"{item.product_name}, batch {item.lot}",
                (
                    resolver.Link(resolver.DEFAULT_LINK, details, "Batch details"),
                    resolver.Link(MASTER_DATA, details, "Batch details (JSON)", _JSON),
                    *_batch_links(root, item),
                    resolver.Link(
                        TRACEABILITY,
                        f"{root}/epcis/epcs/{lot_uri}/events",
                        "EPCIS events of this batch" + _TOKEN_NEEDED,
                        _EPCIS,
                    ),
                ),
            )
        )
    details = f"{root}/api/v1/products/{item.product_id}"
    found.append(
        resolver.Entry(
            digital_link_uri(
                config.RESOLVER_HOST, item.gtin14, None, None, scheme=config.RESOLVER_SCHEME
            ),
            item.product_name,
            (
                resolver.Link(resolver.DEFAULT_LINK, details, "Product details"),
                resolver.Link(MASTER_DATA, details, "Product details (JSON)", _JSON),
                resolver.Link(
                    RECALL_STATUS,
                    f"{root}/api/v1/products/{item.product_id}/recall-status",
                    "Recalls of this product's batches 召回情况",
                    _JSON,
                ),
            ),
        )
    )
    return found


def _batch_links(root: str, item: Item) -> tuple[resolver.Link, ...]:
    return (
        resolver.Link(
            CERTIFICATION_INFO,
            f"{root}/api/v1/batches/{item.batch_id}/certificates",
            "Inspection certificates 检验检疫证明",
            _JSON,
        ),
        resolver.Link(
            RECALL_STATUS,
            f"{root}/api/v1/batches/{item.batch_id}/recall-status",
            "Recall status 召回状态",
            _JSON,
        ),
    )


def description(config: Config) -> dict:
    """The resolver description file (``/.well-known/gs1resolver``)."""
    return resolver.description_document(
        name=f"{config.ISSUER_NAME} {config.ISSUER_NAME_EN}",
        root=_root(config),
        contact={
            "fn": config.ISSUER_NAME,
            "url": config.ISSUER_URL,
            "hasTelephone": f"tel:{config.ISSUER_HOTLINE}",
        },
    )


# -- what the links lead to ---------------------------------------------------------------------


def _batch(session: Session, batch_id: int) -> Batch:
    batch = session.scalars(
        sa.select(Batch)
        .where(Batch.id == batch_id)
        .options(selectinload(Batch.product), selectinload(Batch.certificates))
    ).one_or_none()
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    return batch


def _batch_head(batch: Batch) -> dict:
    return {
        "id": batch.id,
        "gtin": batch.product.gtin,
        "lot": batch.lot,
        "product": batch.product.name,
    }


def certificates(session: Session, batch_id: int) -> dict:
    """A batch's inspection certificates: public facts (issuer, number, result, date, and
    the SHA-256 of the report, so a copy can be checked)."""
    batch = _batch(session, batch_id)
    return {
        "batch": _batch_head(batch),
        "certificates": [
            {
                "issuer": c.issuer,
                "number": c.number,
                "result": c.result.value,
                "issued_on": c.issued_on.isoformat(),
                "report_sha256": c.report_sha256,
            }
            for c in sorted(batch.certificates, key=lambda c: (c.issued_on, c.id))
        ],
    }


def _recall(batch: Batch) -> dict:
    recalled = batch.status is BatchStatus.RECALLED
    return {
        "recalled": recalled,
        "recalled_at": rfc3339_beijing(batch.recalled_at)
        if recalled and batch.recalled_at
        else None,
        "reason": batch.recall_reason if recalled else None,
    }


def _recall_words(lot: str, recall: dict) -> dict:
    """A recall said in plain words, Chinese and English."""
    if not recall["recalled"]:
        return {"zh": f"批次 {lot} 未被召回。", "en": f"Batch {lot} has not been recalled."}
    day = (recall["recalled_at"] or "")[:10]
    reason = recall["reason"] or ""
    return {
        "zh": f"批次 {lot} 已于 {day} 被召回：{reason}。请勿食用或使用。",
        "en": f"Batch {lot} was recalled on {day}: {reason}. Do not eat or use it.",
    }


def batch_recall_status(session: Session, batch_id: int) -> dict:
    """Whether a batch is recalled, since when (RFC 3339, Beijing time) and why, with the
    same said in plain words."""
    batch = _batch(session, batch_id)
    recall = _recall(batch)
    return {"batch": _batch_head(batch), **recall, "message": _recall_words(batch.lot, recall)}


def product_recall_status(session: Session, product_id: int) -> dict:
    """Whether any batch of a product is recalled: each recalled batch with its date and
    reason (a product has few batches; a recall names one)."""
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"no product with id {product_id}")
    recalled = session.scalars(
        sa.select(Batch)
        .where(Batch.product_id == product_id, Batch.status == BatchStatus.RECALLED)
        .order_by(Batch.recalled_at, Batch.id)
    ).all()
    batches = [{"id": b.id, "lot": b.lot, **_recall(b)} for b in recalled]
    if batches:
        lots = "、".join(b["lot"] for b in batches)
        message = {
            "zh": f"{product.name} 有 {len(batches)} 个批次被召回：{lots}。",
            "en": f"{len(batches)} batch(es) of {product.name} recalled: "
            + ", ".join(b["lot"] for b in batches)
            + ".",
        }
    else:
        message = {
            "zh": f"{product.name} 没有批次被召回。",
            "en": f"No batch of {product.name} is recalled.",
        }
    return {
        "product": {"id": product.id, "gtin": product.gtin, "name": product.name},
        "recalled": bool(batches),
        "batches": batches,
        "message": message,
    }
