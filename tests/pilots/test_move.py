"""Moving a pilot's assessment to a newer framework version (``assessment_move``): the diff
and the per-answer preview it is based on, what carries over (answers, owners, due dates,
evidence rows pointing at the same stored files and keeping their first "added" time), what
the audit trail records, who may do it, which targets are refused, and the pages around it."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.audit.verify import audit_verify
from assessments.frameworks.models import Framework, FrameworkStatus
from assessments.frameworks.selectors import framework_diff
from assessments.frameworks.services import (
    criterion_create,
    criterion_delete,
    criterion_update,
    framework_copy,
    framework_load,
    framework_publish,
)
from assessments.organisations.models import Role
from assessments.organisations.services import membership_grant, user_create
from assessments.pilots.models import Assessment, AssessmentScore, Evidence, Pilot, Response
from assessments.pilots.selectors import MoveLine, assessment_move_preview, assessment_open, scorecard
from assessments.pilots.services import (
    UploadedEvidenceFile,
    assessment_move,
    evidence_add,
    pilot_create,
    response_update,
)

DUE = dt.date(2027, 1, 31)
EFFECTIVE = dt.date(2026, 11, 1)


def _answer(pilot: Pilot, code: str, actor: Actor, **fields: Any) -> Response:
    response = Response.objects.get(assessment__pilot=pilot, criterion__code=code)
    return response_update(response=response, actor=actor, expected_version=response.version, **fields).response


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    """A pilot on v1 with a met criterion backed by a link and a file, a waived one and one that v2 drops."""
    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Mover", technical_owner=users["owner"]
    )
    ev01 = _answer(
        pilot, "EV-01", owner_actor, status="met", justification="Golden set of 400 cases", owner=users["delivery"],
        due_date=DUE,
    )  # fmt: skip
    evidence_add(
        response=ev01, actor=owner_actor, kind="link", title="Golden set", url="https://evals.test/golden",
        effective_date=EFFECTIVE,
    )  # fmt: skip
    evidence_add(
        response=ev01, actor=owner_actor, kind="file", title="Eval report", effective_date=EFFECTIVE,
        upload=UploadedEvidenceFile(name="report.txt", content=b"pass rate 97%\n", content_type="text/plain"),
    )  # fmt: skip
    _answer(pilot, "GV-04", owner_actor, status="not_applicable", justification="No personal data at all")
    co05 = _answer(pilot, "CO-05", owner_actor, status="partly_met", justification="Envelope drafted")
    evidence_add(response=co05, actor=owner_actor, kind="note", title="Envelope", note="4p", effective_date=EFFECTIVE)
    return pilot


@pytest.fixture
def admin_actor(users) -> Actor:
    return Actor.for_user(users["admin"])


@pytest.fixture
def v2(framework, admin_actor, pilot) -> Framework:
    """v1 minus CO-05, plus EV-09, with EV-02's severity and tiers changed; published after the pilot exists."""
    draft = framework_copy(framework=framework, actor=admin_actor)
    criterion_delete(criterion=draft.criteria.get(code="CO-05"), actor=admin_actor)
    criterion_create(
        gap=draft.gaps.get(key="evals"), actor=admin_actor, code="EV-09", title="Latency budget evaluated",
        guidance="g", cost_if_missing="c", severity_minimal="major", severity_limited="major", severity_high="major",
        evidence_expected="e",
    )  # fmt: skip
    criterion_update(
        criterion=draft.criteria.get(code="EV-02"), actor=admin_actor, severity_minimal="", applies_to_minimal=False,
        severity_limited="major", severity_high="blocking",
    )  # fmt: skip
    return framework_publish(framework=draft, actor=admin_actor)


def _state(pilot: Pilot) -> tuple[Any, ...]:
    """Everything a refused move must leave exactly as it was."""
    return (
        list(Assessment.objects.filter(pilot=pilot).order_by("pk").values_list("pk", "framework_id", "status")),
        Response.objects.filter(assessment__pilot=pilot).count(),
        Evidence.objects.count(),
        AuditEvent.objects.count(),
    )


def _stored_files() -> list[Path]:
    return sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())


# --- the service -------------------------------------------------------------------------


