"""Rendered reports (immutable artefacts once done) and the editable text of a pilot's SOW definition.

A ``Report`` row is the unit of background work: requested (pending), claimed by one
worker (running), then either done — with its stored file and that file's SHA-256 —
or failed with a readable error. A done report is never re-rendered: asking again
makes a new row, so what was handed to leadership stays byte-identical.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from assessments.organisations.models import Organisation
from assessments.pilots.models import Pilot


class ReportKind(models.TextChoices):
    PILOT = "pilot", "Pilot readiness report (PDF)"
    PORTFOLIO = "portfolio", "Portfolio report (PDF)"
    SOW_MD = "sow_md", "Statement-of-work definition (Markdown)"
    SOW_DOCX = "sow_docx", "Statement-of-work definition (Word)"
    SOW_PDF = "sow_pdf", "Statement-of-work definition (PDF)"
    DOSSIER = "dossier", "Auditor's dossier (zip)"


SOW_KINDS = frozenset({ReportKind.SOW_MD, ReportKind.SOW_DOCX, ReportKind.SOW_PDF})


class ReportStatus(models.TextChoices):
    PENDING = "pending", "Waiting to start"
    RUNNING = "running", "Rendering"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


def _report_upload_to(instance: Report, filename: str) -> str:
    # A random name: the file is served only through the members-only download view.
    return f"reports/{instance.requested_at:%Y/%m}/{uuid.uuid4().hex}-{filename}"


class Report(models.Model):
    """One requested rendering of a report; once done, an immutable file with its SHA-256."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="reports")
    # Only a portfolio report has no pilot (the database enforces it).
    pilot = models.ForeignKey(Pilot, on_delete=models.PROTECT, null=True, blank=True, related_name="reports")
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    status = models.CharField(max_length=20, choices=ReportStatus.choices, default=ReportStatus.PENDING)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The reviews fingerprint of the assessment the report reflects; blank for a portfolio.
    fingerprint = models.CharField(max_length=64, blank=True)
    file = models.FileField(upload_to=_report_upload_to, blank=True, max_length=300)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Headline figures the renderer reported (overall score, verdict), so the next report of
    # the same pilot can say how things moved without opening this one's file.
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["pilot", "kind", "-requested_at"], name="report_pilot_kind_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ReportKind.values), name="report_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=ReportStatus.values), name="report_status_valid"),
            models.CheckConstraint(
                condition=(Q(kind=ReportKind.PORTFOLIO) & Q(pilot__isnull=True))
                | (~Q(kind=ReportKind.PORTFOLIO) & Q(pilot__isnull=False)),
                name="report_pilot_iff_not_portfolio",
            ),
            models.CheckConstraint(
                condition=(Q(status=ReportStatus.DONE) & ~Q(file="") & ~Q(sha256=""))
                | (~Q(status=ReportStatus.DONE) & Q(file="") & Q(sha256="")),
                name="report_done_iff_file",
            ),
            models.CheckConstraint(
                condition=(Q(status=ReportStatus.FAILED) & ~Q(error=""))
                | (~Q(status=ReportStatus.FAILED) & Q(error="")),
                name="report_failed_iff_error",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (ReportStatus.DONE, ReportStatus.FAILED)


class SowText(models.Model):
    """The editable preamble and scope of one pilot's statement-of-work readiness definition.

    ``version`` guards concurrent edits the same way criterion responses do.
    """

    pilot = models.OneToOneField(Pilot, on_delete=models.CASCADE, related_name="sow_text")
    preamble = models.TextField(blank=True)
    scope = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"SOW text for {self.pilot}"
