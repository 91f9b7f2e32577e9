"""A finding's evidence as a sentence, with the events it cites linked to the history that
shows them (``/workspace/codes/<serial>#event-<id>`` or the parcel's page), Chinese or
English. A type without a sentence here, or evidence of an older shape, reads as a list of
``key: value`` (never raw JSON). Times are Beijing time (app/timefmt.py).
"""

from __future__ import annotations

from flask import url_for
from markupsafe import Markup, escape

from app.consumer.places import place_of_point
from app.timefmt import beijing
from app.workspace.words import word

#: type → (Chinese, English) sentence; ``{events}`` is the linked events, the rest come from
#: the evidence (times already in Beijing time). Each is used only when its keys are there.
SENTENCES: dict[str, tuple[str, str]] = {
    "lifecycle_violation": (
        "事件 {events} 不符合流程：{violation}。",
        "{events} breaks the lifecycle: {violation}.",
    ),
    "empty_parcel": (
        "揽收与签收（{events}）相距 {km} 公里，只隔 {hours} 小时：{why_zh}。",
        "Pickup and signature ({events}) are {km} km apart within {hours} h: {why}.",
    ),
    "impossible_travel": (
        "两次扫描（{events}）相距 {km} 公里、仅隔 {hours} 小时，约 {kmh} 公里/小时。",
        "Two scans ({events}) {km} km apart within {hours} h: about {kmh} km/h.",
    ),
    "remote_sign": (
        "签收（{events}）的地点距收件点 {km} 公里。",
        "Signed ({events}) {km} km from the consignee point.",
    ),
    "out_of_area": (
        "扫描（{events}）在快递员服务区域之外：{place}。",
        "A scan ({events}) outside the courier's service area: {place}.",
    ),
    "stalled_parcel": (
        "最后一次扫描在 {last_scan}，此后 {idle_hours} 小时没有扫描。",
        "Last scanned {last_scan}; no scan for {idle_hours} h since.",
    ),
    "late_delivery": (
        "承诺 {promised_by} 前送达，{signed}。",
        "Promised by {promised_by}; {signed}.",
    ),
    "duplicate_sale": (
        "同一追溯码售出两次（{events}）：{first_sale} 与 {second_sale}。",
        "The same trace code sold twice ({events}): {first_sale} and {second_sale}.",
    ),
    "unknown_code": (
        "扫描（{events}）的码 {code} 从未赋码，可能是假冒。",
        "A scan ({events}) of {code}, a code never issued: likely counterfeit.",
    ),
    "expired_sale": (
        "{sold_on} 售出（{events}），保质期至 {expires_on}。",
        "Sold on {sold_on} ({events}), past its expiry date {expires_on}.",
    ),
    "recalled_sale": (
        "批次于 {recalled_at} 召回后仍有“{event}”（{events}）。",
        "“{event}” ({events}) after the batch was recalled on {recalled_at}.",
    ),
    "copied_code": (
        "被查验 {checks} 次，来自 {clients} 个网络、{district_count} 个区县；"
        "首次查验 {first_check_at}。",
        "Checked {checks} times from {clients} networks in {district_count} districts; first "
        "check {first_check_at}.",
    ),
    "consumer_complaint": (
        "消费者投诉（{category}），投诉 #{complaint_id}。",
        "A consumer's complaint ({category}), complaint #{complaint_id}.",
    ),
}
#: empty_parcel's reasons (the rule's words) in Chinese, by how they begin.
WHY_ZH = {
    "carried": "比任何车辆都快",
    "no transit scan": "途中没有运输扫描",
    "signed with no pickup scan": "签收前没有揽收扫描",
}
#: An empty parcel signed with no pickup scan cites one event and no distance.
NO_PICKUP = ("签收（{events}）之前没有揽收扫描。", "Signed ({events}) with no pickup scan.")
#: brushing has two shapes: orders per point in an hour, and parcels signed at one point.
BRUSHING = {
    "orders": (
        "{from} 至 {to} 一小时内 {orders} 单，只有 {points} 个收件点：{waybills}。",
        "{orders} orders from {from} to {to} to only {points} consignee points: {waybills}.",
    ),
    "parcels": (
        "{day} 有 {parcels} 个包裹在同一地点签收（{events}）。",
        "{parcels} parcels signed at one point on {day} ({events}).",
    ),
}
_TIMES = ("last_scan", "promised_by", "signed_at", "recalled_at", "first_check_at", "from", "to")
_TIMES += ("first_sale", "second_sale")