def test_the_diff_names_added_removed_and_changed_codes_with_the_fields_that_changed(
    framework, v2, django_assert_num_queries
):
    with django_assert_num_queries(4):
        diff = framework_diff(old=framework, new=v2)
    assert diff.added == [("EV-09", "Latency budget evaluated")]
    assert [code for code, _ in diff.removed] == ["CO-05"]
    assert [(c.code, c.fields) for c in diff.changed] == [("EV-02", ["severity_by_tier"])]
    assert diff.changed[0].details == (
        "Severity by risk tier: minimal blocking → does not apply, limited blocking → major",
    )
    assert not diff.is_empty
    assert framework_diff(old=framework, new=framework).is_empty
    backwards = framework_diff(old=v2, new=framework)
    assert ([c for c, _ in backwards.added], [c for c, _ in backwards.removed]) == (["CO-05"], ["EV-09"])


def test_answers_owners_due_dates_and_evidence_carry_over_by_code(pilot, v2, owner_actor, users):
    old = assessment_open(pilot=pilot)
    files_before = _stored_files()
    old_file = Evidence.objects.get(response__assessment=old, kind="file")

    new = assessment_move(assessment=old, framework=v2, actor=owner_actor)

    assert new.framework == v2
    assert new.responses.count() == v2.criteria.count()
    ev01 = new.responses.select_related("criterion").get(criterion__code="EV-01")
    assert ev01.criterion.framework_id == v2.pk
    assert (ev01.status, ev01.justification, ev01.owner, ev01.due_date) == (
        "met",
        "Golden set of 400 cases",
        users["delivery"],
        DUE,
    )
    gv04 = new.responses.get(criterion__code="GV-04")
    assert (gv04.status, gv04.justification) == ("not_applicable", "No personal data at all")
    assert sorted(ev01.evidence.values_list("kind", "title")) == [("file", "Eval report"), ("link", "Golden set")]
    copied_file = ev01.evidence.get(kind="file")
    assert copied_file.pk != old_file.pk
    assert (copied_file.file.name, copied_file.sha256, copied_file.size_bytes) == (
        old_file.file.name,
        old_file.sha256,
        old_file.size_bytes,
    )
    assert copied_file.effective_date == EFFECTIVE
    assert _stored_files() == files_before  # rows copied, nothing re-uploaded
    assert Evidence.objects.filter(response__assessment=old).count() == 3  # the old record keeps its evidence


def test_copied_evidence_keeps_every_value_including_the_time_it_was_first_added(pilot, v2, owner_actor):
    old = assessment_open(pilot=pilot)
    first_added = timezone.now() - dt.timedelta(days=40)
    Evidence.objects.filter(response__assessment=old).update(added_at=first_added)
    originals = {
        e.title: e for e in Evidence.objects.filter(response__assessment=old, response__criterion__code="EV-01")
    }

    new = assessment_move(assessment=old, framework=v2, actor=owner_actor)

    copies = {e.title: e for e in Evidence.objects.filter(response__assessment=new)}
    assert sorted(copies) == sorted(originals) == ["Eval report", "Golden set"]
    # Every column but the row's own id and the response it hangs on, so a field added to
    # Evidence later cannot be lost on a move unnoticed.
    kept = [f.attname for f in Evidence._meta.concrete_fields if f.name not in {"id", "response"}]
    assert "added_at" in kept
    for title, original in originals.items():
        copy = copies[title]
        assert copy.response.assessment_id == new.pk
        assert {name: getattr(copy, name) for name in kept} == {name: getattr(original, name) for name in kept}
        assert copy.added_at == first_added


def test_new_criteria_start_unanswered_and_dropped_ones_stay_on_the_superseded_record(pilot, v2, owner_actor):
    old = assessment_open(pilot=pilot)
    new = assessment_move(assessment=old, framework=v2, actor=owner_actor)
    ev09 = new.responses.get(criterion__code="EV-09")
    assert (ev09.status, ev09.justification, ev09.owner_id, ev09.evidence.count()) == ("not_started", "", None, 0)
    assert not new.responses.filter(criterion__code="CO-05").exists()
    old.refresh_from_db()
    assert old.status == "superseded"
    assert old.responses.get(criterion__code="CO-05").status == "partly_met"
    assert assessment_open(pilot=pilot) == new
    untouched = new.responses.exclude(criterion__code__in=["EV-01", "GV-04"])
    assert set(untouched.values_list("status", flat=True)) == {"not_started"}


