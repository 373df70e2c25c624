"""Demo linked systems: real tool outputs under fixtures/evidence/, read with no network.

A new user sees a passing eval check, a regression (the same golden set, a later run that
fell below its baseline), a failing red-team check and the cost projection, each already
run once; the worker re-runs them on schedule.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from assessments.audit.context import Actor
from assessments.evidence.models import CheckRun, RunTrigger
from assessments.evidence.services import check_create, check_run_execute, linked_system_create, linked_system_update
from assessments.frameworks.models import Criterion
from assessments.pilots.models import Assessment, AssessmentStatus, Pilot

SYSTEMS: list[dict[str, Any]] = [
    {
        "name": "Golden set (pytest)",
        "kind": "eval_results",
        "fixture": "junit-goldenset-pass.xml",
        "check": {
            "criterion": "EV-03",
            "name": "Golden-set pass rate",
            "metric": "pass_rate",
            "comparator": "gte",
            "threshold": 0.9,
        },
    },
    {
        "name": "Golden set (promptfoo)",
        "kind": "eval_results",
        "fixture": "promptfoo-goldenset-pass.json",
        "later": "promptfoo-goldenset-regression.json",
        "check": {
            "criterion": "EV-04",
            "name": "No regression against the baseline",
            "metric": "pass_rate",
            "comparator": "gte",
            "threshold": 0.5,
            "tolerance": 0.05,
        },
    },
    {
        "name": "garak red-team report",
        "kind": "eval_results",
        "fixture": "garak-test_with_ci.report.jsonl",
        "check": {
            "criterion": "EV-05",
            "name": "Red-team probes pass",
            "metric": "pass_rate",
            "comparator": "gte",
            "threshold": 0.9,
        },
    },
    {
        "name": "Usage export",
        "kind": "usage_cost",
        "fixture": "usage-requests.csv",
        "check": {
            "criterion": "CO-03",
            "name": "Cost per task within the envelope",
            # cost per task divided by the pilot's envelope: over 1 is over budget
            "metric": "envelope_ratio",
            "comparator": "lte",
            "threshold": 1.0,
        },
    },
]


def _run(check_id: int, at: dt.datetime) -> None:
    run = CheckRun.objects.create(check_rule_id=check_id, trigger=RunTrigger.SCHEDULE, queued_at=at)
    check_run_execute(run_id=run.pk, now=at)


def demo_link_systems(*, pilot: Pilot, today: dt.date) -> None:
    """Link the demo systems to ``pilot``, write their checks and run each once (on ``today``)."""
    at = timezone.make_aware(dt.datetime.combine(today, timezone.localtime().time()))
    actor = Actor.system("demo.seed")
    framework_id = (
        Assessment.objects.filter(pilot=pilot)
        .exclude(status=AssessmentStatus.SUPERSEDED)
        .values_list("framework_id", flat=True)
        .get()
    )
    for spec in SYSTEMS:
        system = linked_system_create(
            pilot=pilot, actor=actor, kind=spec["kind"], name=spec["name"], configuration={"fixture": spec["fixture"]}
        )
        rule = dict(spec["check"])
        criterion = Criterion.objects.get(framework_id=framework_id, code=rule.pop("criterion"))
        check = check_create(system=system, criterion=criterion, actor=actor, **rule)
        _run(check.pk, at)
        if "later" in spec:  # a later run of the same golden set, after a prompt change
            linked_system_update(system=system, actor=actor, configuration={"fixture": spec["later"]})
            _run(check.pk, at)
