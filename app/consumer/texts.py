"""Words shown to consumers, Chinese first with English, keyed by what the data says.

The verdict itself comes from :mod:`tracecore.verdict`; here each warning kind and each event
type gets its plain-language text. Messages take their numbers and dates from the data.
"""

from __future__ import annotations

import functools

from tracecore.vocabulary import EventType

LANGS = ("zh", "en")

VERDICT_TITLES = {
    "genuine": ("正品，记录正常", "Genuine, and its record is in order"),
    "warning": ("请注意", "Take care"),
    "danger": ("警告", "Warning"),
}

WARNINGS = {
    "unknown_code": (
        "此追溯码从未登记，商品很可能是假冒的。请勿使用，并向监管部门反映。",
        "This trace code was never issued: the product is most likely counterfeit. "
        "Do not use it, and report it.",
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
        "已过保质期（{expires_on} 到期），请勿食用或使用。",
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
