"""A check's recent runs as a small server-rendered SVG (no script, prints as it shows)."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from assessments.evidence.models import CheckRun, RunStatus, Verdict

WIDTH, HEIGHT, PAD = 160, 36, 4


def sparkline_svg(runs: Sequence[CheckRun], *, threshold: float | None = None) -> SafeString:
    """Values as a line, each run as a dot (green pass, red fail, grey could not read),
    and the threshold as a dashed line when it falls inside the range shown."""
    if not runs:
        return mark_safe("")
    values = [r.value for r in runs if r.value is not None]
    low = min([*values, *([threshold] if threshold is not None and values else [])], default=0.0)
    high = max([*values, *([threshold] if threshold is not None and values else [])], default=1.0)
    span = (high - low) or 1.0
    step = (WIDTH - 2 * PAD) / max(1, len(runs) - 1)

    def y(value: float) -> float:
        return HEIGHT - PAD - (value - low) / span * (HEIGHT - 2 * PAD)

    points: list[tuple[float, float]] = []
    dots: list[tuple[float, float, str, str]] = []
    for i, run in enumerate(runs):
        x = PAD + i * step
        if run.value is None or run.status != RunStatus.OK:
            dots.append((x, HEIGHT - PAD, "spark-error", f"{run.finished_at:%d %b %H:%M}: could not read the system"))
            continue
        points.append((x, y(run.value)))
        css = "spark-pass" if run.verdict == Verdict.PASS else "spark-fail"
        dots.append((x, y(run.value), css, f"{run.finished_at:%d %b %H:%M}: {run.value:g} ({run.verdict})"))
    line = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in points)
    limit = (
        format_html(
            '<line class="spark-threshold" x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}"/>',
            PAD,
            WIDTH - PAD,
            y(threshold),
            y(threshold),
        )
        if threshold is not None and values
        else ""
    )
    circles = format_html_join(
        "",
        '<circle class="{}" cx="{:.1f}" cy="{:.1f}" r="2.5"><title>{}</title></circle>',
        ((css, x, yy, title) for x, yy, css, title in dots),
    )
    return format_html(
        '<svg class="sparkline" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">'
        '{}<polyline class="spark-line" points="{}"/>{}</svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        f"Last {len(runs)} runs",
        limit,
        line,
        circles,
    )
