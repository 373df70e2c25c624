"""Server-rendered SVG charts of gap scores, shared by the pages and the PDF reports.

Pure functions returning markup with every value escaped; no JavaScript, no inline
styles (the Content Security Policy forbids them), so the same SVG renders in the
browser and in WeasyPrint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from assessments.frameworks.scoring import GapScore


def score_band(score: int | None) -> str:
    if score is None:
        return "na"
    if score >= 80:
        return "good"
    if score >= 50:
        return "mid"
    return "low"


def _point(cx: float, cy: float, radius: float, index: int, count: int) -> tuple[float, float]:
    angle = -math.pi / 2 + 2 * math.pi * index / count
    return cx + radius * math.cos(angle), cy + radius * math.sin(angle)


def radar_svg(gaps: Sequence[GapScore], *, size: int = 320, title: str = "Readiness by gap") -> SafeString:
    """A radar chart: one spoke per gap, rings at 25/50/75/100, the score polygon filled."""
    count = len(gaps)
    if count < 3:
        return mark_safe("")
    cx = cy = size / 2
    radius = size / 2 - 58
    parts = [
        # Labels sit outside the rings: pad the view box sideways so long gap names fit.
        f'<svg xmlns="http://www.w3.org/2000/svg" class="radar" viewBox="-70 0 {size + 140} {size}" '
        f'width="{size + 140}" height="{size}" role="img" aria-labelledby="radar-title">',
        f'<title id="radar-title">{escape(title)}: '
        + escape(", ".join(f"{g.name} {'n/a' if g.score is None else g.score}" for g in gaps))
        + "</title>",
    ]
    for ring in (25, 50, 75, 100):
        points = " ".join(
            f"{x:.1f},{y:.1f}" for x, y in (_point(cx, cy, radius * ring / 100, i, count) for i in range(count))
        )
        parts.append(f'<polygon points="{points}" fill="none" stroke="#d5dce4" stroke-width="1"/>')
    for i, gap in enumerate(gaps):
        x, y = _point(cx, cy, radius, i, count)
        parts.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#d5dce4" stroke-width="1"/>')
        lx, ly = _point(cx, cy, radius + 26, i, count)
        anchor = "middle" if abs(lx - cx) < 8 else ("start" if lx > cx else "end")
        value = "n/a" if gap.score is None else str(gap.score)
        parts.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" font-size="12" fill="#1c2430" '
            f'font-family="DejaVu Sans, sans-serif">{escape(gap.name)}</text>'
            f'<text x="{lx:.1f}" y="{ly + 14:.1f}" text-anchor="{anchor}" font-size="11" fill="#5b6676" '
            f'font-family="DejaVu Sans, sans-serif">{value}</text>'
        )
    score_points = " ".join(
        f"{x:.1f},{y:.1f}"
        for x, y in (_point(cx, cy, radius * (g.score or 0) / 100, i, count) for i, g in enumerate(gaps))
    )
    parts.append(
        f'<polygon class="radar-score" points="{score_points}" fill="#1f4e79" fill-opacity="0.25" '
        'stroke="#1f4e79" stroke-width="2"/>'
    )
    for i, g in enumerate(gaps):
        x, y = _point(cx, cy, radius * (g.score or 0) / 100, i, count)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1f4e79"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


BAND_COLOURS = {"good": "#1b7f4b", "mid": "#c48a00", "low": "#b42318", "na": "#b7c0cc"}


def mini_bars_svg(gaps: Sequence[GapScore]) -> SafeString:
    """Six small vertical bars for the portfolio table, one per gap."""
    width, height, bar, gap_px = 6 * 10, 22, 8, 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="minibars" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="'
        + escape(", ".join(f"{g.name} {'n/a' if g.score is None else g.score}" for g in gaps))
        + '">'
    ]
    for i, g in enumerate(gaps):
        h = max(2, round((g.score or 0) / 100 * height))
        x = i * (bar + gap_px)
        parts.append(f'<rect x="{x}" y="0" width="{bar}" height="{height}" fill="#eef1f5"/>')
        parts.append(
            f'<rect x="{x}" y="{height - h}" width="{bar}" height="{h}" fill="{BAND_COLOURS[score_band(g.score)]}">'
            f"<title>{escape(g.name)}: {'n/a' if g.score is None else g.score}</title></rect>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
