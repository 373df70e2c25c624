"""The demo loads through the services, once, into the states the README promises,
and reads like a real team's work: its own evidence, its own words, dates that move
with the day it is seeded."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from assessments.audit.models import AuditEvent
from assessments.organisations.models import Membership, Organisation
from assessments.pilots.demo import demo_seed
from assessments.pilots.models import Evidence, Pilot, Response
from assessments.pilots.selectors import assessment_open, checklist, scorecard

TODAY = dt.date(2026, 11, 22)
# A seed day in another month and year: the promised states must not depend on the calendar.
SEED_DAYS = [TODAY, dt.date(2027, 2, 28)]
URL = re.compile(r"https?://[^\s)\]>]+")
DAY = re.compile(r"\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b")
REVIEWERS = {"dan", "sam", "rita", "priya"}
# Which reviewer may own which gap's criteria: security, risk, product, delivery by field.
REVIEWER_FIELDS = {
    "evals": {"sam", "rita"},
    "observability": {"dan"},
    "guardrails": {"sam", "dan"},  # delivery builds the fallback when the model fails
    "governance": {"rita", "sam"},
    "cost": {"priya"},
    "ownership": {"dan", "sam", "rita"},
}


def _counts() -> tuple[int, ...]:
    return (
        Organisation.objects.count(),
        User.objects.count(),
        Membership.objects.count(),
        Pilot.objects.count(),
        Response.objects.exclude(status="not_started").count(),
        Evidence.objects.count(),
        AuditEvent.objects.count(),
    )


def _on_example_domain(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    reserved = ("example", "example.com", "example.net", "example.org")
    return parts.scheme == "https" and any(host == name or host.endswith(f".{name}") for name in reserved)


def test_seeding_twice_gives_the_same_data(db):
    first = demo_seed(today=TODAY)
    after_first = _counts()
    second = demo_seed(today=TODAY)
    assert first.created and not second.created
    assert _counts() == after_first
    assert after_first[3] == 4 and after_first[6] > 200


@pytest.mark.parametrize("seed_day", SEED_DAYS)
def test_the_four_pilots_are_in_the_promised_states(db, seed_day):
    demo_seed(today=seed_day)
    cards = {p.name: scorecard(assessment=assessment_open(pilot=p), today=seed_day) for p in Pilot.objects.all()}
    nearly = cards["Support reply drafting"]
    # Risk rejected the joint review over GV-03, so the go/no-go criterion has no signed approval.
    assert not nearly.is_ready and [(b.code, b.reason) for b in nearly.blockers] == [
        ("GV-03", "only partly met"),
        ("GV-12", "unanswered, and Preflight holds no signed joint review in Preflight yet"),
    ]
    blocked = cards["Credit limit explainer"]
    assert Pilot.objects.get(name="Credit limit explainer").risk_tier == "high"
    # On v2 the cost criteria are major (the envelope is a stop condition); the high tier's
    # legal duties and the failing red-team check block instead.
    assert {b.gap_key for b in blocked.blockers} == {"evals", "guardrails", "governance"}
    assert {"EV-05", "GV-14"} <= {b.code for b in blocked.blockers}
    started = cards["Contract clause finder"]
    assert started.overall is not None and started.overall < 10
    production = cards["IT helpdesk assistant"]
    assert Pilot.objects.get(name="IT helpdesk assistant").stage == "production"
    assert production.is_ready
    # Evidence goes stale only where the README says so: one piece, on the helpdesk assistant.
    # (Counted over the teams' own evidence: the audit checkpoint Preflight holds is signed at
    # the real time of seeding, which a seed day in the future would see as old.)
    stale = {
        p.name: sum(
            e.freshness == "stale"
            for row in checklist(assessment=assessment_open(pilot=p), today=seed_day).rows
            for e in row.evidence
        )
        for p in Pilot.objects.all()
    }
    assert stale == {
        "Support reply drafting": 0,
        "Credit limit explainer": 0,
        "Contract clause finder": 0,
        "IT helpdesk assistant": 1,
    }


def test_dates_are_relative_to_the_seed_day(db):
    seed_day = SEED_DAYS[1]
    demo_seed(today=seed_day)
    due = list(Response.objects.exclude(due_date=None).values_list("due_date", "owner"))
    assert len(due) >= 10
    offsets = sorted((when - seed_day).days for when, _ in due)
    assert offsets[0] >= 14 and offsets[-1] <= 56, offsets
    assert len({when.isocalendar()[:2] for when, _ in due}) >= 5, "due dates are bunched together"
    assert all(owner is not None for _, owner in due)
    effective = Evidence.objects.values_list("effective_date", flat=True)
    assert all(seed_day - dt.timedelta(days=365) < when <= seed_day for when in effective)
    current = Evidence.objects.exclude(response__assessment__status="superseded")
    eval_run = current.get(title__startswith="Eval run #318")
    assert eval_run.effective_date == seed_day - dt.timedelta(days=5)
    assert f"({eval_run.effective_date.day} {eval_run.effective_date:%b})" in eval_run.title
    assert eval_run.original_filename == f"golden_v3_run_318_{eval_run.effective_date.isoformat()}.csv"
