"""Pilots, their assessments against a framework version, responses and manual evidence."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from assessments.frameworks.models import Criterion, Framework, RiskTier
from assessments.organisations.models import Organisation


class Stage(models.TextChoices):
    PILOT = "pilot", "Pilot"
    CANDIDATE = "candidate", "Production candidate"
    PRODUCTION = "production", "Production"
    PAUSED = "paused", "Paused"
    RETIRED = "retired", "Retired"


class DataSensitivity(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted (personal or regulated data)"


class Pilot(models.Model):
    """An AI pilot: the system whose production readiness is assessed."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="pilots")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.PILOT)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.LIMITED)
    data_sensitivity = models.CharField(
        max_length=20, choices=DataSensitivity.choices, default=DataSensitivity.INTERNAL
    )
    model_providers = models.CharField(
        max_length=300, blank=True, help_text="Comma-separated, e.g. 'OpenAI, Anthropic (via Bedrock)'."
    )
    data_leaves_boundary = models.BooleanField(
        default=False, help_text="Does prompt or context data leave the organisation's boundary?"
    )
    business_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    technical_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    oncall_contact = models.CharField(max_length=200, blank=True)
    value_metric_name = models.CharField(max_length=200, blank=True)
    value_metric_unit = models.CharField(max_length=40, blank=True)
    value_baseline = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    value_target = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    value_current = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    expected_monthly_volume = models.PositiveIntegerField(null=True, blank=True)
    cost_envelope_per_task = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="USD per task.",
        validators=[MinValueValidator(0)],
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "slug"], name="pilot_unique_slug"),
            models.CheckConstraint(condition=Q(stage__in=Stage.values), name="pilot_stage_valid"),
            models.CheckConstraint(condition=Q(risk_tier__in=RiskTier.values), name="pilot_risk_tier_valid"),
            models.CheckConstraint(
                condition=Q(data_sensitivity__in=DataSensitivity.values), name="pilot_sensitivity_valid"
            ),
            models.CheckConstraint(
                condition=Q(cost_envelope_per_task__isnull=True) | Q(cost_envelope_per_task__gte=0),
                name="pilot_cost_envelope_non_negative",
                violation_error_message="The cost envelope cannot be negative.",
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Comparator(models.TextChoices):
    LT = "lt", "<"
    LTE = "lte", "≤"
    GT = "gt", ">"
    GTE = "gte", "≥"


class StopConditionStatus(models.TextChoices):
    ARMED = "armed", "Armed"
    TRIGGERED = "triggered", "Triggered"
    RETIRED = "retired", "Retired"


class StopCondition(models.Model):
    """A written condition under which the programme is paused."""

    pilot = models.ForeignKey(Pilot, on_delete=models.CASCADE, related_name="stop_conditions")
    condition = models.TextField()
    metric = models.CharField(max_length=200)
    comparator = models.CharField(max_length=4, choices=Comparator.choices)
    threshold = models.DecimalField(max_digits=14, decimal_places=4)
    status = models.CharField(max_length=20, choices=StopConditionStatus.choices, default=StopConditionStatus.ARMED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(comparator__in=Comparator.values), name="stop_comparator_valid"),
            models.CheckConstraint(condition=Q(status__in=StopConditionStatus.values), name="stop_status_valid"),
            models.CheckConstraint(condition=~Q(condition=""), name="stop_condition_present"),
        ]
        ordering = ["pilot", "created_at"]

    def __str__(self) -> str:
        return f"{self.metric} {self.get_comparator_display()} {self.threshold}"


class AssessmentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions", "Approved with conditions"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"


class Assessment(models.Model):
    """A pilot assessed against one framework version. A pilot has at most one open assessment."""

    pilot = models.ForeignKey(Pilot, on_delete=models.CASCADE, related_name="assessments")
    framework = models.ForeignKey(Framework, on_delete=models.PROTECT, related_name="assessments")
    status = models.CharField(max_length=30, choices=AssessmentStatus.choices, default=AssessmentStatus.DRAFT)
    target_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pilot"],
                condition=~Q(status=AssessmentStatus.SUPERSEDED),
                name="assessment_one_open_per_pilot",
            ),
            models.CheckConstraint(condition=Q(status__in=AssessmentStatus.values), name="assessment_status_valid"),
        ]
        ordering = ["pilot", "-created_at"]

    def __str__(self) -> str:
        return f"{self.pilot} against {self.framework}"


class ResponseStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    MET = "met", "Met"
    PARTLY_MET = "partly_met", "Partly met"
    NOT_MET = "not_met", "Not met"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class Response(models.Model):
    """The answer to one criterion within an assessment. ``version`` guards concurrent edits."""

    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="responses")
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="responses")
    status = models.CharField(max_length=20, choices=ResponseStatus.choices, default=ResponseStatus.NOT_STARTED)
    justification = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    due_date = models.DateField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assessment", "criterion"], name="response_unique_criterion"),
            models.CheckConstraint(condition=Q(status__in=ResponseStatus.values), name="response_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=ResponseStatus.NOT_APPLICABLE) | ~Q(justification=""),
                name="response_not_applicable_needs_justification",
                violation_error_message="Say why this criterion does not apply.",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="response_version_positive"),
        ]
        ordering = ["assessment", "criterion__gap__order", "criterion__order"]

    def __str__(self) -> str:
        return f"{self.criterion.code}: {self.get_status_display()}"


class EvidenceKind(models.TextChoices):
    LINK = "link", "Link"
    FILE = "file", "File"
    NOTE = "note", "Note"


class Evidence(models.Model):
    """Manual evidence for a response: a link, an uploaded file (with its SHA-256) or a note."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="evidence")
    kind = models.CharField(max_length=10, choices=EvidenceKind.choices)
    title = models.CharField(max_length=200)
    url = models.URLField(max_length=2000, blank=True)
    file = models.FileField(upload_to="evidence/%Y/%m/", blank=True, max_length=300)
    original_filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)
    effective_date = models.DateField()
    expires_on = models.DateField(null=True, blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # A plain default rather than auto_now_add, so a copy (a move to a new framework
    # version) keeps the time the evidence was first added.
    added_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EvidenceKind.values), name="evidence_kind_valid"),
            models.CheckConstraint(condition=~Q(kind=EvidenceKind.LINK) | ~Q(url=""), name="evidence_link_has_url"),
            models.CheckConstraint(
                condition=~Q(kind=EvidenceKind.FILE) | (~Q(file="") & ~Q(sha256="")),
                name="evidence_file_has_hash",
            ),
            models.CheckConstraint(condition=~Q(kind=EvidenceKind.NOTE) | ~Q(note=""), name="evidence_note_has_text"),
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True) | Q(expires_on__gte=models.F("effective_date")),
                name="evidence_expires_after_effective",
                violation_error_message="Expiry must be on or after the effective date.",
            ),
        ]
        ordering = ["response", "-effective_date", "-added_at"]
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return self.title


class AssessmentScore(models.Model):
    """Cached scorecard of an assessment, so the portfolio can filter and sort in SQL.

    Derived data only: recomputed in the same transaction as every response or
    evidence change, and daily for the passage of time (evidence going stale).
    The scoring functions remain the source of truth.
    """

    assessment = models.OneToOneField(Assessment, on_delete=models.CASCADE, primary_key=True, related_name="score")
    overall = models.PositiveSmallIntegerField(null=True)
    evals = models.PositiveSmallIntegerField(null=True)
    observability = models.PositiveSmallIntegerField(null=True)
    guardrails = models.PositiveSmallIntegerField(null=True)
    governance = models.PositiveSmallIntegerField(null=True)
    cost = models.PositiveSmallIntegerField(null=True)
    ownership = models.PositiveSmallIntegerField(null=True)
    blockers = models.PositiveIntegerField(default=0)
    stale_evidence = models.PositiveIntegerField(default=0)
    expiring_evidence = models.PositiveIntegerField(default=0)
    is_ready = models.BooleanField(default=False)
    computed_on = models.DateField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(overall__isnull=True) | Q(overall__lte=100), name="score_overall_range"),
            models.CheckConstraint(condition=Q(is_ready=False) | Q(blockers=0), name="score_ready_means_no_blockers"),
        ]
        indexes = [models.Index(fields=["computed_on"], name="score_computed_on")]

    def __str__(self) -> str:
        return f"{self.assessment}: {self.overall}"
