"""Readiness frameworks: versioned sets of gaps and criteria."""

from __future__ import annotations

from django.core.exceptions import ValidationError
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
    LATENCY_BUDGET = "latency_budget", "Latency within budget"


class HeldEvidence(models.TextChoices):
    """Evidence Preflight itself holds: the criterion counts it without an upload."""

    REVIEW_SIGNOFF = "review_signoff", "Signed joint review in Preflight"
    SOW_DEFINITION = "sow_definition", "Statement-of-work readiness definition in Preflight"
    AUDIT_TRAIL = "audit_trail", "Preflight's hash-chained audit trail"


class RiskTier(models.TextChoices):
    MINIMAL = "minimal", "Minimal"
    LIMITED = "limited", "Limited"
    HIGH = "high", "High"


TIER_ORDER = {RiskTier.MINIMAL.value: 0, RiskTier.LIMITED.value: 1, RiskTier.HIGH.value: 2}
SEVERITY_RANK = {Severity.MINOR.value: 0, Severity.MAJOR.value: 1, Severity.BLOCKING.value: 2}


def _tiers_from(tier: str) -> str:
    """ "high-risk", "limited- and high-risk": the tiers from ``tier`` upwards, in words."""
    names = [t.label.lower() for t in RiskTier if TIER_ORDER[t.value] >= TIER_ORDER[tier]]
    if len(names) == 1:
        return f"{names[0]}-risk"
    return ", ".join(f"{n}-" for n in names[:-1]) + f" and {names[-1]}-risk"


def _tier_severity_constraint(tier: str) -> models.CheckConstraint:
    """A tier's severity is set exactly when the criterion applies to that tier."""
    applies, severity = f"applies_to_{tier}", f"severity_{tier}"
    return models.CheckConstraint(
        condition=(Q(**{applies: True}) & Q(**{f"{severity}__in": Severity.values}))
        | (Q(**{applies: False}) & Q(**{severity: ""})),
        name=f"criterion_severity_{tier}_matches_tier",
        violation_error_message=f"Give a severity for the {tier} tier exactly when the criterion applies to it.",
    )


class Criterion(models.Model):
    """A single requirement within a gap, with guidance and the evidence that proves it."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="criteria")
    gap = models.ForeignKey(Gap, on_delete=models.CASCADE, related_name="criteria")
    code = models.CharField(max_length=20)
    order = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(max_length=200)
    guidance = models.TextField()
    cost_if_missing = models.TextField()
    # Severity per risk tier; blank exactly where the criterion does not apply (a constraint ties the two).
    severity_minimal = models.CharField(
        "severity for minimal-risk pilots", max_length=10, choices=Severity.choices, blank=True
    )
    severity_limited = models.CharField(
        "severity for limited-risk pilots", max_length=10, choices=Severity.choices, blank=True
    )
    severity_high = models.CharField(
        "severity for high-risk pilots", max_length=10, choices=Severity.choices, blank=True
    )
    evidence_expected = models.TextField()
    check_kind = models.CharField("automated check", max_length=40, choices=CheckKind.choices, blank=True)
    preflight_evidence = models.CharField(
        "evidence Preflight holds", max_length=20, choices=HeldEvidence.choices, blank=True
    )
    max_evidence_age_days = models.PositiveIntegerField(
        "maximum evidence age (days)", default=180, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    applies_to_minimal = models.BooleanField("applies to minimal-risk pilots", default=True)
    applies_to_limited = models.BooleanField("applies to limited-risk pilots", default=True)
    applies_to_high = models.BooleanField("applies to high-risk pilots", default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["framework", "code"], name="criterion_unique_code"),
            _tier_severity_constraint(RiskTier.MINIMAL),
            _tier_severity_constraint(RiskTier.LIMITED),
            _tier_severity_constraint(RiskTier.HIGH),
            models.CheckConstraint(
                condition=Q(preflight_evidence="") | Q(preflight_evidence__in=HeldEvidence.values),
                name="criterion_preflight_evidence_valid",
            ),
            # One criterion per framework counts each kind of evidence Preflight holds.
            models.UniqueConstraint(
                fields=["framework", "preflight_evidence"],
                condition=~Q(preflight_evidence=""),
                name="criterion_one_per_held_evidence",
                violation_error_message="Another criterion of this framework already counts that evidence.",
            ),
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

    def clean(self) -> None:
        """What the framework loader refuses too: a criterion that matters less for a riskier
        pilot, and a second criterion of the framework counting the same evidence Preflight holds."""
        errors: dict[str, str] = {}
        floor: tuple[str, str] | None = None  # the lowest tier's severity so far, and that tier
        for tier in RiskTier.values:
            severity = getattr(self, f"severity_{tier}")
            if severity not in SEVERITY_RANK:
                continue
            if floor is not None and SEVERITY_RANK[severity] < SEVERITY_RANK[floor[0]]:
                errors[f"severity_{tier}"] = (
                    f"{Severity(severity).label} here but {floor[0]} for {floor[1]}-risk pilots: "
                    "a criterion cannot matter less for a riskier pilot."
                )
            else:
                floor = (severity, tier)
        if self.preflight_evidence and self.framework_id is not None:
            other = (
                Criterion.objects.filter(framework_id=self.framework_id, preflight_evidence=self.preflight_evidence)
                .exclude(pk=self.pk)
                .values_list("code", flat=True)
                .first()
            )
            if other is not None:
                errors["preflight_evidence"] = (
                    f"{other} already counts this evidence; a framework counts each kind in one criterion."
                )
        if errors:
            raise ValidationError(errors)

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

    def severity_for(self, tier: str) -> str:
        """The criterion's severity for a pilot of ``tier``; blank where it does not apply."""
        return str(getattr(self, f"severity_{tier}", "") or "") if tier in TIER_ORDER else ""

    def severity_label_for(self, tier: str) -> str:
        severity = self.severity_for(tier)
        return Severity(severity).label if severity else "Does not apply"

    @property
    def severity_by_tier(self) -> dict[str, str]:
        return {tier: self.severity_for(tier) for tier in self.risk_tiers}

    @property
    def top_severity(self) -> str:
        """The highest severity at any tier (what a framework list sorts and colours by)."""
        return max(self.severity_by_tier.values(), key=SEVERITY_RANK.__getitem__, default=Severity.MINOR.value)

    @property
    def severity_summary(self) -> str:
        """ "Blocking" when one severity holds at every tier it applies to, else each tier's, lowest tier first."""
        by_tier = self.severity_by_tier
        if len(set(by_tier.values())) == 1:
            return Severity(next(iter(by_tier.values()))).label
        return " · ".join(f"{RiskTier(t).label}: {Severity(s).label.lower()}" for t, s in by_tier.items())


