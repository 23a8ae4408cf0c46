"""Small SVG plots for the export page: numbers in, SVG text out.

Pure: no Flask, no SQL. Every text that goes into the SVG is escaped here, so the caller may
mark the result safe. Each plot is an image with a title and a description (role="img");
the page shows the same numbers as a table for those who cannot see the picture.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH = 420
FONT = 15
INK, MUTED, GRID, BRAND, FILL = "#1b1b1b", "#4a4a4a", "#d0d3d6", "#0b4fa3", "#dbe6f5"
# Colours with at least 3:1 against white; each series also has its own marker and dash,
# so no line is told apart by colour alone.
COLOURS = ("#0b4fa3", "#a3340b", "#1e6b30", "#6b2f8f", "#7a5200", "#005f6b")
MARKERS = ("circle", "square", "triangle", "diamond")
DASHES = ("", "7 4", "2 3", "9 3 2 3")

Number = int | float


def text(value) -> str:
    """Escape text for an SVG element or a double-quoted attribute."""
    return escape(str(value), {'"': "&quot;"})


def _n(value: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _plain(value: Number) -> str:
    return f"{value:g}"


def numbers(values: Sequence[Number | None]) -> list[float]:
    """The finite numbers among values (None, NaN and infinities left out)."""
    return [
        float(v)
        for v in values
        if v is not None and not isinstance(v, bool) and math.isfinite(float(v))
    ]


@dataclass(frozen=True)
class Summary:
    """Five numbers and the count of one group of values."""

    n: int
    low: float
    q1: float
    median: float
    q3: float
    high: float


def summarise(values: Sequence[Number | None]) -> Summary | None:
    """Count, minimum, quartiles, median and maximum; None when there is no number."""
    found = sorted(numbers(values))
    if not found:
        return None
    if len(found) == 1:
        only = found[0]
        return Summary(1, only, only, only, only, only)
    q1, median, q3 = statistics.quantiles(found, n=4, method="inclusive")
    return Summary(len(found), found[0], q1, median, q3, found[-1])


def mean(values: Sequence[Number | None]) -> float | None:
    """The mean of the numbers among values, or None."""
    found = numbers(values)
    return statistics.fmean(found) if found else None


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values that cover low..high in about count steps."""
    if low > high:
        low, high = high, low
    if high - low < 1e-9 * max(1.0, abs(high)):  # one value (or a rounding hair apart)
        low, high = low - 1, high + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    steps = round((last - first) / step)
    return [round(first + i * step, 10) for i in range(steps + 1)]


def _open(ident: str, height: float, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {WIDTH} {_n(height)}"'
        f' width="{WIDTH}" height="{_n(height)}" role="img"'
        f' aria-labelledby="{text(ident)}-title {text(ident)}-desc"'
        f' font-family="system-ui, sans-serif" font-size="{FONT}" fill="{INK}">',
        f'<title id="{text(ident)}-title">{text(title)}</title>',
        f'<desc id="{text(ident)}-desc">{text(desc)}</desc>',
    ]


def _empty(ident: str, title: str, desc: str, message: str) -> str:
    parts = _open(ident, 60, title, desc)
    parts.append(f'<text x="{WIDTH / 2:g}" y="35" text-anchor="middle" fill="{MUTED}">')
    parts.append(f"{text(message)}</text></svg>")
    return "".join(parts)


