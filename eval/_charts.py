"""The evaluation report's building blocks: inline SVG charts and Unicode bar rows, and safe tables.

Hand-written SVG keeps the report one offline file with no plotting dependency. Run files are
untrusted, so every text passes `esc` on its way into HTML/SVG and `md_inline` or `md_fenced` on
its way into Markdown; eval/report.py decides what the report says and leaves the escaping here.
"""

from __future__ import annotations

import html
import math
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CSP",
    "CSS",
    "SERIES_COLORS",
    "Bin",
    "confusion_html",
    "esc",
    "grouped_bars_svg",
    "histogram_svg",
    "html_marked",
    "html_table",
    "latency_bins",
    "md_fenced",
    "md_inline",
    "md_table",
    "numbers",
    "plain",
    "score_bins",
    "text_bars",
    "text_histogram",
]

SERIES_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NUMBER = re.compile(r"^(–|-?\d+(\.\d+)?)$")
_BLOCKS = " ▏▎▍▌▋▊▉█"
_BAR_CHARS = 30


@dataclass(frozen=True)
class Bin:
    """One histogram bar: values in [low, high) (the last bin also holds `high`)."""

    low: float
    high: float
    count: int


def esc(value: object) -> str:
    """HTML-escape any value, dropping control characters that would make the SVG invalid XML."""
    return html.escape(_CONTROL.sub("", str(value)))


def numbers(values: Iterable[object]) -> list[float]:
    """The finite numbers among `values`: run files carry None, strings and NaN where a score is missing."""
    found = (float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool))
    return [v for v in found if math.isfinite(v)]


def score_bins(values: Sequence[float], bins: int = 10) -> list[Bin]:
    """Scores counted into `bins` equal bins over 0..1, out-of-range values clamped into the ends."""
    counts = [0] * bins
    for value in values:
        counts[min(max(int(value * bins), 0), bins - 1)] += 1
    return [Bin(i / bins, (i + 1) / bins, c) for i, c in enumerate(counts)]


