"""Readiness frameworks: versioned sets of gaps and criteria."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from assessments.organisations.models import Organisation


class FrameworkStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class Framework(models.Model):
    """One version of a readiness framework. Published versions are immutable."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="frameworks")
    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=FrameworkStatus.choices, default=FrameworkStatus.DRAFT)
    based_on = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="derived_versions"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name", "version"], name="framework_unique_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="framework_version_positive"),
            models.CheckConstraint(condition=Q(status__in=FrameworkStatus.values), name="framework_status_valid"),
            # A draft has never been published; anything else has a publication time.
            models.CheckConstraint(
                condition=(Q(status=FrameworkStatus.DRAFT) & Q(published_at__isnull=True))
                | (~Q(status=FrameworkStatus.DRAFT) & Q(published_at__isnull=False)),
                name="framework_published_at_matches_status",
            ),
        ]
        ordering = ["organisation", "name", "-version"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_editable(self) -> bool:
        return self.status == FrameworkStatus.DRAFT


class GapKey(models.TextChoices):
    EVALS = "evals", "Evals"
    OBSERVABILITY = "observability", "Observability"
    GUARDRAILS = "guardrails", "Guardrails"
    GOVERNANCE = "governance", "Governance"
    COST = "cost", "Cost"
    OWNERSHIP = "ownership", "Ownership"


class Gap(models.Model):
    """One of the six readiness gaps within a framework version."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="gaps")
    key = models.CharField(max_length=20, choices=GapKey.choices)
    name = models.CharField(max_length=100)
    order = models.PositiveSmallIntegerField()
    weight = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(100)])
    description = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["framework", "key"], name="gap_unique_key"),
            models.UniqueConstraint(fields=["framework", "order"], name="gap_unique_order"),
            models.CheckConstraint(condition=Q(key__in=GapKey.values), name="gap_key_valid"),
            models.CheckConstraint(
                condition=Q(weight__gte=1) & Q(weight__lte=100),
                name="gap_weight_range",
                violation_error_message="A gap's weight is between 1 and 100.",
            ),
        ]
        ordering = ["framework", "order"]

    def __str__(self) -> str:
        return self.name


class Severity(models.TextChoices):
    BLOCKING = "blocking", "Blocking"
    MAJOR = "major", "Major"
    MINOR = "minor", "Minor"


class CheckKind(models.TextChoices):
    EVAL_PASS_RATE = "eval_pass_rate", "Golden-set pass rate"
    EVAL_REGRESSION = "eval_regression", "No eval regression"
    REDTEAM_COVERAGE = "redteam_coverage", "Red-team probe coverage"
    CI_CHECKS_PASSING = "ci_checks_passing", "CI checks passing"
    BRANCH_PROTECTION = "branch_protection", "Branch protection"
    TRACE_CAPTURE = "trace_capture", "Trace capture"
    ALERT_RULE_EXISTS = "alert_rule_exists", "Alert rule exists"
    ONCALL_MIN_PEOPLE = "oncall_min_people", "On-call rotation size"
    COST_PER_TASK_WITHIN_ENVELOPE = "cost_per_task_within_envelope", "Cost per task within envelope"


class RiskTier(models.TextChoices):
    MINIMAL = "minimal", "Minimal"
    LIMITED = "limited", "Limited"
    HIGH = "high", "High"


class Criterion(models.Model):
    """A single requirement within a gap, with guidance and the evidence that proves it."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="criteria")
    gap = models.ForeignKey(Gap, on_delete=models.CASCADE, related_name="criteria")
    code = models.CharField(max_length=20)
    order = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(max_length=200)
    guidance = models.TextField()
    cost_if_missing = models.TextField()
    severity = models.CharField(max_length=10, choices=Severity.choices)
    evidence_expected = models.TextField()
    check_kind = models.CharField("automated check", max_length=40, choices=CheckKind.choices, blank=True)
    max_evidence_age_days = models.PositiveIntegerField(
        "maximum evidence age (days)", default=180, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    applies_to_minimal = models.BooleanField("applies to minimal-risk pilots", default=True)
    applies_to_limited = models.BooleanField("applies to limited-risk pilots", default=True)
    applies_to_high = models.BooleanField("applies to high-risk pilots", default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["framework", "code"], name="criterion_unique_code"),
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="criterion_severity_valid"),
            models.CheckConstraint(
                condition=Q(check_kind="") | Q(check_kind__in=CheckKind.values), name="criterion_check_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(max_evidence_age_days__gte=1) & Q(max_evidence_age_days__lte=3650),
                name="criterion_evidence_age_range",
                violation_error_message="Evidence can count for between 1 and 3650 days.",
            ),
            models.CheckConstraint(
                condition=Q(applies_to_minimal=True) | Q(applies_to_limited=True) | Q(applies_to_high=True),
                name="criterion_applies_to_some_tier",
                violation_error_message="Choose at least one risk tier the criterion applies to.",
            ),
        ]
        ordering = ["gap__order", "order", "code"]
        verbose_name_plural = "criteria"

    def __str__(self) -> str:
        return f"{self.code} {self.title}"

    @property
    def risk_tiers(self) -> list[str]:
        tiers = [
            (RiskTier.MINIMAL, self.applies_to_minimal),
            (RiskTier.LIMITED, self.applies_to_limited),
            (RiskTier.HIGH, self.applies_to_high),
        ]
        return [str(tier) for tier, applies in tiers if applies]

    def applies_to(self, tier: str) -> bool:
        return tier in self.risk_tiers


class MappingScheme(models.TextChoices):
    EU_AI_ACT = "eu_ai_act", "EU AI Act"
    ISO_42001 = "iso_42001", "ISO/IEC 42001 Annex A"
    NIST_AI_RMF = "nist_ai_rmf", "NIST AI RMF"
    OWASP_LLM = "owasp_llm", "OWASP Top 10 for LLM"


class RegulatoryMapping(models.Model):
    """Links a criterion to an external obligation (article, control or subcategory)."""

    criterion = models.ForeignKey(Criterion, on_delete=models.CASCADE, related_name="mappings")
    scheme = models.CharField(max_length=20, choices=MappingScheme.choices)
    reference = models.CharField(max_length=40)
    title = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["criterion", "scheme", "reference"], name="mapping_unique_reference"),
            models.CheckConstraint(condition=Q(scheme__in=MappingScheme.values), name="mapping_scheme_valid"),
            models.CheckConstraint(condition=~Q(reference=""), name="mapping_reference_present"),
        ]
        ordering = ["criterion", "scheme", "reference"]

    def __str__(self) -> str:
        return f"{self.get_scheme_display()} {self.reference}"
