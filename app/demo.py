"""A small, obviously fictitious demo data set so a newcomer sees something at once.

Identifiers are computed with the real check-digit rules, on made-up bodies: GTINs under an
unassigned GS1 China company prefix, USCCs with invented organisation codes.
"""

from __future__ import annotations

import secrets
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.auth.operations import create_token, create_user
from app.catalog import operations as catalog
from app.catalog.models import InspectionResult, ProductCategory
from app.codes.operations import issue_codes
from app.events.models import DeviceKind
from app.events.registry import OWNER_OF_KIND, register_device
from app.parties import operations as parties
from app.parties.models import Merchant, MerchantKind
from config import Config
from tracecore.access import OPERATOR, Role
from tracecore.gs1 import gtin_check_digit
from tracecore.uscc import uscc_check_char


def _uscc(body17: str) -> str:
    return body17 + uscc_check_char(body17)


def _gtin(body12: str) -> str:
    return body12 + str(gtin_check_digit(body12))


def _resident_id(body17: str) -> str:
    """A resident ID number with its GB 11643 check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(body17, weights, strict=True))
    return body17 + "10X98765432"[total % 11]


MERCHANTS = [
    (
        "常州溧阳天目湖茶业有限公司",
        _uscc("91320481MA1DEM001"),
        MerchantKind.PRODUCER,
        "320481",
        31.4339,
        119.4836,
    ),
    (
        "常州新北区优选生鲜网店",
        _uscc("92320411MA1DEM002"),
        MerchantKind.SHOP,
        "320411",
        31.8270,
        119.9740,
    ),
    (
        "肇庆端州区鼎湖山货专营店",
        _uscc("92441202MA5DEM003"),
        MerchantKind.SHOP,
        "441202",
        23.0512,
        112.4720,
    ),
]
PRODUCTS = [  # (merchant index, GTIN body, name, category)
    (0, "690000000001", "天目湖白茶 250g", ProductCategory.EDIBLE_AGRICULTURAL),
    (0, "690000000002", "溧阳青虾礼盒 1kg", ProductCategory.EDIBLE_AGRICULTURAL),
    (1, "690000000003", "有机大米 5kg", ProductCategory.FOOD),
    (2, "690000000004", "鼎湖山泉饮用水 550ml", ProductCategory.FOOD),
]
ORIGINS = {
    0: ("江苏省常州市溧阳市天目湖镇", 31.3392, 119.4483),
    1: ("江苏省常州市溧阳市", 31.4167, 119.4833),
    2: ("黑龙江省五常市", 44.9319, 127.1672),
    3: ("广东省肇庆市鼎湖区", 23.1578, 112.5642),
}
CODES_PER_BATCH = 24
DEMO_USERS = [
    ("changzhou", Role.REGULATOR, "3204", "常州市市场监管局 Changzhou regulator"),
    ("zhaoqing", Role.REGULATOR, "4412", "肇庆市市场监管局 Zhaoqing regulator"),
    ("admin", Role.ADMIN, "", "系统管理员 Admin"),
]
#: The demo company's couriers: (name, ID number, phone, home district, lat, lon). Two work in
#: Changzhou's city districts, one in Liyang, one in Zhaoqing (the Zhaoqing shop's parcels).
COURIERS = [
    ("王小明", "320402199001010017", "13800000001", "320411", 31.8312, 119.9695),
    ("李强", _resident_id("32040219880512003"), "13800000002", "320402", 31.7795, 119.9822),
    ("陈静", _resident_id("32048119920315004"), "13800000003", "320481", 31.4201, 119.4829),
    ("黄伟", _resident_id("44120219900708005"), "13800000004", "441202", 23.0489, 112.4683),
]


def seed(session: Session, config: Config) -> list[str] | None:
    """Create the demo data unless merchants exist; returns lines to print, or None."""
    if session.scalar(sa.select(sa.func.count()).select_from(Merchant)):
        return None
    merchants = [
        parties.register_merchant(
            session, OPERATOR, name=n, uscc=u, kind=k, region_code=r, lat=lat, lon=lon
        )
        for n, u, k, r, lat, lon in MERCHANTS
    ]
    company = parties.register_logistics_company(
        session,
        OPERATOR,
        name="常州示范快递有限公司",
        uscc=_uscc("91320400MA1DEM004"),
        region_code="320400",
        lat=31.8107,
        lon=119.9741,
    )
    couriers = [
        parties.register_courier(
            session,
            OPERATOR,
            config.SECRET_KEY,
            name=name,
            id_number=id_number,
            phone=phone,
            company_id=company.id,
            region_code=region,
            lat=lat,
            lon=lon,
        )
        for name, id_number, phone, region, lat, lon in COURIERS
    ]
    # A shelf and a POS scanner per merchant, a handheld per courier: the device simulator
    # (`flask --app wsgi devices simulate`) drives them; their secrets derive from SECRET_KEY.
    owners = [(DeviceKind.SHELF_SCANNER, m.id) for m in merchants]
    owners += [(DeviceKind.POS_SCANNER, m.id) for m in merchants]
    owners += [(DeviceKind.COURIER_HANDHELD, c.id) for c in couriers]
    for kind, owner_id in owners:
        register_device(
            session,
            OPERATOR,
            config.SECRET_KEY,
            kind=kind,
            owner_type=OWNER_OF_KIND[kind],
            owner_id=owner_id,
        )
    lines = []
    for i, (m, body, name, category) in enumerate(PRODUCTS):
        product = catalog.register_product(
            session,
            OPERATOR,
            gtin=_gtin(body),
            name=name,
            category=category,
            merchant_id=merchants[m].id,
        )
        place, lat, lon = ORIGINS[i]
        batch = catalog.register_batch(
            session,
            OPERATOR,
            product_id=product.id,
            lot=f"2026{i + 1:02d}A",
            produced_on=date(2026, 10, 1),
            expires_on=date(2027, 10, 1),
            origin_name=place,
            origin_lat=lat,
            origin_lon=lon,
            quantity=1000,
            certificates=[
                catalog.CertificateInput(
                    issuer="常州市产品质量监督检验所",
                    number=f"CZJ-2026-{i + 1:04d}",
                    result=InspectionResult.PASSED,
                    issued_on=date(2026, 10, 8),
                    report_sha256=catalog.report_digest(f"demo report {i}".encode()),
                )
            ],
        )
        issued = issue_codes(
            session, OPERATOR, batch.id, CODES_PER_BATCH, max_count=config.MAX_CODES_PER_REQUEST
        )
        lines.append(f"batch {batch.id} {name}: first code {issued.serials[0]}")
    lines.append(
        f"devices: {2 * len(merchants)} shop scanners, {len(couriers)} courier handhelds "
        "(flask --app wsgi devices simulate drives them)"
    )
    token, _ = create_token(session, Role.ADMIN, label="demo")
    lines.append(f"admin token (shown once): {token}")
    # People for the workspace (/workspace/): a regulator per demo city and an admin.
    for username, role, jurisdiction, name in DEMO_USERS:
        password = secrets.token_urlsafe(9)
        create_user(session, username, password, role, jurisdiction=jurisdiction, display_name=name)
        lines.append(f"workspace user {username} ({name}), password (shown once): {password}")
    return lines
