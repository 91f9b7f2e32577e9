"""STAND-INS until helper H9's ``beijing`` filter and ``label`` helper land on main: the
lead replaces this module with theirs at merge. Kept tiny on purpose.

``beijing``: an aware datetime as "2026-12-02 05:12 北京时间". ``label(kind, value)``: an
identifier (an anomaly type, a state, an event type, a party type) as people read it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app.workspace.session import bp

_BEIJING = timezone(timedelta(hours=8))
_NAMES = {
    "party": {"merchant": "经营者", "logistics_company": "物流企业", "courier": "快递员"},
    "state": {
        "issued": "已赋码",
        "shelved": "在架",
        "sold": "已售出",
        "packed": "已打包",
        "picked_up": "已揽收",
        "in_transit": "运输中",
        "out_for_delivery": "派送中",
        "delivery_failed": "投递失败",
        "signed": "已签收",
        "returned": "已退回",
    },
}


@bp.app_template_filter("beijing")
def beijing(moment: datetime | None) -> str:
    """STAND-IN (H9): an aware moment in Beijing time, the zone named."""
    if moment is None:
        return ""
    return moment.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M") + " 北京时间"


def label(kind: str, value: str) -> str:
    """STAND-IN (H9): the Chinese name of an identifier, the identifier if none is known."""
    return _NAMES.get(kind, {}).get(str(value), str(value))


@bp.app_context_processor
def _label_global() -> dict:
    return {"label": label}