def test_the_cached_score_is_refreshed_for_the_new_assessment(pilot, v2, owner_actor):
    current = assessment_open(pilot=pilot)
    assert current is not None
    new = assessment_move(assessment=current, framework=v2, actor=owner_actor)
    cached = AssessmentScore.objects.get(assessment=new)
    card = scorecard(assessment=new, today=timezone.localdate())
    assert cached.computed_on == timezone.localdate()
    assert cached.overall == card.overall
    assert cached.overall is not None and cached.overall > 0  # EV-01 met counts


def test_exactly_one_audit_event_describes_the_move_and_the_chain_still_verifies(pilot, v2, owner_actor, framework):
    old = assessment_open(pilot=pilot)
    last = AuditEvent.objects.latest("sequence")

    new = assessment_move(assessment=old, framework=v2, actor=owner_actor)

    events = list(AuditEvent.objects.filter(sequence__gt=last.sequence, organisation=framework.organisation))
    assert len(events) == 1
    event = events[0]
    assert (event.action, event.pilot_id, event.object_id) == ("assessment.migrated", pilot.pk, str(new.pk))
    assert event.changes["framework"] == [str(framework), str(v2)]
    assert event.changes["assessment"] == [old.pk, new.pk]
    carried = v2.criteria.count() - 1
    assert event.changes["carried_over"] == [None, carried]
    assert event.changes["new_criteria"] == [None, 1]
    assert event.changes["dropped_criteria"] == [None, 1]
    assert event.changes["evidence_copied"] == [None, 2]
    assert audit_verify(organisation=framework.organisation, record_result=False).ok


@pytest.mark.parametrize("role", [Role.DELIVERY, Role.SECURITY, Role.RISK, Role.PRODUCT, Role.VIEWER])
def test_only_the_pilots_owners_or_an_admin_may_move_it(pilot, v2, users, role):
    old = assessment_open(pilot=pilot)
    before = _state(pilot)
    with pytest.raises(PermissionDenied):
        assessment_move(assessment=old, framework=v2, actor=Actor.for_user(users[role]))
    assert _state(pilot) == before


def test_an_owner_of_other_pilots_may_not_move_this_one(pilot, v2, org):
    system = Actor.system("tests")
    someone = user_create(organisation=org, username="owen", email="owen@acme.test", password="x", actor=system)
    membership_grant(organisation=org, user=someone, role=Role.OWNER, actor=system)
    before = _state(pilot)
    with pytest.raises(PermissionDenied):
        assessment_move(assessment=assessment_open(pilot=pilot), framework=v2, actor=Actor.for_user(someone))
    assert _state(pilot) == before


def test_an_admin_may_move_any_pilot(pilot, v2, admin_actor):
    new = assessment_move(assessment=assessment_open(pilot=pilot), framework=v2, actor=admin_actor)
    assert assessment_open(pilot=pilot) == new


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("same", "already uses that framework version"),
        ("draft", "Only a published framework version"),
        ("retired", "Only a published framework version"),
        ("foreign", "belongs to another organisation"),
    ],
)
def test_invalid_targets_are_refused_with_a_reason_and_nothing_changes(
    pilot, framework, admin_actor, owner_actor, other_org, default_spec, target, message
):
    if target == "same":
        fw = framework
    elif target == "draft":
        fw = framework_copy(framework=framework, actor=admin_actor)
    elif target == "retired":
        # Move to v2, then try to go back to v1, which publishing v2 retired.
        v2 = framework_publish(framework=framework_copy(framework=framework, actor=admin_actor), actor=admin_actor)
        assessment_move(assessment=assessment_open(pilot=pilot), framework=v2, actor=owner_actor)
        fw = Framework.objects.get(pk=framework.pk)
        assert fw.status == FrameworkStatus.RETIRED
    else:
        fw = framework_load(organisation=other_org, spec=default_spec, actor=Actor.system("tests"))
    before = _state(pilot)
    with pytest.raises(ValidationError, match=message):
        assessment_move(assessment=assessment_open(pilot=pilot), framework=fw, actor=owner_actor)
    assert _state(pilot) == before


def test_moving_the_same_assessment_twice_is_refused_cleanly(pilot, v2, owner_actor):
    stale = assessment_open(pilot=pilot)
    assert stale is not None
    assessment_move(assessment=stale, framework=v2, actor=owner_actor)
    before = _state(pilot)
    with pytest.raises(ValidationError):
        assessment_move(assessment=stale, framework=v2, actor=owner_actor)
    assert _state(pilot) == before


