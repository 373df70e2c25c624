"""Evidence Preflight itself holds counts on the criteria that name it, without an upload."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.signing import signing_key_ensure
from assessments.audit.verify import checkpoint_create
from assessments.frameworks.models import Criterion
from assessments.pilots.models import Assessment, Pilot
from assessments.pilots.selectors import assessment_open, checklist, scorecard
from assessments.reports.models import Report, ReportKind, ReportStatus
from assessments.reviews.models import SIGNING_ROLES
from assessments.reviews.services import decision_record
from tests.reviews.conftest import sign_all

pytestmark = pytest.mark.django_db


def _open(pilot: Pilot) -> Assessment:
    found = assessment_open(pilot=pilot)
    assert found is not None
    return found


def _name(pilot, code: str, kind: str) -> Criterion:
    """Make ``code`` (blocking at every tier in v1) the criterion that ``kind`` evidences."""
    assessment = _open(pilot=pilot)
    Criterion.objects.filter(framework_id=assessment.framework_id, code=code).update(preflight_evidence=kind)
    return Criterion.objects.get(framework_id=assessment.framework_id, code=code)


def _reason(pilot, code: str) -> str | None:
    card = scorecard(assessment=_open(pilot=pilot), today=timezone.localdate())
    page = checklist(assessment=_open(pilot=pilot), today=timezone.localdate()).card
    stored = {b.code: b.reason for b in card.blockers}.get(code)
    shown = {b.code: b.reason for b in page.blockers}.get(code)
    assert stored == shown, "the stored scores and the page must agree"
    return stored


def test_a_signed_joint_review_counts_for_the_go_no_go_criterion(pilot, meeting, users):
    _name(pilot, "GV-06", "review_signoff")
    assert _reason(pilot, "GV-06") == "unanswered, and Preflight holds no signed joint review in Preflight yet"
    sign_all(meeting, users)
    assert _reason(pilot, "GV-06") is None
    row = next(r for r in checklist(assessment=_open(pilot=pilot), today=timezone.localdate()).rows
               if r.criterion_row.code == "GV-06")  # fmt: skip
    assert row.criterion_row.held.startswith("joint review approved by delivery, security, risk and product on ")
    assert row.criterion_row.effective_status == "met" and row.response.status == "not_started"


def test_a_rejection_or_a_missing_role_holds_nothing(pilot, meeting, users):
    _name(pilot, "GV-06", "review_signoff")
    for role in SIGNING_ROLES[:-1]:
        decision_record(meeting=meeting, actor=Actor.for_user(users[role]), role=role, decision="approve")
    assert _reason(pilot, "GV-06") is not None  # one role has not signed
    last = SIGNING_ROLES[-1]
    decision_record(
        meeting=meeting, actor=Actor.for_user(users[last]), role=last, decision="reject", must_change="The runbook."
    )
    assert _reason(pilot, "GV-06") is not None


def test_a_generated_sow_counts_for_the_readiness_definition_criterion(pilot, users):
    _name(pilot, "GV-02", "sow_definition")
    assert _reason(pilot, "GV-02") is not None
    for status in (ReportStatus.FAILED, ReportStatus.PENDING):
        Report.objects.create(
            organisation=pilot.organisation, pilot=pilot, kind=ReportKind.SOW_MD, status=status,
            requested_at=timezone.now(), requested_by=users["owner"], error="x" if status == "failed" else "",
        )  # fmt: skip
    assert _reason(pilot, "GV-02") is not None, "only a finished definition counts"
    Report.objects.create(
        organisation=pilot.organisation, pilot=pilot, kind=ReportKind.SOW_DOCX, status=ReportStatus.DONE,
        requested_at=timezone.now(), started_at=timezone.now(), finished_at=timezone.now(), requested_by=users["owner"],
        file="reports/sow.docx", sha256="0" * 64, size=1,
    )  # fmt: skip
    assert _reason(pilot, "GV-02") is None


def test_a_signed_checkpoint_counts_for_the_audit_trail_criterion_and_ages_like_evidence(pilot):
    criterion = _name(pilot, "GV-01", "audit_trail")
    assert _reason(pilot, "GV-01") is not None
    signing_key_ensure()
    checkpoint_create(organisation=pilot.organisation)
    assert _reason(pilot, "GV-01") is None
    later = timezone.localdate() + dt.timedelta(days=criterion.max_evidence_age_days + 1)
    card = scorecard(assessment=_open(pilot=pilot), today=later)
    assert "marked met but all its evidence has expired" in {b.code: b.reason for b in card.blockers}["GV-01"]


def test_a_human_no_overrides_held_evidence(pilot, owner_actor):
    from assessments.pilots.services import response_update

    _name(pilot, "GV-01", "audit_trail")
    signing_key_ensure()
    checkpoint_create(organisation=pilot.organisation)
    response = _open(pilot=pilot).responses.get(criterion__code="GV-01")
    response_update(response=response, actor=owner_actor, expected_version=response.version, status="not_met")
    assert _reason(pilot, "GV-01") == "not met"


def test_handing_the_pilot_to_a_signer_rescores_it_at_once(pilot, meeting, users, owner_actor):
    from assessments.pilots.models import AssessmentScore
    from assessments.pilots.services import pilot_update

    _name(pilot, "GV-06", "review_signoff")
    sign_all(meeting, users)
    pilot_update(pilot=pilot, actor=owner_actor, business_owner=users["delivery"])
    # Delivery is now signed only by one of the pilot's own owners: the review holds nothing.
    assert _reason(pilot, "GV-06") is not None
    stored = AssessmentScore.objects.get(assessment=_open(pilot))
    assert stored.blockers == len(scorecard(assessment=_open(pilot), today=timezone.localdate()).blockers)


def test_the_audit_trail_is_dated_by_the_newest_checkpoint(pilot, owner_actor):
    from assessments.audit.checkpoints import checkpoint_sign
    from assessments.audit.models import AuditCheckpoint
    from assessments.pilots.services import pilot_update

    _name(pilot, "GV-01", "audit_trail")
    signing_key_ensure()
    checkpoint_create(organisation=pilot.organisation)
    pilot_update(pilot=pilot, actor=owner_actor, description="One more event after the first checkpoint.")
    assert checkpoint_sign(organisation=pilot.organisation).checkpoint is not None
    newest = AuditCheckpoint.objects.filter(organisation=pilot.organisation).order_by("-sequence").first()
    assert newest is not None and AuditCheckpoint.objects.filter(organisation=pilot.organisation).count() == 2
    row = next(
        r
        for r in checklist(assessment=_open(pilot), today=timezone.localdate()).rows
        if r.criterion_row.code == "GV-01"
    )
    assert f"signed checkpoint at event {newest.sequence} on " in row.criterion_row.held