def distribution_svg(
    ident: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    groups: Sequence[Sequence[Number | None]],
    *,
    fmt: Callable[[Number], str] = _plain,
    no_data: str = "no data",
) -> str:
    """One row per label: a box (quartiles, median, whiskers to min and max) and n.

    Rows with fewer than five numbers show each number as a dot instead of a box.
    """
    if len(labels) != len(groups):
        raise ValueError("distribution_svg: one group of values per label")
    summaries = [summarise(g) for g in groups]
    present = [s for s in summaries if s is not None]
    if not present:
        return _empty(ident, title, desc, no_data)
    scale = ticks(min(s.low for s in present), max(s.high for s in present))
    label_w = min(130, 16 + 0.6 * FONT * max(len(str(x)) for x in labels))
    left, right, top, row_h = label_w, 58, 8, 34
    width = WIDTH - left - right
    height = top + row_h * len(labels) + 34

    def x(value: float) -> float:
        return left + (value - scale[0]) / (scale[-1] - scale[0]) * width

    parts = _open(ident, height, title, desc)
    bottom = top + row_h * len(labels)
    for tick in scale:
        parts.append(
            f'<line x1="{_n(x(tick))}" x2="{_n(x(tick))}" y1="{top}" y2="{bottom}"'
            f' stroke="{GRID}"/><text x="{_n(x(tick))}" y="{bottom + 22}" text-anchor="middle"'
            f' fill="{MUTED}">{text(fmt(tick))}</text>'
        )
    for row, (label, group, summary) in enumerate(zip(labels, groups, summaries, strict=True)):
        mid = top + row_h * row + row_h / 2
        parts.append(
            f'<g class="plot-row"><text x="{_n(left - 8)}" y="{_n(mid)}" dy="0.35em"'
            f' text-anchor="end">{text(label)}</text>'
        )
        if summary is None:
            parts.append(
                f'<text x="{_n(left + 6)}" y="{_n(mid)}" dy="0.35em" fill="{MUTED}"'
                f' font-style="italic">{text(no_data)}</text></g>'
            )
            continue
        if summary.n < 5:
            for value in numbers(group):
                parts.append(
                    f'<circle cx="{_n(x(value))}" cy="{_n(mid)}" r="4.5" fill="{BRAND}"'
                    ' fill-opacity="0.75"/>'
                )
        else:
            box = (x(summary.q1), mid - 9, max(x(summary.q3) - x(summary.q1), 1.5), 18)
            parts.append(
                f'<line x1="{_n(x(summary.low))}" x2="{_n(x(summary.high))}" y1="{_n(mid)}"'
                f' y2="{_n(mid)}" stroke="{INK}" stroke-width="1.5"/>'
                f'<rect x="{_n(box[0])}" y="{_n(box[1])}" width="{_n(box[2])}"'
                f' height="{box[3]}" fill="{FILL}" stroke="{BRAND}" stroke-width="1.5"/>'
                f'<line x1="{_n(x(summary.median))}" x2="{_n(x(summary.median))}"'
                f' y1="{_n(mid - 11)}" y2="{_n(mid + 11)}" stroke="{INK}" stroke-width="3"/>'
            )
        parts.append(
            f'<text x="{WIDTH - 4}" y="{_n(mid)}" dy="0.35em" text-anchor="end"'
            f' fill="{MUTED}">n = {summary.n}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _polygon(corners, attributes: str) -> str:
    points = " ".join(f"{_n(px)},{_n(py)}" for px, py in corners)
    return f'<polygon points="{points}" {attributes}/>'


def _marker(shape: str, cx: float, cy: float, colour: str) -> str:
    common = f'fill="{colour}" stroke="#fff" stroke-width="1"'
    if shape == "square":
        return f'<rect x="{_n(cx - 4.5)}" y="{_n(cy - 4.5)}" width="9" height="9" {common}/>'
    if shape == "triangle":
        return _polygon(((cx, cy - 6), (cx + 5.5, cy + 4), (cx - 5.5, cy + 4)), common)
    if shape == "diamond":
        return _polygon(((cx, cy - 6), (cx + 6, cy), (cx, cy + 6), (cx - 6, cy)), common)
    return f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="5" {common}/>'


def lines_svg(
    ident: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number | None]]],
    *,
    fmt: Callable[[Number], str] = _plain,
    no_data: str = "no data",
) -> str:
    """One line per series over the labels (in order); a gap (None) is stepped over.

    The value axis starts at zero unless a value is below it.
    Each series has its own colour, marker and dash, and a legend entry above the plot.
    """
    for name, values in series:
        if len(values) != len(labels):
            raise ValueError(f"lines_svg: series {name!r} needs one value per label")
    present = [v for _, values in series for v in numbers(values)]
    if not present or not labels:
        return _empty(ident, title, desc, no_data)
    # Means start from zero (when none is below it), so small differences do not look large.
    scale = ticks(min(0.0, *present), max(present))
    legend_rows, legend = _legend(series)
    # Labels under the axis are turned 45 degrees and end at their point: the first ones
    # reach to the left of it, so the plot starts far enough in for them to fit.
    reach = [0.6 * FONT * len(str(label)) * 0.71 + 4 for label in labels]
    right = 10
    left = 10 + 0.6 * FONT * max(len(fmt(t)) for t in scale)
    for _ in range(2):
        band = (WIDTH - left - right) / len(labels)
        left = max(left, *(r - band * (i + 0.5) for i, r in enumerate(reach)))
    top = 14 + 24 * legend_rows
    plot_h = 190
    bottom = top + plot_h
    height = bottom + 18 + max(reach)
    band = (WIDTH - left - right) / len(labels)

    def x(index: int) -> float:
        return left + band * (index + 0.5)

    def y(value: float) -> float:
        return bottom - (value - scale[0]) / (scale[-1] - scale[0]) * plot_h

    parts = _open(ident, height, title, desc)
    parts.extend(legend)
    for tick in scale:
        parts.append(
            f'<line x1="{_n(left)}" x2="{_n(WIDTH - right)}" y1="{_n(y(tick))}"'
            f' y2="{_n(y(tick))}" stroke="{GRID}"/><text x="{_n(left - 6)}" y="{_n(y(tick))}"'
            f' dy="0.35em" text-anchor="end" fill="{MUTED}">{text(fmt(tick))}</text>'
        )
    for index, label in enumerate(labels):
        parts.append(
            f'<text class="plot-label" x="{_n(x(index))}" y="{_n(bottom + 14)}"'
            f' text-anchor="end" dy="0.35em" transform="rotate(-45 {_n(x(index))}'
            f' {_n(bottom + 14)})" fill="{MUTED}">{text(label)}</text>'
        )
    for number, (_name, values) in enumerate(series):
        colour = COLOURS[number % len(COLOURS)]
        dash = DASHES[number % len(DASHES)]
        points = [(x(i), y(v)) for i, v in enumerate(values) if numbers([v])]
        parts.append('<g class="plot-series">')
        if len(points) > 1:
            line = " ".join(f"{_n(px)},{_n(py)}" for px, py in points)
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2.5"'
                f"{dashed}/>"
            )
        for px, py in points:
            parts.append(_marker(MARKERS[number % len(MARKERS)], px, py, colour))
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _legend(series) -> tuple[int, list[str]]:
    """Legend entries laid out left to right, wrapping; returns (rows, SVG parts)."""
    parts, row, at = [], 0, 4.0
    for number, (name, _values) in enumerate(series):
        wide = 34 + 0.6 * FONT * len(str(name)) + 14
        if at > 4 and at + wide > WIDTH:
            row, at = row + 1, 4.0
        cy = 12 + 24 * row
        colour = COLOURS[number % len(COLOURS)]
        dash = DASHES[number % len(DASHES)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<g class="plot-legend"><line x1="{_n(at)}" x2="{_n(at + 26)}" y1="{cy}" y2="{cy}"'
            f' stroke="{colour}" stroke-width="2.5"{dashed}/>'
            + _marker(MARKERS[number % len(MARKERS)], at + 13, cy, colour)
            + f'<text x="{_n(at + 32)}" y="{cy}" dy="0.35em">{text(name)}</text></g>'
        )
        at += wide
    return (row + 1 if series else 0), parts
