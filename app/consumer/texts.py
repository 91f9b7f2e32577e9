"""Words shown to consumers, Chinese first with English, keyed by what the data says.

The verdict itself comes from :mod:`tracecore.verdict`; here each warning kind and each event
type gets its plain-language text. Messages take their numbers and dates from the data.
"""

from __future__ import annotations

import functools

from tracecore.vocabulary import EventType, UnitState

LANGS = ("zh", "en")

#: Each look of a verdict (:attr:`tracecore.verdict.Verdict.look`): its headline.
HEADLINES = {
    "genuine": ("正品，记录正常", "Genuine, and its record is in order"),
    "unknown_code": ("查无此码：疑似假冒", "Code never issued: likely counterfeit"),
    "forged_link": ("码与商品不符：疑似伪造", "Code and product do not match: likely forged"),
    "recalled": ("已召回：请停止使用", "Recalled: stop using it"),
    "copied_code": ("疑似复制码：谨防假冒", "Likely a copied code: beware of fakes"),
    "sold_twice": ("此码被销售过不止一次", "This code was sold more than once"),
    "expired": ("已过保质期", "Past its expiry date"),
    "merchant_black_listed": ("经营者在失信黑名单上", "The merchant is on the black list"),
}

#: What to do, per look; ``{hotline}`` is the issuer's (``ISSUER_HOTLINE``).
ADVICE = {
    "genuine": (
        (
            "核对包装上的商品名称和批号与本页一致。",
            "Check that the name and lot on the pack match this page.",
        ),
        (
            "如有质量问题，可在本页评价或投诉。",
            "If something is wrong with it, review or complain on this page.",
        ),
    ),
    "unknown_code": (
        (
            "先核对输入的码与标签上的是否一致（16 位：字母 A–Z 和数字 2–7）。",
            "First check that you typed the code as on the label (16 characters: A–Z and 2–7).",
        ),
        (
            "如果一致：请勿使用，保留商品和购物凭证。",
            "If it is: do not use the product; keep it and the receipt.",
        ),
        ("在本页举报，或拨打 {hotline}。", "Report it on this page, or call {hotline}."),
    ),
    "forged_link": (
        (
            "请勿使用，保留商品、包装和购物凭证。",
            "Do not use the product; keep it, its pack and the receipt.",
        ),
        (
            "在本页举报，或拨打 {hotline}：监管部门会追查这个被冒用的码。",
            "Report it on this page, or call {hotline}: the regulator traces the misused code.",
        ),
    ),
    "recalled": (
        ("立即停止使用或食用。", "Stop using or eating it now."),
        ("联系购买的商家退货退款。", "Ask the shop you bought it from for a refund."),
        (
            "如有不适请及时就医，并拨打 {hotline} 反映。",
            "If you feel unwell, see a doctor, and call {hotline}.",
        ),
    ),
    "copied_code": (
        (
            "同一个码在多个地区被查验：您手中的商品可能是仿冒品。",
            "The same code was checked in several places: the product may be a copy.",
        ),
        ("核对购买渠道，保留购物凭证。", "Check where you bought it, and keep the receipt."),
        (
            "如有疑问，请在本页投诉或拨打 {hotline}。",
            "If in doubt, complain on this page or call {hotline}.",
        ),
    ),
    "sold_twice": (
        ("保留购物凭证，向商家核实。", "Keep the receipt and ask the shop about it."),
        (
            "商家说明不了的，请在本页投诉或拨打 {hotline}。",
            "If the shop cannot explain, complain here or call {hotline}.",
        ),
    ),
    "expired": (
        ("请勿食用或使用。", "Do not eat or use it."),
        (
            "购买时已过期的，可要求商家退换，或拨打 {hotline}。",
            "If it was past its date when sold, ask for a refund or call {hotline}.",
        ),
    ),
    "merchant_black_listed": (
        (
            "经营者有严重失信记录，请谨慎购买。",
            "The merchant has a serious record of dishonesty: buy with care.",
        ),
        ("可点击下方信用等级查看其记录。", "Its record is behind the credit grade below."),
    ),
}

