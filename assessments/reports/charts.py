"""SVG charts for the reports (the radar comes from ``frameworks.charts``, as on the pilot page).

Every value is escaped; fills are chosen by lightness as well as hue and every bar carries
its number as text, so a greyscale print still reads.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from assessments.frameworks.charts import score_band
from assessments.frameworks.scoring import GapScore

FONT = 'font-family="DejaVu Sans, sans-serif"'
# Dark, middle and light: distinct in greyscale as well as in colour.
BAND_FILL = {"good": "#1f4e79", "mid": "#7d8fa3", "low": "#c9d2dc", "na": "#eef1f5"}
INK = "#1c2430"
MUTED = "#5b6676"


def _svg(width: int, height: int, label: str, body: list[str]) -> SafeString:
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def hbars_svg(
    rows: Sequence[tuple[str, float | None, str]], *, maximum: float, label: str, width: int = 520, unit: str = ""
) -> SafeString:
    """Horizontal bars: (label, value, band) per row; the value is printed beside its bar."""
    line, left, right = 24, 170, 60
    span = width - left - right
    body: list[str] = []
    for i, (name, value, band) in enumerate(rows):
        y = i * line
        shown = "n/a" if value is None else f"{value:g}{unit}"
        w = 0 if value is None or maximum <= 0 else max(1.0, span * min(value, maximum) / maximum)
        body.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="11" fill="{INK}" {FONT}>'
            f"{escape(name)}</text>"
            f'<rect x="{left}" y="{y + 4}" width="{span}" height="14" fill="#f4f6f9" stroke="#d5dce4"/>'
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="14" fill="{BAND_FILL.get(band, BAND_FILL["mid"])}" '
            'stroke="#1c2430" stroke-width="0.5"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" font-size="11" fill="{INK}" {FONT}>{escape(shown)}</text>'
        )
    return _svg(width, max(line, len(rows) * line), label, body)


def gap_bars_svg(gaps: Sequence[GapScore]) -> SafeString:
    """The six gaps as bars out of 100, shaded by band."""
    return hbars_svg(
        [(g.name, g.score, score_band(g.score)) for g in gaps], maximum=100, label="Score by gap (out of 100)"
    )


def columns_svg(columns: Sequence[tuple[str, int]], *, label: str, width: int = 520, height: int = 170) -> SafeString:
    """Vertical columns with their counts on top (readiness distribution, stage funnel)."""
    count = max(1, len(columns))
    top = max([v for _n, v in columns] + [1])
    slot = width / count
    plot = height - 56  # 16 above the tallest column for its count, 36 below for the labels
    body: list[str] = [f'<line x1="0" y1="{plot + 20}" x2="{width}" y2="{plot + 20}" stroke="#8a96a6"/>']
    for i, (name, value) in enumerate(columns):
        h = plot * value / top
        x = i * slot + slot * 0.18
        body.append(
            f'<rect x="{x:.1f}" y="{plot + 20 - h:.1f}" width="{slot * 0.64:.1f}" height="{h:.1f}" '
            f'fill="{BAND_FILL["good"] if value else BAND_FILL["na"]}"/>'
            f'<text x="{i * slot + slot / 2:.1f}" y="{plot + 15 - h:.1f}" text-anchor="middle" font-size="11" '
            f'fill="{INK}" {FONT}>{value}</text>'
            f'<text x="{i * slot + slot / 2:.1f}" y="{height - 18}" text-anchor="middle" font-size="10" '
            f'fill="{MUTED}" {FONT}>{escape(name)}</text>'
        )
    return _svg(width, height, label, body)
