"""What the demo contains, read from one seeding shared by this module (seeding takes
seconds; these checks only read). Tests that seed for themselves — twice, or on other
days — are in test_demo.py, because this module's seeding stays in place until its end."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import transaction
from django.test import override_settings

from assessments.audit.models import AuditEvent, AuditVerification
from assessments.pilots.demo import DemoResult, demo_seed
from assessments.pilots.models import Assessment, Evidence, Pilot, Response
from assessments.pilots.selectors import assessment_open
from assessments.text import text_problem
from tests.pilots.test_demo import DAY, REVIEWER_FIELDS, REVIEWERS, TODAY, URL, _on_example_domain

STORAGE: dict[str, Path] = {}


def _open(pilot: Pilot) -> Assessment:
    found = assessment_open(pilot=pilot)
    assert found is not None
    return found


def _responses():
    """Answers on the pilots' open assessments (a move to v2 leaves the v1 copies superseded)."""
    return Response.objects.exclude(assessment__status="superseded")


def _evidence():
    return Evidence.objects.exclude(response__assessment__status="superseded")


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[DemoResult]:
    """The demo seeded once; each test's own transaction rolls back inside this one."""
    root = tmp_path_factory.mktemp("demo")
    STORAGE.update(media=root / "media", checkpoints=root / "checkpoints", key=root / "audit-signing-key.pem")
    with (
        override_settings(
            MEDIA_ROOT=STORAGE["media"],
            AUDIT_CHECKPOINT_DIR=STORAGE["checkpoints"],
            AUDIT_SIGNING_KEY_PATH=STORAGE["key"],
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        yield demo_seed(today=TODAY)
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _isolated_storage(settings, seeded) -> None:
    """Replaces conftest's per-test folders: the seeded files live in this module's folder."""
    settings.MEDIA_ROOT = STORAGE["media"]
    settings.AUDIT_CHECKPOINT_DIR = STORAGE["checkpoints"]
    settings.AUDIT_SIGNING_KEY_PATH = STORAGE["key"]


def test_every_role_has_a_demo_login_that_works(db, seeded, client):
    result = seeded
    roles = {role for login in result.logins for role in login.roles}
    assert roles == {"owner", "delivery", "security", "risk", "product", "viewer", "admin"}
    for login in result.logins:
        assert client.login(username=login.username, password=login.password), login.username


def test_the_demo_chain_is_checkpointed_and_verified(db, seeded):
    result = seeded
    assert result.organisation.audit_checkpoints.exists()
    assert AuditVerification.objects.get(organisation=result.organisation).ok


def test_evidence_titles_are_the_teams_own_not_the_frameworks_words(db, seeded):
    evidence = list(_evidence().select_related("response__criterion"))
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
    bare = _responses().filter(status__in=["met", "partly_met"], evidence__isnull=True)
    assert list(bare.values_list("criterion__code", flat=True)) == []


def test_every_link_is_on_an_example_domain(db, seeded):
    urls = [e.url for e in Evidence.objects.filter(kind="link")]
    urls += [u for note in Evidence.objects.exclude(note="").values_list("note", flat=True) for u in URL.findall(note)]
    urls += [u for text in Response.objects.values_list("justification", flat=True) for u in URL.findall(text)]
    assert len(urls) > 100
    assert [u for u in urls if not _on_example_domain(u)] == []
    assert _on_example_domain("https://git.northwind.example/ai/x") and not _on_example_domain("https://example.io/")


def test_open_and_inapplicable_answers_say_why_in_peoples_own_words(db, seeded):
    answered = _responses().exclude(status="not_started").select_related("criterion")
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


def test_reviewers_own_the_criteria_of_their_field_and_answer_them_themselves(db, seeded):
    owned = _responses().filter(owner__username__in=REVIEWERS).select_related("owner", "criterion__gap")
    assert {r.owner.username for r in owned} == REVIEWERS
    answered = _responses().exclude(status="not_started")
    assert owned.count() >= answered.count() // 3
    for response in owned:
        assert response.owner.username in REVIEWER_FIELDS[response.criterion.gap.key], (
            response.criterion.code,
            response.owner.username,
        )
        # The pilot owner assigned it; the reviewer answered and attached evidence under their own name.
        assert response.updated_by_id == response.owner_id, response.criterion.code
        assert all(e.added_by_id == response.owner_id for e in response.evidence.all()), response.criterion.code


def test_uploaded_files_went_through_the_upload_check_and_are_hashed_and_audited(db, seeded):
    files = list(Evidence.objects.filter(kind="file"))
    assert {f.content_type for f in files} >= {"text/csv", "application/pdf"}
    for item in files:
        with default_storage.open(item.file.name, "rb") as stored:
            content = stored.read()
        assert hashlib.sha256(content).hexdigest() == item.sha256 and len(content) == item.size_bytes
        # A copy carried to v2 keeps the file and hash of the item whose addition was audited.
        added = AuditEvent.objects.filter(action="evidence.added").values_list("changes", flat=True)
        assert any(item.sha256 in str(changes) for changes in added), item.title
    pdf = next(f for f in files if f.content_type == "application/pdf")
    with default_storage.open(pdf.file.name, "rb") as stored:
        content = stored.read()
    assert content.startswith(b"%PDF-1.4") and content.rstrip().endswith(b"%%EOF")
    assert b"SEC-1190" in content


def test_three_pilots_moved_to_v2_through_the_normal_path_and_one_waits_on_v1(db, seeded, client):

    versions = {p.name: _open(pilot=p).framework.version for p in Pilot.objects.all()}
    assert versions == {
        "Support reply drafting": 2,
        "Credit limit explainer": 2,
        "Contract clause finder": 1,
        "IT helpdesk assistant": 2,
    }
    moves = AuditEvent.objects.filter(action="assessment.migrated")
    assert moves.count() == 3
    assert all(e.changes["framework"] == ["AI production readiness v1", "AI production readiness v2"] for e in moves)
    assert all(e.changes["carried_over"][1] > 40 for e in moves)
    waiting = Pilot.objects.get(name="Contract clause finder")
    client.force_login(waiting.technical_owner)
    page = client.get(f"/pilots/{waiting.pk}/").content.decode()
    assert "A newer framework version, <strong>AI production readiness v2</strong>, is published." in page


def test_the_minimal_risk_helpdesk_is_judged_by_fewer_blockers_than_the_high_risk_explainer(db, seeded):

    def blocking(name: str) -> int:
        pilot = Pilot.objects.get(name=name)
        criteria = _open(pilot=pilot).framework.criteria.all()
        return sum(1 for c in criteria if c.severity_for(pilot.risk_tier) == "blocking")

    helpdesk, explainer = blocking("IT helpdesk assistant"), blocking("Credit limit explainer")
    assert helpdesk < explainer
    # v1 asked 21 blockers of a minimal-risk pilot and 22 of a high-risk one; v2 asks 15 and 30.
    assert (helpdesk, explainer) == (15, 30)