def describe(anomaly, lang: str = "zh") -> Markup:
    """The evidence of ``anomaly`` as one sentence (escaped, with links)."""
    evidence = dict(anomaly.evidence or {})
    values: dict[str, object] = {}
    for key, value in evidence.items():
        values[key] = escape(beijing(value, lang) if key in _TIMES and value else value)
    values["events"] = _event_links(anomaly, evidence.get("event_ids") or [], lang)
    values["district_count"] = len(evidence.get("districts") or [])
    values["signed"] = _signed(evidence.get("signed_at"), lang)
    why = str(evidence.get("why", ""))
    values["why_zh"] = next((zh for start, zh in WHY_ZH.items() if why.startswith(start)), why)
    if "event" in evidence:
        values["event"] = escape(word("event", evidence["event"], lang))
    if evidence.get("lat") is not None:
        place = place_of_point(evidence["lat"], evidence["lon"])
        where = place and place["en" if lang == "en" else "zh"]
        values["place"] = escape(where or f"{evidence['lat']}, {evidence['lon']}")
    if "waybills" in evidence:
        values["waybills"] = _links(
            (w, url_for("workspace.parcel_page", waybill=w)) for w in evidence["waybills"]
        )
    pair = SENTENCES.get(anomaly.type)
    if anomaly.type == "brushing":
        pair = BRUSHING["orders" if "orders" in evidence else "parcels"]
    elif anomaly.type == "empty_parcel" and "km" not in evidence:
        pair = NO_PICKUP
    sentence = _fill(pair, values, lang) if pair else None
    return sentence if sentence is not None else _listed(evidence, values)


def _fill(pair: tuple[str, str], values: dict, lang: str) -> Markup | None:
    try:
        return Markup(escape(pair[1] if lang == "en" else pair[0])).format(**values)
    except (KeyError, IndexError):
        return None  # evidence of another shape: the list instead


def _signed(signed_at, lang: str) -> str:
    if not signed_at:
        return "not signed yet" if lang == "en" else "至今未签收"
    at = beijing(signed_at, lang)
    return f"signed {at}" if lang == "en" else f"{at} 签收"


def _event_links(anomaly, event_ids: list, lang: str) -> Markup:
    """Each cited event, linked to the row of the history that shows it."""
    name = "event" if lang == "en" else "事件"
    shown = [(f"{name} {str(e)[:8]}", _event_url(anomaly, e)) for e in event_ids]
    return _links(shown) if shown else Markup("—")


def _event_url(anomaly, event_id) -> str | None:
    anchor = f"event-{event_id}"
    if anomaly.subject_type == "code":
        return url_for("workspace.code_page", serial=anomaly.subject, _anchor=anchor)
    if anomaly.subject_type == "waybill":
        return url_for("workspace.parcel_page", waybill=anomaly.subject, _anchor=anchor)
    return None  # a merchant's finding: its events have no one page


def _links(pairs) -> Markup:
    return Markup("、").join(
        Markup('<a href="{}">{}</a>').format(url, text) if url else escape(text)
        for text, url in pairs
    )


def _listed(evidence: dict, values: dict) -> Markup:
    """``key: value`` pairs, for evidence without a sentence."""
    shown = []
    for key, value in evidence.items():
        if key == "event_ids":
            value = values["events"]
        elif isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        shown.append(Markup("{}: {}").format(key, value))
    return Markup("; ").join(shown)
