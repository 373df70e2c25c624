"""The demo loads through the services, once, into the states the README promises,
and reads like a real team's work: its own evidence, its own words, dates that move
with the day it is seeded."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.files.storage import default_storage

from assessments.audit.models import AuditEvent, AuditVerification
from assessments.organisations.models import Membership, Organisation
from assessments.pilots.demo import demo_seed
from assessments.pilots.models import Evidence, Pilot, Response
from assessments.pilots.selectors import assessment_open, scorecard
from assessments.text import text_problem

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


def test_every_role_has_a_demo_login_that_works(db, client):
    result = demo_seed(today=TODAY)
    roles = {role for login in result.logins for role in login.roles}
    assert roles == {"owner", "delivery", "security", "risk", "product", "viewer", "admin"}
    for login in result.logins:
        assert client.login(username=login.username, password=login.password), login.username


@pytest.mark.parametrize("seed_day", SEED_DAYS)
def test_the_four_pilots_are_in_the_promised_states(db, seed_day):
    demo_seed(today=seed_day)
    cards = {p.name: scorecard(assessment=assessment_open(pilot=p), today=seed_day) for p in Pilot.objects.all()}
    nearly = cards["Support reply drafting"]
    assert not nearly.is_ready and [(b.code, b.reason) for b in nearly.blockers] == [("GV-03", "only partly met")]
    blocked = cards["Credit limit explainer"]
    assert Pilot.objects.get(name="Credit limit explainer").risk_tier == "high"
    assert {b.gap_key for b in blocked.blockers} == {"guardrails", "cost"}
    started = cards["Contract clause finder"]
    assert started.overall is not None and started.overall < 10
    production = cards["IT helpdesk assistant"]
    assert Pilot.objects.get(name="IT helpdesk assistant").stage == "production"
    assert production.is_ready
    # Evidence goes stale only where the README says so: one piece, on the helpdesk assistant.
    assert {name: card.freshness.stale for name, card in cards.items()} == {
        "Support reply drafting": 0,
        "Credit limit explainer": 0,
        "Contract clause finder": 0,
        "IT helpdesk assistant": 1,
    }


def test_the_demo_chain_is_checkpointed_and_verified(db):
    result = demo_seed(today=TODAY)
    assert result.organisation.audit_checkpoints.exists()
    assert AuditVerification.objects.get(organisation=result.organisation).ok


def test_evidence_titles_are_the_teams_own_not_the_frameworks_words(db):
    demo_seed(today=TODAY)
    evidence = list(Evidence.objects.select_related("response__criterion"))
    assert len(evidence) > 100
    for item in evidence:
        expected = item.response.criterion.evidence_expected.strip().rstrip(".").casefold()
        title = item.title.casefold()
        assert expected not in title and title not in expected, (item.response.criterion.code, item.title)
        assert text_problem(item.title) is None and "{" not in item.title, item.title
    titles = Counter(item.title for item in evidence)
    assert [title for title, n in titles.items() if n > 1] == []
    kinds = Counter(item.kind for item in evidence)
    assert kinds["link"] > 50 and kinds["note"] >= 5 and kinds["file"] >= 2
    bare = Response.objects.filter(status__in=["met", "partly_met"], evidence__isnull=True)
    assert list(bare.values_list("criterion__code", flat=True)) == []


def test_every_link_is_on_an_example_domain(db):
    demo_seed(today=TODAY)
    urls = [e.url for e in Evidence.objects.filter(kind="link")]
    urls += [u for note in Evidence.objects.exclude(note="").values_list("note", flat=True) for u in URL.findall(note)]
    urls += [u for text in Response.objects.values_list("justification", flat=True) for u in URL.findall(text)]
    assert len(urls) > 100
    assert [u for u in urls if not _on_example_domain(u)] == []
    assert _on_example_domain("https://git.northwind.example/ai/x") and not _on_example_domain("https://example.io/")


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
    eval_run = Evidence.objects.get(title__startswith="Eval run #318")
    assert eval_run.effective_date == seed_day - dt.timedelta(days=5)
    assert f"({eval_run.effective_date.day} {eval_run.effective_date:%b})" in eval_run.title
    assert eval_run.original_filename == f"golden_v3_run_318_{eval_run.effective_date.isoformat()}.csv"


def test_open_and_inapplicable_answers_say_why_in_peoples_own_words(db):
    demo_seed(today=TODAY)
    answered = Response.objects.exclude(status="not_started").select_related("criterion")
    for response in answered.exclude(status="met"):
        assert len(response.justification) > 40, response.criterion.code
    for response in answered.exclude(justification=""):
        text = response.justification
        assert "{" not in text and text_problem(text, multiline=True) is None, response.criterion.code
        assert text.casefold() not in response.criterion.guidance.casefold(), response.criterion.code
        # A date named in an open item's justification is when it is due, not a date frozen in the fixture.
        if response.due_date and response.status != "met":
            due = f"{response.due_date.day} {response.due_date:%b}"
            assert set(DAY.findall(text)) <= {due}, (response.criterion.code, text)
    assert answered.exclude(justification="").count() >= 30
    gv03 = answered.get(assessment__pilot__name="Support reply drafting", criterion__code="GV-03")
    assert gv03.due_date is not None and f"{gv03.due_date.day} {gv03.due_date:%b}" in gv03.justification


def test_reviewers_own_the_criteria_of_their_field_and_answer_them_themselves(db):
    demo_seed(today=TODAY)
    owned = Response.objects.filter(owner__username__in=REVIEWERS).select_related("owner", "criterion__gap")
    assert {r.owner.username for r in owned} == REVIEWERS
    answered = Response.objects.exclude(status="not_started")
    assert owned.count() >= answered.count() // 3
    for response in owned:
        assert response.owner.username in REVIEWER_FIELDS[response.criterion.gap.key], (
            response.criterion.code,
            response.owner.username,
        )
        # The pilot owner assigned it; the reviewer answered and attached evidence under their own name.
        assert response.updated_by_id == response.owner_id, response.criterion.code
        assert all(e.added_by_id == response.owner_id for e in response.evidence.all()), response.criterion.code


def test_uploaded_files_went_through_the_upload_check_and_are_hashed_and_audited(db):
    demo_seed(today=TODAY)
    files = list(Evidence.objects.filter(kind="file"))
    assert {f.content_type for f in files} >= {"text/csv", "application/pdf"}
    for item in files:
        with default_storage.open(item.file.name, "rb") as stored:
            content = stored.read()
        assert hashlib.sha256(content).hexdigest() == item.sha256 and len(content) == item.size_bytes
        event = AuditEvent.objects.get(action="evidence.added", object_id=str(item.pk))
        assert item.sha256 in str(event.changes)
    pdf = next(f for f in files if f.content_type == "application/pdf")
    with default_storage.open(pdf.file.name, "rb") as stored:
        content = stored.read()
    assert content.startswith(b"%PDF-1.4") and content.rstrip().endswith(b"%%EOF")
    assert b"SEC-1190" in content
