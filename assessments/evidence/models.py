"""Linked systems, the check rules that read them, and each run of a check.

A pilot links the systems it runs on (an eval-results file, a GitHub repository, a
Prometheus server…). A check ties one criterion of the pilot's checklist to one linked
system with a rule ("pass_rate ≥ 0.95"); each run fetches facts through the system's
connector and records a verdict. The latest run of each check feeds readiness: a pass
is current evidence, a fail or an error keeps the criterion from counting as met.
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from assessments.frameworks.models import Criterion
from assessments.organisations.models import Organisation
from assessments.pilots.models import Pilot


class SystemKind(models.TextChoices):
    EVAL_RESULTS = "eval_results", "Eval results (file or URL)"
    USAGE_COST = "usage_cost", "Usage and cost export"
    GITHUB = "github", "GitHub repository"
    PROMETHEUS = "prometheus", "Prometheus"
    PAGERDUTY = "pagerduty", "PagerDuty"
    HTTP_JSON = "http_json", "HTTP JSON endpoint"


MIN_INTERVAL_MINUTES = 5
MAX_INTERVAL_MINUTES = 7 * 24 * 60


class LinkedSystem(models.Model):
    """A system a pilot runs on, from which checks read facts.

    ``configuration`` holds the kind's settings (a URL, a repository name, a demo file);
    ``credentials`` holds secrets encrypted with CREDENTIALS_KEYS (see ``credentials.py``),
    bound to this row so a ciphertext copied to another row does not decrypt there.
    """

    pilot = models.ForeignKey(Pilot, on_delete=models.CASCADE, related_name="linked_systems")
    kind = models.CharField(max_length=20, choices=SystemKind.choices)
    name = models.CharField(max_length=120)
    configuration = models.JSONField(default=dict, blank=True)
    credentials = models.TextField(blank=True, editable=False)
    # An uploaded file (eval results, a usage export) the connector reads instead of a URL.
    upload = models.FileField(upload_to="linked/%Y/%m/", blank=True, max_length=300)
    upload_name = models.CharField(max_length=255, blank=True)
    upload_sha256 = models.CharField(max_length=64, blank=True)
    check_interval_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(MIN_INTERVAL_MINUTES), MaxValueValidator(MAX_INTERVAL_MINUTES)]
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=SystemKind.values), name="linked_system_kind_valid"),
            models.CheckConstraint(
                condition=Q(check_interval_minutes__gte=MIN_INTERVAL_MINUTES)
                & Q(check_interval_minutes__lte=MAX_INTERVAL_MINUTES),
                name="linked_system_interval_range",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="linked_system_named"),
            models.CheckConstraint(condition=Q(upload="") | ~Q(upload_sha256=""), name="linked_system_upload_has_hash"),
            models.UniqueConstraint(fields=["pilot", "name"], name="linked_system_name_unique_per_pilot"),
        ]
        ordering = ["pilot", "name"]

    def __str__(self) -> str:
        return self.name

    def edit_token(self) -> str:
        """A digest of what the edit form shows, so a save over someone else's change is refused."""
        state = [
            self.name,
            self.configuration,
            self.check_interval_minutes,
            self.enabled,
            self.upload_sha256,
            hashlib.sha256(self.credentials.encode()).hexdigest(),
        ]
        return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:32]


class Comparator(models.TextChoices):
    GTE = "gte", "≥"
    GT = "gt", ">"
    LTE = "lte", "≤"
    LT = "lt", "<"
    EQ = "eq", "="


