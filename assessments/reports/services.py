"""Requesting and rendering reports. Rendering never runs in a request: the request
service writes a pending row and queues the job after commit; the job claims the row
with a compare-and-set, renders in the sandbox, stores the file and records one audit
event carrying the file's SHA-256. A failure of any kind leaves a failed row with a
sentence a person can act on — never an exception for the page to show as a 500.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.services import audit_record
from assessments.frameworks.models import HeldEvidence
from assessments.organisations.models import Organisation, Role
from assessments.organisations.permissions import require, require_member
from assessments.pilots.models import Pilot
from assessments.pilots.scorecache import scores_refresh_held
from assessments.pilots.selectors import assessment_open
from assessments.reports.models import SOW_KINDS, Report, ReportKind, ReportStatus
from assessments.reports.renderers import Rendered, RendererMissing, ReportUnavailable, renderer_for
from assessments.reports.sandbox import RenderError
from assessments.reviews.fingerprint import fingerprint_current
from readiness.jobs import TRANSIENT_ERRORS

logger = logging.getLogger(__name__)

RENDER_ACTOR = Actor.system("report_render")
# An auditor's dossier carries the organisation's whole audit trail, not just one pilot's page.
DOSSIER_ROLES = frozenset({Role.ADMIN, Role.RISK})
# A claimed render that has not finished in this long died with its worker; it may be
# claimed again, at most MAX_ATTEMPTS times in all.
MAX_ATTEMPTS = 3


def _stuck_after() -> dt.timedelta:
    return dt.timedelta(seconds=int(settings.REPORT_RENDER_TIMEOUT) * 2 + 60)


def _enqueue(report_id: int) -> None:
    transaction.on_commit(lambda: _enqueue_now(report_id))


def _enqueue_now(report_id: int) -> None:
    from assessments.reports.tasks import report_render  # tasks import the services

    try:
        report_render.delay(report_id)
    except TRANSIENT_ERRORS:
        # The row is committed but no job carries it: fail it with a sentence now, rather
        # than answer the request with a 500 and leave a line that waits for ever.
        logger.warning("report %s could not be queued", report_id, exc_info=True)
        report = Report.objects.filter(pk=report_id).first()
        if report is not None:
            _finish_failed(
                report,
                "The report could not be queued: the job queue is not answering. Request it again in a few minutes.",
            )


@transaction.atomic
def report_request(
    *,
    kind: str,
    actor: Actor,
    pilot: Pilot | None = None,
    organisation: Organisation | None = None,
    enqueue: bool = True,
) -> Report:
    """Queue a new report. Every member who may read the pilot (or, for a portfolio, the
    organisation) may ask for one; a finished report is never re-rendered, so asking again
    makes a new row, but while one of the same kind is still waiting or rendering, asking
    again returns that one. ``enqueue=False`` is for callers that render it themselves
    (the shell command)."""
    if kind not in ReportKind.values:
        raise ValidationError(f"Unknown kind of report: {kind!r}.")
    if kind == ReportKind.PORTFOLIO:
        if organisation is None or pilot is not None:
            raise ValidationError("A portfolio report is asked for an organisation, not a pilot.")
    else:
        if pilot is None:
            raise ValidationError("This report is asked for a pilot.")
        organisation = pilot.organisation
    try:
        renderer_for(kind)
    except RendererMissing as exc:
        raise ValidationError("That kind of report cannot be made here yet.") from exc
    roles = require_member(actor=actor, organisation=organisation)
    if kind == ReportKind.DOSSIER:
        require(
            bool(roles & DOSSIER_ROLES) or actor.type == "system",
            "Only administrators and risk & compliance build an auditor's dossier (it holds the "
            "organisation's whole audit trail).",
        )
    # One open report of a kind per pilot (or portfolio): asking again while one is waiting or
    # rendering returns it (and sends its job again, in case the first message was lost; a
    # duplicate delivery does nothing), so repeated clicks cannot queue unbounded renders.
    Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
    open_one = (
        Report.objects.filter(
            organisation=organisation, pilot=pilot, kind=kind, status__in=[ReportStatus.PENDING, ReportStatus.RUNNING]
        )
        .order_by("pk")
        .first()
    )
    if open_one is not None:
        if enqueue:
            _enqueue(open_one.pk)
        return open_one
    report = Report.objects.create(
        organisation=organisation,
        pilot=pilot,
        kind=kind,
        requested_by_id=actor.user_pk,
        requested_at=timezone.now(),
    )
    audit_record(
        organisation=organisation,
        actor=actor,
        action="report.requested",
        object_type="report",
        object_id=report.pk,
        changes={"kind": [None, kind], "status": [None, ReportStatus.PENDING]},
        pilot_id=pilot.pk if pilot else None,
    )
    if enqueue:
        _enqueue(report.pk)
    return report


def _claim(report_id: int) -> Report | None:
    """Compare-and-set pending → running (or take over a render that died); None if another
    worker has it or it is finished, so a duplicate delivery does nothing."""
    now = timezone.now()
    claimable = Q(status=ReportStatus.PENDING) | Q(status=ReportStatus.RUNNING, started_at__lt=now - _stuck_after())
    claimed = (
        Report.objects.filter(claimable, pk=report_id)
        .filter(attempts__lt=MAX_ATTEMPTS)
        .update(status=ReportStatus.RUNNING, started_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        _give_up_if_exhausted(report_id)
        return None
    return Report.objects.select_related("organisation", "pilot__organisation").get(pk=report_id)


def _give_up_if_exhausted(report_id: int) -> None:
    # A pending row that has used its attempts was handed back after a transient error
    # (its started_at cleared): nothing will claim it again, so it fails now rather than
    # polling "Waiting to start" for ever. A running one may still be rendering until it is stuck.
    stuck = Report.objects.filter(
        Q(status=ReportStatus.PENDING) | Q(status=ReportStatus.RUNNING, started_at__lt=timezone.now() - _stuck_after()),
        pk=report_id,
        attempts__gte=MAX_ATTEMPTS,
    ).first()
    if stuck is not None:
        _finish_failed(stuck, f"Rendering stopped {MAX_ATTEMPTS} times without finishing; request the report again.")


def _fingerprint(report: Report) -> str:
    if report.pilot is None:
        return ""
    assessment = assessment_open(pilot=report.pilot)
    return fingerprint_current(assessment_id=assessment.pk)[0] if assessment else ""


def _readable(exc: BaseException) -> str:
    if isinstance(exc, RenderError | ReportUnavailable | ValidationError | PermissionDenied | RendererMissing):
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return (text or type(exc).__name__)[:1000]
    return (
        f"The report could not be rendered because of an internal error ({type(exc).__name__}). "
        "Request it again; if it fails again, tell an administrator."
    )


@transaction.atomic
def _finish_failed(report: Report, error: str) -> None:
    updated = Report.objects.filter(pk=report.pk, status__in=[ReportStatus.PENDING, ReportStatus.RUNNING]).update(
        status=ReportStatus.FAILED, error=error, finished_at=timezone.now()
    )
    if updated:
        audit_record(
            organisation=report.organisation,
            actor=RENDER_ACTOR,
            action="report.failed",
            object_type="report",
            object_id=report.pk,
            changes={"status": [report.status, ReportStatus.FAILED], "error": [None, error]},
            pilot_id=report.pilot_id,
        )


def _store(report: Report, rendered: Rendered, fingerprint: str) -> bool:
    """Write the file, then flip the row to done in one transaction with its audit event.
    False (and the file removed) if the row was no longer ours."""
    digest = hashlib.sha256(rendered.content).hexdigest()
    name = default_storage.save(
        report.file.field.generate_filename(report, rendered.filename), ContentFile(rendered.content)
    )
    try:
        with transaction.atomic():
            updated = Report.objects.filter(pk=report.pk, status=ReportStatus.RUNNING, attempts=report.attempts).update(
                status=ReportStatus.DONE,
                file=name,
                sha256=digest,
                size=len(rendered.content),
                fingerprint=fingerprint,
                summary=rendered.summary,
                finished_at=timezone.now(),
            )
            if updated:
                audit_record(
                    organisation=report.organisation,
                    actor=RENDER_ACTOR,
                    action="report.rendered",
                    object_type="report",
                    object_id=report.pk,
                    changes={
                        "status": [ReportStatus.RUNNING, ReportStatus.DONE],
                        "sha256": [None, digest],
                        "size": [None, len(rendered.content)],
                        "fingerprint": [None, fingerprint],
                    },
                    pilot_id=report.pilot_id,
                )
    except BaseException:
        default_storage.delete(name)
        raise
    if not updated:
        default_storage.delete(name)
    return bool(updated)


def _held_rescore(report: Report) -> None:
    """A criterion may count a generated SOW definition as its evidence: rescore the pilot.
    The report is done whatever happens here; a failure is logged and the hourly rescore
    catches up, rather than failing (or retrying) a finished report."""
    if report.kind not in SOW_KINDS or report.pilot_id is None:
        return
    try:
        scores_refresh_held(
            kind=HeldEvidence.SOW_DEFINITION, organisation_id=report.organisation_id, pilot_id=report.pilot_id
        )
    except Exception:
        logger.exception("report %s is done, but rescoring pilot %s after it failed", report.pk, report.pilot_id)


def report_render_execute(*, report_id: int) -> Report | None:
    """Render one queued report (the Celery job's body). Safe to run twice: the second
    delivery finds the row claimed or finished and does nothing. Returns the row as it
    ended, or None if it does not exist or was not ours to render. A transient error
    (``readiness.jobs.TRANSIENT_ERRORS``) puts the row back to pending and propagates, so
    the job retries; every other error fails the row with a readable sentence."""
    report = _claim(report_id)
    if report is None:
        return None
    try:
        fingerprint = _fingerprint(report)
        rendered = renderer_for(report.kind)(report)
        if not rendered.content:
            raise RenderError("The renderer produced an empty file.")
        stored = _store(report, rendered, fingerprint)
    except TRANSIENT_ERRORS:
        # The database or broker is away for a moment: hand the row back and let the job's
        # retry (with backoff) claim it again, rather than failing a report that would render.
        with contextlib.suppress(Exception):
            Report.objects.filter(pk=report.pk, status=ReportStatus.RUNNING, attempts=report.attempts).update(
                status=ReportStatus.PENDING, started_at=None
            )
        raise
    except Exception as exc:
        logger.warning("report %s (%s) failed to render", report.pk, report.kind, exc_info=True)
        _finish_failed(report, _readable(exc))
    else:
        if stored:
            _held_rescore(report)
    return Report.objects.get(pk=report.pk)


def reports_requeue_stale(*, older_than: dt.timedelta = dt.timedelta(minutes=2)) -> int:
    """Send the job again for every report still waiting after ``older_than`` (its message was
    lost: a broker restart, a worker killed before it acknowledged) and every render stuck
    past its lease; the claim's compare-and-set makes a duplicate delivery harmless, and a
    row out of attempts fails with a sentence. Returns how many were sent."""
    now = timezone.now()
    stale = Report.objects.filter(
        Q(status=ReportStatus.PENDING, requested_at__lt=now - older_than)
        | Q(status=ReportStatus.RUNNING, started_at__lt=now - _stuck_after())
    ).values_list("pk", flat=True)
    ids = list(stale[:500])
    for report_id in ids:
        _enqueue_now(report_id)
    return len(ids)
