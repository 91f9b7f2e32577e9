"""Inline SVG icons of the consumer pages, made once: the issuer's mark, and one per look of
a verdict (:data:`tracecore.verdict.LOOKS`). Decorative (``aria-hidden``): the headline beside
each says the same in words. Kept here as markup, not as a template macro: importing a macro
costs each page render more than the icon itself."""

from __future__ import annotations

from markupsafe import Markup

from tracecore.verdict import LOOKS

MARK = Markup(
    '<svg class="mark" viewBox="0 0 32 32" aria-hidden="true" focusable="false"><rect '
    'width="32" height="32" rx="7" fill="#1f3a5f"/><path d="M16 5l9 3.5v6.8c0 5.6-3.8 '
    '9.9-9 11.7-5.2-1.8-9-6.1-9-11.7V8.5z" fill="#fff"/><path d="M11.5 16.2l3.2 3.2 '
    '6-6.4" fill="none" stroke="#1e8e3e" stroke-width="2.6" stroke-linecap="round" '
    'stroke-linejoin="round"/></svg>'
)

_SHAPES = {
    "genuine": (
        '<circle cx="24" cy="24" r="21" fill="#1e8e3e"/><path d="M14 24.5l7 7 13-14" '
        'fill="none" stroke="#fff" stroke-width="4.5" stroke-linecap="round" '
        'stroke-linejoin="round"/>'
    ),
    "unknown_code": (
        '<circle cx="24" cy="24" r="21" fill="#c5221f"/><path d="M17.5 18a6.5 6.5 0 1 1 9.5 '
        '5.8c-1.9 1-3 2.4-3 4.4V30" fill="none" stroke="#fff" stroke-width="4.2" '
        'stroke-linecap="round"/><circle cx="24" cy="36.5" r="2.6" fill="#fff"/>'
    ),
    "forged_link": (
        '<circle cx="24" cy="24" r="21" fill="#c5221f"/><path d="M21 16.5l2.5-2.5a6 6 0 0 1 '
        '8.5 8.5L29.5 25M18.5 23l-2.5 2.5a6 6 0 0 0 8.5 8.5L27 31.5" fill="none" '
        'stroke="#fff" stroke-width="3.6" stroke-linecap="round"/><path d="M14 14l4 4M34 '
        '34l-4-4" stroke="#fff" stroke-width="3.6" stroke-linecap="round"/>'
    ),
    "recalled": (
        '<path d="M16 3h16l13 13v16L32 45H16L3 32V16z" fill="#c5221f"/><path d="M13 24h22" '
        'stroke="#fff" stroke-width="5" stroke-linecap="round"/>'
    ),
    "copied_code": (
        '<circle cx="24" cy="24" r="21" fill="#c5221f"/><rect x="13" y="12" width="15" '
        'height="17" rx="2.5" fill="none" stroke="#fff" stroke-width="3.2"/><rect x="20" '
        'y="19" width="15" height="17" rx="2.5" fill="#c5221f" stroke="#fff" '
        'stroke-width="3.2"/>'
    ),
    "sold_twice": (
        '<path d="M24 3L46 43H2z" fill="#b06000"/><text x="24" y="38" text-anchor="middle" '
        'font-size="17" font-weight="700" font-family="system-ui,sans-serif" '
        'fill="#fff">×2</text>'
    ),
    "expired": (
        '<circle cx="24" cy="24" r="21" fill="#b06000"/><circle cx="24" cy="24" r="13" '
        'fill="none" stroke="#fff" stroke-width="3.4"/><path d="M24 16v9l6 4" fill="none" '
        'stroke="#fff" stroke-width="3.4" stroke-linecap="round" stroke-linejoin="round"/>'
    ),
    "merchant_black_listed": (
        '<path d="M24 3L46 43H2z" fill="#b06000"/><path d="M24 17v12" stroke="#fff" '
        'stroke-width="4.5" stroke-linecap="round"/><circle cx="24" cy="36" r="2.8" '
        'fill="#fff"/>'
    ),
}

#: look -> its icon (an inline SVG).
VERDICT_ICONS = {
    look: Markup(
        '<svg class="icon" viewBox="0 0 48 48" aria-hidden="true" focusable="false" '
        f'data-icon="{look}">{_SHAPES[look]}</svg>'
    )
    for look in LOOKS
}
