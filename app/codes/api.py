"""/api/v1 endpoints for trace codes: issuance, lookup, labels."""

from __future__ import annotations

from flask import Blueprint, Response, request

from app import authz, labels, serialize
from app.catalog.operations import get_batch
from app.codes import operations
from app.codes.models import TraceCode
from app.credit.operations import public_account
from app.errors import ApiError
from app.label_font import load_face
from app.label_sheet import iter_label_sheet_pdf
from app.schemas import IssueCodesIn
from app.web import MAX_ID, db, parse_body, principal, query_int, settings, unit_of_work
from tracecore.gs1 import digital_link_uri, element_string

bp = Blueprint("codes", __name__)

IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
STREAM_SLICE = 10_000


def uri_prefix(gtin14: str, lot: str) -> str:
    """Everything of a unit's Digital Link URI before the serial (serials need no escaping)."""
    cfg = settings()
    return (
        digital_link_uri(cfg.RESOLVER_HOST, gtin14, lot, None, scheme=cfg.RESOLVER_SCHEME) + "/21/"
    )


def code_uri(code: TraceCode) -> str:
    return uri_prefix(code.batch.product.gtin, code.batch.lot) + code.serial


def code_answer(code: TraceCode) -> dict:
    """What anyone may know about a unit, with its merchant's credit grade, list status and
    credit commitment (every public answer about a product shows them; at most
    ``PUBLIC_CREDIT_MAX_AGE_S`` old)."""
    answer = serialize.code(code, code_uri(code))
    merchant = ("merchant", code.batch.product.merchant_id)
    cfg = settings()
    account = public_account(db(), merchant, cfg.policy, cfg.PUBLIC_CREDIT_MAX_AGE_S)
    answer["merchant"]["credit"] = serialize.public_credit(account)
    return answer


@bp.post("/batches/<id:batch_id>/codes")
@unit_of_work
def issue_codes(batch_id: int):
    """Issue codes; JSON by default, ``Accept: text/csv`` streams ``serial,uri`` lines."""
    body = parse_body(IssueCodesIn)
    issued = operations.issue_codes(
        db(),
        principal(),
        batch_id,
        body.count,
        max_count=settings().MAX_CODES_PER_REQUEST,
        allow_over_quantity=body.allow_over_quantity,
        policy=settings().policy,
    )
    prefix = uri_prefix(issued.batch.product.gtin, issued.batch.lot)
    serials = issued.serials
    slices = (serials[i : i + STREAM_SLICE] for i in range(0, len(serials), STREAM_SLICE))
    headers = {"X-Issuance-Id": str(issued.issuance.id)}

    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":

        def csv_lines():
            yield "serial,uri\n"
            for part in slices:
                yield "".join(f"{s},{prefix}{s}\n" for s in part)

        return Response(csv_lines(), 201, headers, mimetype="text/csv")

    def json_chunks():
        yield (
            f'{{"batch_id":{batch_id},"issuance_id":{issued.issuance.id},'
            f'"count":{len(serials)},"codes":['
        )
        sep = ""
        for part in slices:
            yield sep + ",".join(f'{{"serial":"{s}","uri":"{prefix}{s}"}}' for s in part)
            sep = ","
        yield "]}"

    return Response(json_chunks(), 201, headers, mimetype="application/json")


@bp.get("/codes/<serial>")
def get_code(serial: str):
    """Public: what anyone scanning the unit may know about it."""
    return code_answer(operations.find_code(db(), serial))


@bp.get("/codes")
def lookup_code():
    """``?uri=<Digital Link URI>``: the same answer as by serial."""
    uri = request.args.get("uri", "")
    if not uri:
        raise ApiError(422, "validation_failed", "give the Digital Link URI as ?uri=", field="uri")
    return code_answer(operations.find_code_by_uri(db(), uri))


def _label(serial: str) -> tuple[TraceCode, str, str]:
    code = operations.find_code(db(), serial)
    b = code.batch
    return code, code_uri(code), element_string(b.product.gtin, b.lot, code.serial)


@bp.get("/codes/<serial>/label.png")
def label_png(serial: str):
    _, uri, _ = _label(serial)
    return Response(labels.qr_png(uri), mimetype="image/png", headers=IMMUTABLE)


@bp.get("/codes/<serial>/label.svg")
def label_svg(serial: str):
    _, uri, _ = _label(serial)
    return Response(labels.qr_svg(uri), mimetype="image/svg+xml", headers=IMMUTABLE)


@bp.get("/codes/<serial>/barcode.png")
def barcode_png(serial: str):
    _, _, elements = _label(serial)
    return Response(labels.gs1_128_png(elements), mimetype="image/png", headers=IMMUTABLE)


@bp.get("/codes/<serial>/barcode.svg")
def barcode_svg(serial: str):
    _, _, elements = _label(serial)
    return Response(labels.gs1_128_svg(elements), mimetype="image/svg+xml", headers=IMMUTABLE)


@bp.get("/batches/<id:batch_id>/labels.pdf")
def labels_pdf(batch_id: int):
    """A printable A4 sheet of the batch's labels (``?offset=&limit=`` for large batches),
    streamed page by page. Only the batch's merchant and authorities: the sheet lists every
    serial of the batch."""
    actor = principal()
    batch = get_batch(db(), batch_id)
    authz.require(db(), actor, batch, "this batch")
    # A code's place in the batch (no batch holds more codes than there are ids).
    offset = query_int("offset", 0, minimum=0, maximum=MAX_ID)
    limit = query_int(
        "limit", settings().MAX_LABELS_PER_SHEET, maximum=settings().MAX_LABELS_PER_SHEET
    )
    serials = operations.codes_of_batch(db(), batch_id, offset, limit)
    gtin, lot, name = batch.product.gtin, batch.lot, batch.product.name
    prefix = uri_prefix(gtin, lot)
    items = labels.batch_labels(prefix, gtin, lot, name, serials)
    load_face(settings().LABEL_FONT)  # a missing font fails here, not inside the stream
    # Streamed: each page leaves as soon as it is drawn (the labels need no database).
    return Response(
        iter_label_sheet_pdf(items, font_path=settings().LABEL_FONT),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="labels-batch-{batch_id}.pdf"'},
    )