class MappingScheme(models.TextChoices):
    EU_AI_ACT = "eu_ai_act", "EU AI Act"
    ISO_42001 = "iso_42001", "ISO/IEC 42001 Annex A"
    NIST_AI_RMF = "nist_ai_rmf", "NIST AI RMF"
    OWASP_LLM = "owasp_llm", "OWASP Top 10 for LLM 2025"
    GDPR = "gdpr", "GDPR"


class RegulatoryMapping(models.Model):
    """Links a criterion to an external obligation (article, control or subcategory)."""

    criterion = models.ForeignKey(Criterion, on_delete=models.CASCADE, related_name="mappings")
    scheme = models.CharField(max_length=20, choices=MappingScheme.choices)
    reference = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    # The lowest risk tier at which the cited text is a legal obligation (from the regulation
    # catalogue); blank for voluntary standards and for law that binds whatever the tier.
    obligation_from = models.CharField("an obligation from tier", max_length=10, choices=RiskTier.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["criterion", "scheme", "reference"], name="mapping_unique_reference"),
            models.CheckConstraint(condition=Q(scheme__in=MappingScheme.values), name="mapping_scheme_valid"),
            models.CheckConstraint(condition=~Q(reference=""), name="mapping_reference_present"),
            models.CheckConstraint(
                condition=Q(obligation_from="") | Q(obligation_from__in=RiskTier.values),
                name="mapping_obligation_tier_valid",
            ),
        ]
        ordering = ["criterion", "scheme", "reference"]

    def __str__(self) -> str:
        return f"{self.get_scheme_display()} {self.reference}"

    @property
    def applies_as(self) -> str:
        """How the cited text binds this criterion's pilots, in words."""
        if self.scheme == MappingScheme.GDPR:
            return "A legal obligation wherever personal data is processed"
        if self.note:
            return f"{self.note[0].upper()}{self.note[1:]}; aligned practice below that tier"
        if self.obligation_from == RiskTier.MINIMAL:
            return "A legal obligation at every risk tier"
        if self.obligation_from:
            return f"A legal obligation for {_tiers_from(self.obligation_from)} pilots"
        return "Aligned practice (a voluntary standard)"

    @property
    def note(self) -> str:
        """``tier_note`` for this mapping's own criterion."""
        return self.tier_note(self.criterion.risk_tiers)

    def tier_note(self, criterion_tiers: list[str]) -> str:
        """ "an obligation for high-risk pilots only" where the criterion also applies below that tier."""
        if not self.obligation_from or not criterion_tiers:
            return ""
        lowest = min(criterion_tiers, key=TIER_ORDER.__getitem__)
        if TIER_ORDER[self.obligation_from] <= TIER_ORDER[lowest]:
            return ""
        return f"an obligation for {_tiers_from(self.obligation_from)} pilots only"