def latency_bins(values: Sequence[float], bins: int = 10) -> list[Bin]:
    """Latencies counted into `bins` bins from 0 with a round width, so the edges read as plain numbers."""
    top = max(values, default=0.0)
    width = _nice(top / bins) or 1.0
    counts = [0] * min(bins, max(1, math.ceil(top / width)))
    for value in values:
        counts[min(max(int(value // width), 0), len(counts) - 1)] += 1
    return [Bin(i * width, (i + 1) * width, c) for i, c in enumerate(counts)]


def _nice(step: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above `step`: axis steps people can read."""
    if step <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(step))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= step * (1 - 1e-9)))


def _count_ticks(top: int) -> list[int]:
    """About four integer y-axis ticks from 0 to at least `top`."""
    step = max(1, int(_nice(max(top, 1) / 4)))
    return list(range(0, math.ceil(max(top, 1) / step) * step + 1, step))


def _svg_open(width: int, height: int, title: str) -> list[str]:
    """An <svg> start tag sized for the chart, with its title for tooltips and screen readers."""
    return [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>',
        f'<text x="{width / 2:.0f}" y="16" class="title" text-anchor="middle">{esc(title)}</text>',
    ]


def _axes(left: int, top: int, width: int, height: int, x_label: str, y_label: str) -> list[str]:
    """The two axis lines and their labels around a plot area."""
    bottom, right = top + height, left + width
    return [
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" class="axis"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" class="axis"/>',
        f'<text x="{left + width / 2:.0f}" y="{bottom + 36}" text-anchor="middle" class="label">{esc(x_label)}</text>',
        f'<text transform="translate(12 {top + height / 2:.0f}) rotate(-90)" text-anchor="middle" class="label">'
        f"{esc(y_label)}</text>",
    ]


def _y_ticks(ticks: Sequence[float], scale: float, left: int, bottom: int, fmt: str) -> list[str]:
    """Y-axis tick labels with faint grid lines, `scale` pixels per unit."""
    parts = []
    for tick in ticks:
        y = bottom - tick * scale
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" class="axis"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 3:.1f}" text-anchor="end" class="tick">{tick:{fmt}}</text>')
    return parts


def histogram_svg(
    bins: Sequence[Bin], *, title: str, x_label: str, edge_format: str, markers: Mapping[str, float] | None = None
) -> str:
    """A histogram of `bins`, each bar with a tooltip; `markers` draw labelled vertical lines (p50, p95)."""
    left, top, width, height = 50, 30, 420, 180
    ticks = _count_ticks(max((b.count for b in bins), default=0))
    scale, bar_w = height / ticks[-1], width / max(len(bins), 1)
    parts = _svg_open(left + width + 20, top + height + 50, title)
    parts += _y_ticks(ticks, scale, left, top + height, "d")
    for i, b in enumerate(bins):
        x, h = left + i * bar_w, b.count * scale
        span = f"{b.low:{edge_format}}–{b.high:{edge_format}}"
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top + height - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" class="bar">'
            f"<title>{esc(span)}: {b.count} case{'' if b.count == 1 else 's'}</title></rect>"
        )
    parts += _x_edges(bins, left, top + height, bar_w, edge_format)
    parts += _markers(bins, markers or {}, left, top, height, bar_w)
    parts += _axes(left, top, width, height, x_label, "cases")
    return "\n".join([*parts, "</svg>"])


def _x_edges(bins: Sequence[Bin], left: int, bottom: int, bar_w: float, fmt: str) -> list[str]:
    """Bin-edge labels under the x axis (every second one when there are many bins)."""
    edges = [b.low for b in bins] + [bins[-1].high] if bins else []
    stride = 1 if len(edges) <= 11 else 2
    return [
        f'<text x="{left + i * bar_w:.1f}" y="{bottom + 14}" text-anchor="middle" class="tick">{edge:{fmt}}</text>'
        for i, edge in enumerate(edges)
        if i % stride == 0
    ]


def _markers(bins: Sequence[Bin], markers: Mapping[str, float], left: int, top: int, height: int, bar_w: float) -> list[str]:
    """Dashed vertical lines at marker values, labelled at the top, staggered so close ones stay legible."""
    if not bins:
        return []
    low, high = bins[0].low, bins[-1].high
    parts = []
    for i, (name, value) in enumerate(markers.items()):
        x = left + (min(max(value, low), high) - low) / ((high - low) or 1) * bar_w * len(bins)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height}" class="marker">'
            f"<title>{esc(name)}</title></line>"
        )
        parts.append(f'<text x="{x + 3:.1f}" y="{top + 10 + 12 * i}" class="marker-label">{esc(name)}</text>')
    return parts


def grouped_bars_svg(groups: Mapping[str, Mapping[str, float | None]], series: Sequence[str], *, title: str) -> str:
    """One group of bars per key of `groups` (a tag), one bar per series (0..1), with a legend."""
    bar_w, gap = 14, 18
    group_w = bar_w * len(series) + gap
    left, top, height = 45, 54, 170
    width = max(len(groups) * group_w, sum(24 + 7 * len(m) for m in series), 320)  # the legend fits too
    parts = _svg_open(left + width + 20, top + height + 62, title)
    parts += _legend(series, left, 36)
    parts += _y_ticks([0, 0.25, 0.5, 0.75, 1.0], height, left, top + height, ".2f")
    for g, (name, means) in enumerate(groups.items()):
        x0 = left + gap / 2 + g * group_w
        parts += _group_bars(name, means, series, x0, top + height, height, bar_w)
        label = name if len(name) <= 12 else name[:11] + "…"
        parts.append(
            f'<text x="{x0 + bar_w * len(series) / 2:.1f}" y="{top + height + 14}" text-anchor="middle" '
            f'class="tick">{esc(label)}<title>{esc(name)}</title></text>'
        )
    parts += _axes(left, top, width, height, "tag", "mean")
    return "\n".join([*parts, "</svg>"])


def _group_bars(
    name: str, means: Mapping[str, float | None], series: Sequence[str], x0: float, bottom: int, height: int, bar_w: int
) -> list[str]:
    """The bars of one group; a missing mean draws a dash at the baseline instead of a zero bar."""
    parts = []
    for s, metric in enumerate(series):
        x, value = x0 + s * bar_w, means.get(metric)
        if value is None:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{bottom - 3}" text-anchor="middle" class="tick">–</text>')
            continue
        h = min(max(value, 0.0), 1.0) * height
        parts.append(
            f'<rect x="{x:.1f}" y="{bottom - h:.1f}" width="{bar_w - 1}" height="{h:.1f}" '
            f'fill="{SERIES_COLORS[s % len(SERIES_COLORS)]}"><title>{esc(name)} · {esc(metric)}: {value:.3f}</title></rect>'
        )
    return parts


def _legend(series: Sequence[str], left: int, y: int) -> list[str]:
    """A one-line legend: a colour swatch and the series name for each series."""
    parts, x = [], left
    for s, metric in enumerate(series):
        color = SERIES_COLORS[s % len(SERIES_COLORS)]
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{color}" class="swatch"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" class="tick">{esc(metric)}</text>')
        x += 24 + 7 * len(metric)
    return parts


def confusion_html(labels: Sequence[str], counts: Mapping[str, Mapping[str, int]]) -> str:
    """Expected × actual decisions as a table shaded by count: green on the diagonal, red off it."""
    top = max((counts.get(e, {}).get(a, 0) for e in labels for a in labels), default=0) or 1
    head = "".join(f'<th scope="col">{esc(a)}</th>' for a in labels)
    rows = [f'<tr><th scope="col">expected ↓ / actual →</th>{head}</tr>']
    for expected in labels:
        cells = "".join(_confusion_cell(expected, actual, counts.get(expected, {}).get(actual, 0), top) for actual in labels)
        rows.append(f'<tr><th scope="row">{esc(expected)}</th>{cells}</tr>')
    return '<table class="confusion">' + "".join(rows) + "</table>"


def _confusion_cell(expected: str, actual: str, count: int, top: int) -> str:
    """One shaded cell whose tooltip spells out what the count means."""
    hue = "89,161,79" if expected == actual else "225,87,89"
    alpha = 0.12 + 0.78 * count / top if count else 0.0
    tip = f"expected {expected}, answered {actual}: {count}"
    return f'<td style="background: rgba({hue},{alpha:.2f})" title="{esc(tip)}">{count}</td>'


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:1em 2em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
svg.chart{background:#fff;border:1px solid #ddd}.axis{stroke:#555}.bar{fill:#4e79a7}
.marker{stroke:#c0392b;stroke-dasharray:4 3}.marker-label{fill:#c0392b;font-size:11px}
.title{font-weight:600;font-size:13px}.tick{font-size:10px;fill:#444}.label{font-size:11px;fill:#333}
.case{background:#fff;border:1px solid #ddd;border-radius:4px;padding:.5em 1em;margin:1em 0}
.case.wrong{border-left:4px solid #c0392b}mark.bad{background:#f8d7da;color:#a00}.claims li{color:#a00}
blockquote{margin:.3em 0;padding:.3em .8em;border-left:3px solid #ccc;white-space:pre-wrap}
.confusion td{text-align:center;min-width:4em}.note{color:#666}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An escaped HTML table; cells that hold a number (or the missing-value dash) are right-aligned."""
    cells = "".join(f'<th scope="col">{esc(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _td(cell: str) -> str:
    """One escaped cell, marked numeric so that columns of scores line up on the decimal point."""
    return f"<td class=num>{esc(cell)}</td>" if _NUMBER.match(cell) else f"<td>{esc(cell)}</td>"


def html_marked(text: str, phrases: Sequence[str]) -> str:
    """`text` escaped, with every verbatim occurrence of a phrase (an unsupported claim) in a red <mark>."""
    spans = sorted((m.start(), m.end()) for p in phrases if p.strip() for m in re.finditer(re.escape(p.strip()), text))
    out, at = [], 0
    for start, end in spans:
        if start >= at:
            out += [esc(text[at:start]), f'<mark class="bad" title="unsupported">{esc(text[start:end])}</mark>']
            at = end
    return "".join([*out, esc(text[at:])])


_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|~&])")
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_MD_LEADING = re.compile(r"^([-+=#])|^(\d{1,9})\.(?=\s|$)")


def plain(text: object) -> str:
    """One line of text: control characters dropped and whitespace runs collapsed."""
    return " ".join(_CONTROL.sub("", str(text)).split())


def md_inline(text: object) -> str:
    """Inline-safe Markdown on one line: link, code, emphasis, HTML and table syntax backslash-escaped.

    Underscores inside words (`answer_relevance`) stay as they are: they cannot start emphasis.
    """
    escaped = _MD_UNDERSCORE.sub(r"\\_", _MD_SPECIAL.sub(r"\\\1", plain(text)))
    return _MD_LEADING.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\.", escaped)


def md_fenced(text: str, prefix: str = "") -> list[str]:
    """Text in a code fence longer than any backtick run inside it, so nothing in it can close the fence."""
    body = [line for para in _CONTROL.sub("", text).splitlines() for line in textwrap.wrap(para, 100) or [""]]
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return [f"{prefix}{line}".rstrip() for line in [fence + "text", *body, fence]]


def md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub table with every cell escaped, so each row has exactly the header's cell count."""
    lines = ["| " + " | ".join(md_inline(h) for h in head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(md_inline(c) or " " for c in row) + " |" for row in rows]


def _bar(fraction: float) -> str:
    """A bar of up to _BAR_CHARS block characters, with an eighth-block tip for resolution."""
    eighths = round(min(max(fraction, 0.0), 1.0) * _BAR_CHARS * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (_BLOCKS[rest] if rest else "")).ljust(_BAR_CHARS)


def text_histogram(
    name: str, bins: Sequence[Bin], edge_format: str, markers: Mapping[str, float] | None = None
) -> list[str]:
    """Histogram rows such as `faithfulness 0.9–1.0 ████████ 34`, a marker noted on the row it falls in."""
    top = max((b.count for b in bins), default=0) or 1
    spans = [f"{b.low:{edge_format}}–{b.high:{edge_format}}" for b in bins]
    pad = max((len(s) for s in spans), default=0)
    rows = []
    for i, (b, span) in enumerate(zip(bins, spans, strict=True)):
        last = i == len(bins) - 1
        notes = [m for m, v in (markers or {}).items() if b.low <= v < b.high or (last and v >= b.low)]
        note = f"  ← {', '.join(notes)}" if notes else ""
        rows.append(f"{name} {span.rjust(pad)} {_bar(b.count / top)} {b.count}{note}")
    return rows


def text_bars(groups: Mapping[str, Mapping[str, float | None]], series: Sequence[str]) -> list[str]:
    """Grouped bar rows for 0..1 means: one row per group and series, `–` for a missing mean."""
    pad_g = max((len(g) for g in groups), default=0)
    pad_s = max((len(s) for s in series), default=0)
    rows = []
    for group, means in groups.items():
        for metric in series:
            value = means.get(metric)
            shown = "–" if value is None else f"{_bar(value)} {value:.3f}"
            rows.append(f"{group.ljust(pad_g)} {metric.ljust(pad_s)} {shown}")
    return rows