# --- the preview ---------------------------------------------------------------------------


def test_the_preview_says_what_happens_to_each_answer_in_two_queries(pilot, v2, django_assert_num_queries):
    old = assessment_open(pilot=pilot)
    with django_assert_num_queries(2):
        preview = assessment_move_preview(assessment=old, framework=v2)

    in_order = old.responses.order_by("criterion__gap__order", "criterion__order")
    v1_codes = list(in_order.values_list("criterion__code", flat=True))
    assert [line.code for line in preview.carried] == [code for code in v1_codes if code != "CO-05"]
    carried = {line.code: line for line in preview.carried}
    assert (carried["EV-01"].status, carried["EV-01"].status_label, carried["EV-01"].evidence) == ("met", "Met", 2)
    assert (carried["GV-04"].status_label, carried["GV-04"].evidence) == ("Not applicable", 0)
    assert carried["EV-02"].status_label == "Not started"
    assert preview.dropped == [
        MoveLine("CO-05", "Cheaper alternatives considered", "Cost", "partly_met", "Partly met", 1)
    ]
    assert [(line.code, line.title, line.status_label, line.evidence) for line in preview.new] == [
        ("EV-09", "Latency budget evaluated", "Not started", 0)
    ]
    assert preview.evidence_carried == 2


def test_the_preview_matches_what_the_move_then_does(pilot, v2, owner_actor):
    old = assessment_open(pilot=pilot)
    preview = assessment_move_preview(assessment=old, framework=v2)

    new = assessment_move(assessment=old, framework=v2, actor=owner_actor)

    after = dict(new.responses.values_list("criterion__code", "status"))
    assert {line.code: line.status for line in preview.carried + preview.new} == after
    assert {line.code for line in preview.dropped} == set(
        old.responses.values_list("criterion__code", flat=True)
    ) - set(after)
    event = AuditEvent.objects.latest("sequence")
    assert event.changes["carried_over"][1] == len(preview.carried)
    assert event.changes["dropped_criteria"][1] == len(preview.dropped)
    assert event.changes["new_criteria"][1] == len(preview.new)
    assert event.changes["evidence_copied"][1] == preview.evidence_carried


# --- the pages -----------------------------------------------------------------------------


