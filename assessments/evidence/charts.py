"""A check's recent runs as a small server-rendered SVG (no script, prints as it shows)."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from assessments.evidence.models import CheckRun, RunStatus, Verdict

WIDTH, HEIGHT, PAD = 160, 36, 4


def _n(value: float) -> str:
    """A coordinate as text: format_html escapes its arguments to strings before formatting."""
    return f"{value:.1f}"


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
            '<line class="spark-threshold" x1="{}" x2="{}" y1="{}" y2="{}"/>',
            PAD,
            WIDTH - PAD,
            _n(y(threshold)),
            _n(y(threshold)),
        )
        if threshold is not None and values
        else ""
    )
    circles = format_html_join(
        "",
        '<circle class="{}" cx="{}" cy="{}" r="2.5"><title>{}</title></circle>',
        ((css, _n(x), _n(yy), title) for x, yy, css, title in dots),
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


COST_W, COST_H = 480, 150
# The right margin holds the envelope's label, beside its line instead of over the points.
COST_LEFT, COST_RIGHT, COST_TOP, COST_BOTTOM = 56, 96, 12, 26


def _money(value: float) -> str:
    return f"${value:,.4f}".rstrip("0").rstrip(".") if value < 1 else f"${value:,.2f}"


def cost_chart_svg(series: Sequence[tuple[str, float]], *, envelope: float | None) -> SafeString:
    """Cost per task by day as a line, with the pilot's envelope as a dashed line: the days
    over the envelope are drawn as red dots, the others green. Labels are text, so it prints."""
    if not series:
        return mark_safe("")
    values = [value for _, value in series]
    high = max([*values, *([envelope] if envelope is not None else [])]) * 1.1 or 1.0
    plot_w = COST_W - COST_LEFT - COST_RIGHT
    plot_h = COST_H - COST_TOP - COST_BOTTOM
    step = plot_w / max(1, len(series) - 1)

    def x(i: int) -> float:
        return COST_LEFT + (i * step if len(series) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return COST_TOP + plot_h - value / high * plot_h

    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    over = envelope is not None
    dots = format_html_join(
        "",
        '<circle class="{}" cx="{}" cy="{}" r="3"><title>{}: {} per task</title></circle>',
        (
            (
                "spark-fail" if over and value > (envelope or 0) else "spark-pass",
                _n(x(i)),
                _n(y(value)),
                day,
                _money(value),
            )
            for i, (day, value) in enumerate(series)
        ),
    )
    limit = (
        format_html(
            '<line class="cost-envelope" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="cost-label" x="{}" y="{}">envelope {}</text>',
            COST_LEFT,
            COST_W - COST_RIGHT,
            _n(y(envelope)),
            _n(y(envelope)),
            COST_W - COST_RIGHT + 6,
            _n(y(envelope) + 3),
            _money(envelope),
        )
        if envelope is not None
        else ""
    )
    axes = format_html(
        '<line class="cost-axis" x1="{l}" x2="{l}" y1="{t}" y2="{b}"/>'
        '<line class="cost-axis" x1="{l}" x2="{r}" y1="{b}" y2="{b}"/>'
        '<text class="cost-label" x="{lx}" y="{ty}" text-anchor="end">{top}</text>'
        '<text class="cost-label" x="{lx}" y="{b}" text-anchor="end">$0</text>'
        '<text class="cost-label" x="{l}" y="{dy}">{first}</text>'
        '<text class="cost-label" x="{r}" y="{dy}" text-anchor="end">{last}</text>',
        l=COST_LEFT,
        r=COST_W - COST_RIGHT,
        t=COST_TOP,
        b=COST_TOP + plot_h,
        lx=COST_LEFT - 4,
        ty=COST_TOP + 8,
        dy=COST_H - 8,
        top=_money(high),
        first=series[0][0],
        last=series[-1][0] if len(series) > 1 else "",
    )
    label = f"Cost per task over {len(series)} days" + (
        f" against the {_money(envelope)} envelope" if envelope is not None else ""
    )
    return format_html(
        '<svg class="cost-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}{}'
        '<polyline class="spark-line" points="{}"/>{}</svg>',
        COST_W,
        COST_H,
        label,
        axes,
        limit,
        line,
        dots,
    )