#: A unit's current state, as the top of the page says it.
STATES = {
    UnitState.ISSUED: ("已赋码，尚未上架", "Labelled, not on sale yet"),
    UnitState.SHELVED: ("在售（已上架）", "On sale (on the shelf)"),
    UnitState.SOLD: ("已售出", "Sold"),
    UnitState.PACKED: ("已打包，待揽收", "Packed, waiting for the courier"),
    UnitState.PICKED_UP: ("快递已揽收", "Picked up by the courier company"),
    UnitState.IN_TRANSIT: ("运输中", "In transit"),
    UnitState.OUT_FOR_DELIVERY: ("派送中", "Out for delivery"),
    UnitState.DELIVERY_FAILED: ("派送未成功", "Delivery attempt failed"),
    UnitState.SIGNED: ("已签收", "Signed for"),
    UnitState.RETURNED: ("已退回", "Returned"),
}

#: The credit grades in one line each (the score runs from 0 to 1000; see tracecore.credit).
GRADES = {
    "A": ("信用优秀，记录良好", "excellent: a good record"),
    "B": ("信用良好，有少量扣分", "good: a few points off"),
    "C": ("信用一般，有较多扣分", "fair: many points off"),
    "D": ("信用较差，有严重扣分", "poor: serious points off"),
}

WARNINGS = {
    "forged_link": (
        "此追溯码已登记，但不属于链接中的商品或批次，标签很可能是伪造的。",
        "This trace code was issued, but not for the product or lot in the link: the label "
        "is most likely forged.",
    ),
    "unknown_code": (
        "此追溯码从未登记，商品很可能是假冒的。",
        "This trace code was never issued: the product is most likely counterfeit.",
    ),
    "recalled": (
        "该批次已于 {recalled_at} 召回，请停止使用。原因：{reason}",
        "This batch was recalled on {recalled_at}: stop using it. Reason: {reason}",
    ),
    "copied_code": (
        "此码已被查验 {checks} 次，来自 {clients} 个不同网络、{district_count} 个地区"
        "（首次查验：{first_check_at}，{first_check_place}），很可能是被复制的码。",
        "This code has been checked {checks} times from {clients} different networks in "
        "{district_count} districts (first check: {first_check_at}, {first_check_place}): "
        "it is most likely a copied code.",
    ),
    "sold_twice": (
        "此码已被销售不止一次，违反“一物一码”规则，商品可能不是正品。",
        "This code has been sold more than once, against the one-code-one-unit rule: the "
        "product may not be genuine.",
    ),
    "expired": (
        "已过保质期（{expires_on}到期），请勿食用或使用。",
        "Past its expiry date ({expires_on}): do not eat or use it.",
    ),
    "merchant_black_listed": (
        "经营者已被列入失信黑名单。",
        "The merchant is on the black list of dishonest parties.",
    ),
}

EVENTS = {
    EventType.SHELVED: ("上架", "Put on the shelf"),
    EventType.SOLD: ("售出", "Sold"),
    EventType.PACKED: ("打包发货", "Packed for shipping"),
    EventType.PICKED_UP: ("快递揽收", "Picked up by the courier company"),
    EventType.IN_TRANSIT: ("运输中", "In transit"),
    EventType.OUT_FOR_DELIVERY: ("派送中", "Out for delivery"),
    EventType.DELIVERY_FAILED: ("派送未成功", "Delivery attempt failed"),
    EventType.SIGNED: ("已签收", "Signed for"),
    EventType.RETURNED: ("已退回", "Returned"),
}

LISTS = {
    "red": ("守信红名单", "Red list (trustworthy)"),
    "black": ("失信黑名单", "Black list (dishonest)"),
    None: ("未列入红黑名单", "On neither list"),
}


def pick(pair: tuple[str, str], lang: str) -> str:
    return pair[LANGS.index(lang)] if lang in LANGS else pair[0]


def both(pair: tuple[str, str], **values) -> dict[str, str]:
    """{"zh": ..., "en": ...} with ``values`` filled in."""
    return {lang: pair[i].format(**values) for i, lang in enumerate(LANGS)}


@functools.lru_cache(maxsize=256)
def label(pair: tuple[str, str]) -> dict[str, str]:
    """{"zh": ..., "en": ...} of a text without values, made once (shared by every answer
    that shows it: do not modify it)."""
    return both(pair)