def test_the_pilot_page_offers_the_move_to_its_editors_only(client, users, pilot, v2):
    move_url = reverse("assessment-migrate", args=[pilot.pk])
    client.force_login(users["owner"])
    page = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert "A newer framework version" in page and f'href="{move_url}"' in page
    client.force_login(users["viewer"])
    page = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert "A newer framework version" in page and move_url not in page


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_preview_page_shows_each_answers_fate_in_words_and_changes_nothing(client, users, pilot, v2):
    client.force_login(users["owner"])
    before = _state(pilot)
    page = client.get(reverse("assessment-migrate", args=[pilot.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    carried_at, dropped_at, new_at = (body.index(h) for h in ("Carried over to", "Dropped: not in", "New in"))
    changes_at = body.index("<h2>Changes")
    assert carried_at < dropped_at < new_at < changes_at
    carried, dropped, new = (
        _text(body[carried_at:dropped_at]),
        _text(body[dropped_at:new_at]),
        _text(body[new_at:changes_at]),
    )
    assert "EV-01" in carried and "Met 2 pieces" in carried and "Not applicable none" in carried
    assert "CO-05" not in carried and "EV-09" not in carried
    assert "CO-05 Cheaper alternatives considered" in dropped and "Partly met 1 piece" in dropped
    assert "stay on record in the old assessment" in dropped
    assert "EV-09 Latency budget evaluated" in new and "Not started" in new
    shown = _text(body)
    assert "carried over (with 2 pieces of evidence), 1 dropped, 1 new" in shown
    for raw in ("partly_met", "not_applicable", "not_started"):
        assert raw not in shown  # labels, never stored values
    # The framework-level differences are still listed, with field labels.
    for text in ("EV-02", "Severity", str(v2)):
        assert text in body
    assert _state(pilot) == before


def test_confirming_in_the_browser_moves_the_pilot(client, users, pilot, v2):
    client.force_login(users["owner"])
    response = client.post(reverse("assessment-migrate", args=[pilot.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("pilot", args=[pilot.pk])
    assert assessment_open(pilot=pilot).framework == v2


def test_moving_when_already_on_the_newest_version_shows_why_with_422(client, users, pilot, framework):
    client.force_login(users["owner"])
    before = _state(pilot)
    response = client.post(reverse("assessment-migrate", args=[pilot.pk]))
    assert response.status_code == 422
    assert "already uses that framework version" in response.content.decode()
    assert _state(pilot) == before


def test_the_move_pages_answer_403_to_viewers_and_404_to_other_organisations(client, users, pilot, v2, other_org):
    system = Actor.system("tests")
    outsider = user_create(organisation=other_org, username="mallory", email="m@x.test", password="x", actor=system)
    membership_grant(organisation=other_org, user=outsider, role=Role.ADMIN, actor=system)
    before = _state(pilot)
    client.force_login(users["viewer"])
    assert client.post(reverse("assessment-migrate", args=[pilot.pk])).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("assessment-migrate", args=[pilot.pk])).status_code == 404
    assert client.post(reverse("assessment-migrate", args=[pilot.pk])).status_code == 404
    assert _state(pilot) == before


# --- the migration that lets copies keep their time ----------------------------------------

ADDED_AT_MIGRATION = ("pilots", "0004_evidence_added_at_kept_on_copy")
BEFORE_ADDED_AT = [("pilots", "0003_friendly_constraint_messages")]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_added_at_migration_runs_forward_on_a_populated_database_without_touching_the_table(pilot):
    if connection.vendor != "postgresql":
        pytest.skip("the migration is exercised on PostgreSQL")
    sql = StringIO()
    call_command("sqlmigrate", *ADDED_AT_MIGRATION, stdout=sql)
    statements = [line for line in sql.getvalue().splitlines() if line.strip() and not line.startswith("--")]
    assert statements == ["BEGIN;", "COMMIT;"], "only Django's field state changes: no rewrite, no lock"
    stamps = dict(Evidence.objects.values_list("pk", "added_at"))
    assert len(stamps) == 3
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(BEFORE_ADDED_AT)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    assert dict(Evidence.objects.values_list("pk", "added_at")) == stamps


def test_checks_follow_their_criteria_to_the_new_version_and_a_dropped_one_is_flagged(
    client, users, pilot, v2, owner_actor
) -> None:
    from assessments.evidence.models import Check
    from assessments.evidence.selectors import check_outcomes
    from assessments.evidence.services import check_create, check_run_execute, check_run_request, linked_system_create

    system = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="eval_results", name="Golden set",
        configuration={"fixture": "junit-goldenset-pass.xml"},
    )  # fmt: skip
    kept, dropped = (
        check_create(
            system=system,
            criterion=Response.objects.get(assessment__pilot=pilot, criterion__code=code).criterion,
            actor=owner_actor,
            name=f"Check on {code}",
            metric="pass_rate",
            comparator="gte",
            threshold=0.5,
        )
        for code in ("EV-03", "CO-05")
    )
    check_run_execute(run_id=check_run_request(check=kept, actor=owner_actor).pk)

    current = assessment_open(pilot=pilot)
    assert current is not None
    new = assessment_move(assessment=current, framework=v2, actor=owner_actor)

    kept.refresh_from_db()
    dropped.refresh_from_db()
    assert kept.criterion.framework_id == v2.pk and kept.criterion.code == "EV-03"
    assert dropped.criterion.framework_id != v2.pk
    event = AuditEvent.objects.filter(action="assessment.migrated").latest("sequence")
    assert event.changes["checks_moved"] == [None, 1] and event.changes["checks_left_behind"] == [None, 1]
    # The passing check counts for the new assessment's EV-03.
    new_ev03 = Response.objects.get(assessment=new, criterion__code="EV-03").criterion_id
    outcomes = check_outcomes(assessment_ids=[new.pk])
    assert [o.state for o in outcomes[(pilot.pk, new_ev03)]] == ["pass"]
    client.force_login(users["owner"])
    page = client.get(reverse("linked-systems", args=[pilot.pk])).content.decode()
    assert page.count("Criterion not in this framework version") == 1
    assert Check.objects.filter(linked_system__pilot=pilot).count() == 2
