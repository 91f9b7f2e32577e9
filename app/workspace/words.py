"""Words, not identifiers: what people read for each type, state, event, role and party.

``label(kind, value)`` gives the Chinese name, or the English one when the page is asked in
English (``?lang=en``, or a browser whose ``Accept-Language`` prefers English). Templates get
``label`` as a global and the ``beijing`` filter (app/timefmt.py) in the same language; both
are registered app-wide by :func:`register`, so every area's pages can use them. An unknown
value is shown as it is (never an error).

The names follow the consumer pages (app/consumer/texts.py) and the docs' glossary.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

from flask import Flask, has_request_context, request
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from app import timefmt
from app.consumer.places import place_of_region
from tracecore.anomalies import ANOMALY_NAMES, SEVERITY_NAMES

LANGS = ("zh", "en")

_EVENTS = {
    "issued": ("已赋码", "Code issued"),
    "shelved": ("上架", "Shelved"),
    "sold": ("售出", "Sold"),
    "packed": ("打包发货", "Packed"),
    "picked_up": ("快递揽收", "Picked up"),
    "in_transit": ("运输中", "In transit"),
    "out_for_delivery": ("派送中", "Out for delivery"),
    "delivery_failed": ("派送未成功", "Delivery failed"),
    "signed": ("已签收", "Signed for"),
    "returned": ("已退回", "Returned"),
}

#: kind → value → (Chinese, English).
WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "anomaly": dict(ANOMALY_NAMES),
    "status": {
        "open": ("待处理", "Open"),
        "confirmed": ("已确认", "Confirmed"),
        "dismissed": ("已驳回", "Dismissed"),
        "withdrawn": ("已自动撤回", "Withdrawn"),
        "pending": ("待裁决", "Pending"),
        "upheld": ("已支持", "Upheld"),
        "rejected": ("已驳回", "Rejected"),
        "active": ("正常", "Active"),
        "recalled": ("已召回", "Recalled"),
    },
    "severity": dict(SEVERITY_NAMES),
    "decision": {
        "confirm": ("确认", "Confirm"),
        "dismiss": ("驳回", "Dismiss"),
        "uphold": ("支持申诉", "Uphold"),
        "reject": ("驳回申诉", "Reject"),
    },
    "event": _EVENTS,
    "state": _EVENTS,
    "role": {
        "admin": ("系统管理员", "Administrator"),
        "regulator": ("监管人员", "Regulator"),
        "merchant": ("商家", "Merchant"),
        "logistics": ("物流企业", "Logistics company"),
        "anonymous": ("匿名", "Anonymous"),
    },
    "party": {
        "merchant": ("商家", "Merchant"),
        "logistics_company": ("物流企业", "Logistics company"),
        "courier": ("快递员", "Courier"),
    },
    "subject": {
        "code": ("追溯码", "Trace code"),
        "waybill": ("运单", "Waybill"),
        "batch": ("批次", "Batch"),
        "merchant": ("商家", "Merchant"),
        "device": ("手持终端", "Handheld"),
        "last_heard": ("最后联系", "last heard"),
    },
    "record": {
        "anomaly": ("异常", "Finding"),
        "reversal": ("撤销", "Reversal"),
        "complaint": ("投诉", "Complaint"),
        "sanction": ("惩戒", "Sanction"),
        "commendation": ("表彰", "Commendation"),
        "commitment": ("信用承诺", "Commitment"),
        "inspection": ("抽检", "Inspection"),
        "rating": ("评价", "Rating"),
    },
    "action": {
        "view": ("查看", "View"),
        "export": ("导出", "Export"),
        "change": ("修改", "Change"),
        "sign_in": ("登录", "Sign-in"),
        "sign_in_failed": ("登录失败", "Failed sign-in"),
        "sign_out": ("退出", "Sign-out"),
        "rewrite": ("改写", "Rewrite"),
    },
    "result": {
        "code": ("追溯码", "Trace code"),
        "parcel": ("包裹", "Parcel"),
        "batch": ("批次", "Batch"),
        "product": ("产品", "Product"),
        "merchant": ("商家", "Merchant"),
        "logistics_company": ("物流企业", "Logistics company"),
        "courier": ("快递员", "Courier"),
    },
    "list": {
        "red": ("守信红名单", "Red list"),
        "black": ("失信黑名单", "Black list"),
    },
    "device": {
        "shelf_scanner": ("货架扫码器", "Shelf scanner"),
        "pos_scanner": ("收银扫码器", "Point-of-sale scanner"),
        "courier_handheld": ("快递员手持终端", "Courier's handheld"),
    },
    "complaint": {  # as the consumer's form names them (templates/consumer/scan.html)
        "counterfeit": ("疑似假冒", "Looks counterfeit"),
        "quality": ("质量问题", "Quality"),
        "delivery": ("配送问题", "Delivery"),
        "privacy": ("个人信息泄露", "Privacy"),
        "other": ("其他", "Other"),
    },
    "audit": {  # the decisions' audit trail (app/credit/operations.audit)
        "anomaly.confirm": ("确认异常", "Finding confirmed"),
        "anomaly.dismiss": ("驳回异常", "Finding dismissed"),
        "anomaly.flag": ("标记待复核", "Finding flagged for review"),
        "anomaly.reopen": ("重新打开异常", "Finding reopened"),
        "anomaly.withdraw": ("自动撤回异常", "Finding withdrawn"),
        "appeal.file": ("提出申诉", "Appeal filed"),
        "appeal.uphold": ("支持申诉", "Appeal upheld"),
        "appeal.reject": ("驳回申诉", "Appeal rejected"),
        "batch.recall": ("召回批次", "Batch recalled"),
        "commitment.sign": ("签署信用承诺", "Commitment signed"),
        "credit.sanction": ("惩戒", "Sanction"),
        "credit.commendation": ("表彰", "Commendation"),
        "courier.service_area": ("设定派送范围", "Service area set"),
    },
    "target": {  # what an access log line or an audit entry is about
        "code": ("追溯码", "Trace code"),
        "parcel": ("包裹", "Parcel"),
        "batch": ("批次", "Batch"),
        "merchant": ("商家", "Merchant"),
        "logistics_company": ("物流企业", "Logistics company"),
        "courier": ("快递员", "Courier"),
        "anomaly": ("异常", "Finding"),
        "anomalies": ("异常队列", "Anomaly queue"),
        "appeal": ("申诉", "Appeal"),
        "search": ("搜索", "Search"),
        "map": ("地图", "Map"),
        "user": ("用户", "User"),
        "access_log": ("访问日志", "Access log"),
        "rejection_tallies": ("拒收统计", "Rejected traffic"),
        "counterfeits": ("假冒地图", "Counterfeit map"),
    },
    "sighting": {  # what a consumer's check of a fake found (app/counterfeit)
        "never_issued": ("从未登记的码", "Never-issued code"),
        "forged_link": ("被冒用的链接", "Forged link"),
    },
    "reversal": {
        "withdrawn": ("证据不再成立，自动撤回", "withdrawn: the evidence no longer holds"),
        "dismissed": ("已驳回", "dismissed"),
    },
}


def word(kind: str, value, lang: str = "zh") -> str:
    """The name of ``value`` (a string or a string enum) of ``kind`` in ``lang``; the value
    itself when it has none."""
    if value is None:
        return ""
    pair = WORDS.get(kind, {}).get(str(value))
    if pair is None:
        return str(value)
    return pair[1] if lang == "en" else pair[0]


@functools.lru_cache(maxsize=256)
def _lang_of(accept_language: str | None) -> str:
    best = parse_accept_header(accept_language, LanguageAccept).best_match(LANGS, "zh")
    return best or "zh"


def page_lang() -> str:
    """The page's language: ``?lang=`` when given, else the browser's preference, else
    Chinese (and Chinese outside a request)."""
    if not has_request_context():
        return "zh"
    asked = request.args.get("lang")
    if asked in LANGS:
        return asked
    return _lang_of(request.headers.get("Accept-Language"))


def label(kind: str, value) -> str:
    """The name of ``value`` of ``kind`` in the page's language (the templates' global)."""
    return word(kind, value, page_lang())


#: A finding's credit record's reason as the service writes it (app/anomalies/findings.py):
#: "late_delivery (waybill SF1)", and a reversal's "dismissed: late_delivery (waybill SF1)".
_RECORD_REASON = re.compile(r"^(?:(\w+): )?(\w+) \((\w+) (.*)\)$", re.S)


def record_reason(kind: str, reason: str | None) -> str:
    """A credit record's reason as people read it: a finding's type and subject named in
    the page's language; any other reason (a regulator's words) as written."""
    found = _RECORD_REASON.match(reason or "") if kind in ("anomaly", "reversal") else None
    if found is None or found[2] not in WORDS["anomaly"]:
        return reason or ""
    why, kind_, subject_type, subject = found.groups()
    text = f"{label('anomaly', kind_)} ({label('subject', subject_type)} "
    text += f"{subject_text(subject_type, subject)})"
    return f"{label('reversal', why)}: {text}" if why else text


def subject_text(subject_type: str, subject: str) -> str:
    """A finding's subject as people read it: a silent handheld's spell
    (``DEVICE@20261202T055626Z``, tracecore.anomalies) as the device and the Beijing time it
    was last heard; any other subject (a serial, a waybill, an id) as it is."""
    device, _, since = subject.partition("@")
    if subject_type != "device" or not since:
        return subject
    try:
        heard = datetime.strptime(since, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return subject
    return f"{device} · {label('subject', 'last_heard')} {timefmt.beijing(heard, page_lang())}"


def region_name(region_code: str | None) -> str:
    """A GB/T 2260 region's name (district, else province) in the page's language."""
    place = place_of_region(region_code)
    return place[page_lang()] if place else (region_code or "")


def register(app: Flask) -> None:
    """``label`` and ``page_lang`` as template globals and the ``beijing`` filter (with the
    page's language) for every template of the app."""

    def beijing(value, seconds: bool = False) -> str:
        return timefmt.beijing(value, page_lang(), seconds=seconds)

    app.add_template_global(label, "label")
    app.add_template_global(page_lang, "page_lang")
    app.add_template_global(region_name, "region_name")
    app.add_template_global(record_reason, "record_reason")
    app.add_template_global(subject_text, "subject_text")
    app.add_template_filter(beijing, "beijing")
    app.add_template_filter(timefmt.beijing_date, "beijing_date")
