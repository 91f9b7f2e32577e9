"""JSON forms of the models, shared by every view that shows them. No personal data leaves
here unless the caller says the viewer may see it."""

from __future__ import annotations

import re

import orjson

from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.db import lat_lon
from app.parties.models import Courier, LogisticsCompany, Merchant
from tracecore.identity import mask_name

# -- JSON bodies -------------------------------------------------------------------------------

#: Types orjson would write otherwise than Flask's provider (dates and times as HTTP dates,
#: dataclasses, subclasses of str, int, dict and list) are handed back, and then refused.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_APPEND_NEWLINE
)
#: A number orjson may write otherwise than Python: with an exponent (orjson 1e16 and 1e-7,
#: Python 1e+16 and 1e-07) or below 1e-4 (orjson 0.00001, Python 1e-05). Also matches inside
#: strings, which only costs the slow path. (A literal first: ``[0-9]e`` took 50 us a scan.)
_EXPONENT = re.compile(rb"e[-+0-9]")


def json_body(obj) -> bytes | None:
    """``obj`` as the app's JSON provider writes it in a response (compact, UTF-8, keys in
    their order, a final newline), by orjson in a fraction of the time; None where orjson
    might write other bytes (other types than str, int, float, bool, None, dict with str
    keys, list and tuple; numbers written differently; lone surrogates): the caller then
    uses the provider. Not-a-number floats are not checked: orjson writes them as null,
    where the provider writes NaN (which is not JSON); the answers given here have none."""
    try:
        body = orjson.dumps(obj, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        return None
    return None if b"0.0000" in body or _EXPONENT.search(body) else body


def _point(geometry) -> dict | None:
    found = lat_lon(geometry)
    return None if found is None else {"lat": found[0], "lon": found[1]}


def merchant(m: Merchant) -> dict:
    return {
        "id": m.id,
        "name": m.name,
        "uscc": m.uscc,
        "kind": m.kind.value,
        "region_code": m.region_code,
        "location": _point(m.location),
    }


def logistics_company(c: LogisticsCompany) -> dict:
    return {
        "id": c.id,
        "name": c.name,
        "uscc": c.uscc,
        "region_code": c.region_code,
        "location": _point(c.location),
    }


def courier(c: Courier, *, full_name: bool) -> dict:
    """ID number and phone are only ever shown masked; the name only to those who need it."""
    return {
        "id": c.id,
        "name": c.name if full_name else mask_name(c.name),
        "id_number": c.id_number_masked,
        "phone": c.phone_masked,
        "company_id": c.company_id,
        "region_code": c.region_code,
    }


def product(p: Product) -> dict:
    return {
        "id": p.id,
        "gtin": p.gtin,
        "name": p.name,
        "category": p.category.value,
        "merchant_id": p.merchant_id,
    }


def batch(b: Batch) -> dict:
    origin = lat_lon(b.origin)
    return {
        "id": b.id,
        "product_id": b.product_id,
        "lot": b.lot,
        "produced_on": b.produced_on.isoformat(),
        "expires_on": b.expires_on.isoformat(),
        "origin": {"name": b.origin_name, "lat": origin[0], "lon": origin[1]},
        "quantity": b.quantity,
        "issued_count": b.issued_count,
        "status": b.status.value,
        "certificates": [
            {
                "issuer": c.issuer,
                "number": c.number,
                "result": c.result.value,
                "issued_on": c.issued_on.isoformat(),
                "report_sha256": c.report_sha256,
            }
            for c in b.certificates
        ],
    }


def code(c: TraceCode, uri: str) -> dict:
    b = c.batch
    return {
        "serial": c.serial,
        "uri": uri,
        "state": c.state.value,
        "product": product(b.product),
        "batch": batch(b),
        "merchant": merchant(b.product.merchant),
    }


def public_credit(found) -> dict:
    """A party's credit as every public answer about a product shows it (an
    :class:`app.credit.operations.PublicCredit`: final records only)."""
    signed = found.commitment_signed_at
    return {
        "score": found.score,
        "grade": found.grade,
        "list": found.list,
        "commitment_signed_at": signed.isoformat().replace("+00:00", "Z") if signed else None,
    }
