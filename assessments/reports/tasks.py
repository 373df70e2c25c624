"""Background rendering of reports."""

from __future__ import annotations

import logging

from assessments.reports.models import Report
from assessments.reports.services import report_render_execute, reports_requeue_stale
from readiness.jobs import job

logger = logging.getLogger(__name__)


@job()
def report_render(report_id: int) -> str:
    """Render one report row; a missing row is logged and skipped, a duplicate delivery does nothing."""
    if not Report.objects.filter(pk=report_id).exists():
        logger.warning("report %s no longer exists; nothing to render", report_id)
        return "missing"
    report = report_render_execute(report_id=report_id)
    return report.status if report is not None else "skipped"


@job()
def reports_requeue() -> int:
    """Every minute: send again the job of a report whose message was lost or whose render is stuck."""
    return reports_requeue_stale()
