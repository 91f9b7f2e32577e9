"""Charts drawn on the server as SVG: readable without JavaScript, no library from a CDN.

Plain functions from values to markup (no Flask, no database). Colours are CSS classes
(``series-0`` … ``series-7`` in ``site.css``): the Content-Security-Policy forbids inline
styles. Every chart carries a ``<title>`` and an ``aria-label``; the pages give the same
numbers as a table beside it for screen readers and for copying.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

#: Series beyond this many are summed into the last one ("其他 other").
MAX_SERIES = 8


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _ticks(top: float) -> list[float]:
    """Three or four round values from 0 to at least ``top`` for the vertical axis."""
    if top <= 0:
        return [0, 1]
    step = 1.0
    while top / step > 4:
        for factor in (2, 2.5, 2):
            step *= factor
            if top / step <= 4:
                break
    ticks, value = [], 0.0
    while value < top:
        ticks.append(value)
        value += step
    return [*ticks, value]


def line_chart(
    labels: list[str],
    series: list[Series],
    *,
    title: str,
    width: int = 720,
    height: int = 220,
    stacked_bars: bool = False,
    label_every: int = 7,
    scale: tuple[float, float] | None = None,
) -> Markup:
    """One line (or, ``stacked_bars``, one stacked bar per label) per series over ``labels``
    (the x axis, e.g. days), with a vertical scale and a legend. Values are not negative
    for bars; lines may be any value (the axis spans them, or ``scale``)."""
    left, right, top, bottom = 44, 8, 10, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    if scale is not None:  # a fixed scale, e.g. 0–100 for a percentage
        low, high = scale
    elif stacked_bars:
        totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
        low, high = 0.0, max(totals, default=0)
    else:
        every = [v for s in series for v in s.values]
        low, high = min(every, default=0), max(every, default=1)
        pad = max((high - low) * 0.1, 10)
        low, high = low - pad, high + pad
    ticks = [low + t for t in _ticks(high - low)]
    span = (ticks[-1] - low) or 1

    def y(value: float) -> float:
        return top + plot_h - (value - low) / span * plot_h

    def x(i: int) -> float:
        return left + (i + 0.5) * plot_w / n

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height + 18 * ((len(series) + 3) // 4)}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for t in ticks:
        out.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_n(y(t))}" y2="{_n(y(t))}"/>'
            f'<text class="tick" x="{left - 4}" y="{_n(y(t) + 4)}" text-anchor="end">{_n(t)}</text>'
        )
    for i, name in enumerate(labels):
        last = i == len(labels) - 1 and i % label_every >= label_every / 2
        if i % label_every == 0 or last:
            out.append(
                f'<text class="tick" x="{_n(x(i))}" y="{top + plot_h + 14}" '
                f'text-anchor="middle">{escape(name)}</text>'
            )
    bar = plot_w / n * 0.8
    base = [0.0] * len(labels)
    for k, s in enumerate(series):
        css = f"series-{k % MAX_SERIES}"
        if stacked_bars:
            for i, v in enumerate(s.values):
                if v:
                    y1, y0 = y(base[i] + v), y(base[i])
                    out.append(
                        f'<rect class="{css}" x="{_n(x(i) - bar / 2)}" y="{_n(y1)}" '
                        f'width="{_n(bar)}" height="{_n(y0 - y1)}"><title>{escape(labels[i])} '
                        f"{escape(s.name)}: {_n(v)}</title></rect>"
                    )
                    base[i] += v
        else:
            points = " ".join(f"{_n(x(i))},{_n(y(v))}" for i, v in enumerate(s.values))
            out.append(f'<polyline class="{css}" points="{points}"/>')
            for i, v in enumerate(s.values):
                out.append(
                    f'<circle class="{css}" cx="{_n(x(i))}" cy="{_n(y(v))}" r="2.5">'
                    f"<title>{escape(labels[i])} {escape(s.name)}: {_n(v)}</title></circle>"
                )
    for k, s in enumerate(series):  # the legend, four to a row
        lx, ly = left + (k % 4) * (plot_w / 4), height - 8 + 18 * (k // 4)
        out.append(
            f'<rect class="series-{k % MAX_SERIES}" x="{_n(lx)}" y="{_n(ly - 9)}" '
            f'width="10" height="10"/><text class="legend" x="{_n(lx + 14)}" y="{_n(ly)}">'
            f"{escape(s.name)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def fold(series: list[Series], other: str = "其他 other") -> list[Series]:
    """At most :data:`MAX_SERIES` series, the largest first; the rest summed into one."""
    ordered = sorted(series, key=lambda s: -sum(s.values))
    if len(ordered) <= MAX_SERIES:
        return ordered
    kept, rest = ordered[: MAX_SERIES - 1], ordered[MAX_SERIES - 1 :]
    summed = [sum(vals) for vals in zip(*(s.values for s in rest), strict=True)]
    return [*kept, Series(other, summed)]