class Check(models.Model):
    """A rule over one linked system's facts that answers (part of) one criterion.

    ``tolerance`` (when set) also fails the check when the metric falls more than that far
    below ``baseline`` (the first passing value, unless set by hand): a regression is caught
    even while the absolute threshold still holds. ``dataset_fingerprint`` (when set) must
    match the dataset the run reports, so a swapped golden set cannot pass silently.
    Every change to the rule is audited before any run can use it.
    """

    linked_system = models.ForeignKey(LinkedSystem, on_delete=models.CASCADE, related_name="checks")
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    metric = models.CharField(max_length=120)
    comparator = models.CharField(max_length=4, choices=Comparator.choices)
    threshold = models.FloatField()
    tolerance = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    baseline = models.FloatField(null=True, blank=True)
    dataset_fingerprint = models.CharField(max_length=200, blank=True)
    next_run_at = models.DateTimeField(default=timezone.now, db_index=True)
    rule_changed_at = models.DateTimeField(default=timezone.now)
    rule_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rule_version = models.PositiveIntegerField(default=1)
    # Derived from the runs, kept on the row so readiness reads every check in one query.
    latest_run = models.ForeignKey(
        "CheckRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    # HMAC over the rule (see seal.py): a rule changed outside the services is not run.
    rule_seal = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(comparator__in=Comparator.values), name="check_comparator_valid"),
            models.CheckConstraint(condition=~Q(metric=""), name="check_has_metric"),
            models.CheckConstraint(condition=~Q(name=""), name="check_named"),
            models.CheckConstraint(
                condition=Q(tolerance__isnull=True) | Q(tolerance__gte=0), name="check_tolerance_not_negative"
            ),
            models.UniqueConstraint(fields=["linked_system", "name"], name="check_name_unique_per_system"),
        ]
        ordering = ["linked_system", "name"]

    def __str__(self) -> str:
        return self.name

    def rule_text(self) -> str:
        text = f"{self.metric} {self.get_comparator_display()} {self.threshold:g}"
        if self.tolerance is not None:
            text += f", at most {self.tolerance:g} below baseline"
            if self.baseline is not None:
                text += f" {self.baseline:g}"
        return text


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    OK = "ok", "Finished"
    FAILED = "failed", "Could not read the system"
    ERROR = "error", "Internal error"


class Verdict(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Re-check now"


FINISHED = (RunStatus.OK, RunStatus.FAILED, RunStatus.ERROR)


class CheckRun(models.Model):
    """One run of a check: claimed by one worker, finished once, with the facts it read.

    The rule in force is copied into ``rule`` when the run starts, so a later change to
    the check does not rewrite what this run was judged against.
    """

    check_rule = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="runs", db_column="check_id")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices, default=RunTrigger.SCHEDULE)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    rule = models.JSONField(default=dict, blank=True)
    facts = models.JSONField(default=dict, blank=True)
    value = models.FloatField(null=True, blank=True)
    payload_sha256 = models.CharField(max_length=64, blank=True)
    payload_size = models.PositiveBigIntegerField(default=0)
    verdict = models.CharField(max_length=4, choices=Verdict.choices, blank=True)
    message = models.TextField(blank=True)
    # The check passed on its previous run and does not now: its owner is told once.
    is_regression = models.BooleanField(default=False)
    # HMAC over the outcome (see seal.py): a finished run altered outside the services
    # counts as unreadable instead of as its altered verdict.
    outcome_seal = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="check_run_status_valid"),
            models.CheckConstraint(condition=Q(trigger__in=RunTrigger.values), name="check_run_trigger_valid"),
            # A verdict exactly when the run finished reading the system.
            models.CheckConstraint(
                condition=(Q(status=RunStatus.OK) & Q(verdict__in=Verdict.values))
                | (~Q(status=RunStatus.OK) & Q(verdict="")),
                name="check_run_verdict_iff_ok",
            ),
            models.CheckConstraint(
                condition=Q(status=RunStatus.QUEUED) | Q(started_at__isnull=False),
                name="check_run_started_unless_queued",
            ),
            models.CheckConstraint(
                condition=(Q(status__in=FINISHED) & Q(finished_at__isnull=False))
                | (~Q(status__in=FINISHED) & Q(finished_at__isnull=True)),
                name="check_run_finished_iff_done",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=FINISHED) | ~Q(outcome_seal=""), name="check_run_finished_is_sealed"
            ),
            # At most one unfinished run per check: "re-check now" twice queues one run.
            models.UniqueConstraint(
                fields=["check_rule"],
                condition=Q(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]),
                name="check_run_one_open_per_check",
            ),
        ]
        indexes = [models.Index(fields=["check_rule", "-queued_at"], name="check_run_newest")]
        ordering = ["-queued_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.check_rule} run {self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def is_sealed(self) -> bool:
        """The outcome is the one the check runner recorded (not altered in the database)."""
        from assessments.evidence.seal import outcome_sealed

        return self.is_open or outcome_sealed(self)


class AlertWebhook(models.Model):
    """An organisation's Slack-compatible incoming webhook for regression alerts.

    The URL is a secret (the path is the token), so it is stored encrypted like linked
    systems' credentials and only its host is shown. No webhook: no row.
    """

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="alert_webhook")
    url_ciphertext = models.TextField(editable=False)
    host = models.CharField(max_length=255)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(url_ciphertext=""), name="alert_webhook_has_url"),
            models.CheckConstraint(condition=~Q(host=""), name="alert_webhook_has_host"),
        ]

    def __str__(self) -> str:
        return f"Webhook to {self.host}"
