"""Every public function in a room's services.py that writes records exactly one audit event.

The test walks the modules, so a new service without an entry in INVOCATIONS fails here.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.frameworks.loader import framework_parse
from assessments.frameworks.models import Criterion, Framework, Gap
from assessments.frameworks.selectors import framework_current
from assessments.organisations.models import Invitation, Membership
from assessments.pilots.models import Evidence, Response, StopCondition

SERVICE_MODULES = [
    "assessments.audit.services",
    "assessments.organisations.services",
    "assessments.frameworks.services",
    "assessments.pilots.services",
    "assessments.evidence.services",
    "assessments.reviews.services",
    "assessments.reports.services",
    "assessments.reports.sow_services",
]
# Helpers that are not writes of their own: audit_record *is* the event; the rest
# build its payload. audit_chain_start runs inside organisation_create.
NOT_WRITES = {"audit_record", "audit_chain_start", "diff_fields", "snapshot", "created_changes"}
# Judging a rule is a pure function. Queueing scheduled runs writes queue rows only: each
# run records its one event when it finishes (check_run_execute, walked below).
NOT_WRITES |= {"rule_judge", "check_runs_queue_due"}
# Sending a stale report's job again writes nothing: the render records its event when it ends.
NOT_WRITES |= {"reports_requeue_stale"}
# Services made of other services: they record one event per row they create (each
# through the service that creates it), so they are walked case by case below instead.
COMPOSITES = {"member_invite"}


def _all_public_functions() -> set[str]:
    names = set()
    for module_name in SERVICE_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in inspect.getmembers(module, inspect.isfunction):
            if obj.__module__ == module_name and not name.startswith("_"):
                names.add(name)
    return names


def _public_functions() -> set[str]:
    return _all_public_functions() - NOT_WRITES - COMPOSITES


def _invocations(ctx: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    from assessments.evidence import services as evidence
    from assessments.evidence.models import Check, CheckRun, LinkedSystem
    from assessments.frameworks import services as fw
    from assessments.organisations import services as orgs
    from assessments.pilots import services as pilots
    from assessments.reports import services as reports
    from assessments.reports import sow_services as sow
    from assessments.reports.models import Report

    system, owner, admin = ctx["system"], ctx["owner"], ctx["admin"]
    org, framework, users = ctx["org"], ctx["framework"], ctx["users"]

    def draft() -> Framework:
        return Framework.objects.filter(organisation=org, status="draft").latest("version")

    def _reinvite() -> Invitation:
        return Invitation.objects.create(
            organisation=org,
            invitee=ctx["stranger"],
            email="s@elsewhere.test",
            roles=["risk"],
            invited_by=users["admin"],
        )

    def response() -> Response:
        return Response.objects.filter(assessment__pilot__name="Walk").order_by("pk")[0]

    return {
        "organisation_create": lambda: orgs.organisation_create(name="Walk Org", slug="walk-org", actor=system),
        "user_create": lambda: orgs.user_create(
            organisation=org, username="walker", email="w@x.test", password="pw", actor=admin
        ),
        "membership_grant": lambda: orgs.membership_grant(
            organisation=org, user=users["viewer"], role="risk", actor=admin
        ),
        "membership_revoke": lambda: orgs.membership_revoke(
            membership=Membership.objects.get(user=users["viewer"], role="risk"), actor=admin
        ),
        "invitation_create": lambda: orgs.invitation_create(
            organisation=org,
            invitee=ctx["stranger"],
            email="s@elsewhere.test",
            roles=["viewer"],
            actor=admin,
            accept_url="http://testserver/invitations/",
        ),
        "invitation_revoke": lambda: orgs.invitation_revoke(
            invitation=Invitation.objects.get(status="pending"), actor=admin
        ),
        "invitation_decline": lambda: orgs.invitation_decline(
            invitation=_reinvite(), user=ctx["stranger"], actor=Actor.for_user(ctx["stranger"])
        ),
        "invitation_accept": lambda: orgs.invitation_accept(
            invitation=_reinvite(), user=ctx["stranger"], actor=Actor.for_user(ctx["stranger"])
        ),
        "framework_load": lambda: fw.framework_load(organisation=org, spec=ctx["spec_v9"], actor=admin),
        "framework_copy": lambda: fw.framework_copy(framework=framework, actor=admin),
        "gap_update": lambda: fw.gap_update(
            gap=Gap.objects.filter(framework=draft()).order_by("order")[0], actor=admin, weight=21
        ),
        "criterion_create": lambda: fw.criterion_create(
            gap=Gap.objects.filter(framework=draft()).order_by("order")[0],
            actor=admin,
            code="EV-99",
            title="New",
            guidance="g",
            cost_if_missing="c",
            severity_minimal="minor",
            severity_limited="minor",
            severity_high="minor",
            evidence_expected="e",
        ),
        "criterion_update": lambda: fw.criterion_update(
            criterion=Criterion.objects.get(framework=draft(), code="EV-99"), actor=admin, title="Renamed"
        ),
        "criterion_delete": lambda: fw.criterion_delete(
            criterion=Criterion.objects.get(framework=draft(), code="EV-99"), actor=admin
        ),
        "framework_publish": lambda: fw.framework_publish(framework=draft(), actor=admin),
        "pilot_create": lambda: pilots.pilot_create(
            organisation=org, actor=owner, name="Walk", technical_owner=users["owner"]
        ),
        "pilot_update": lambda: pilots.pilot_update(pilot=response().assessment.pilot, actor=owner, stage="paused"),
        "stop_condition_add": lambda: pilots.stop_condition_add(
            pilot=response().assessment.pilot,
            actor=owner,
            condition="Stop",
            metric="m",
            comparator="lt",
            threshold=Decimal("1"),
        ),
        "stop_condition_update": lambda: pilots.stop_condition_update(
            stop=StopCondition.objects.get(), actor=owner, status="retired"
        ),
        "response_update": lambda: pilots.response_update(
            response=response(), actor=owner, expected_version=1, status="met"
        ),
        "evidence_add": lambda: pilots.evidence_add(
            response=response(),
            actor=owner,
            kind="link",
            title="t",
            url="https://x.test",
            effective_date=dt.date(2026, 1, 1),
        ),
        "evidence_remove": lambda: pilots.evidence_remove(evidence=Evidence.objects.get(), actor=owner),
        "linked_system_create": lambda: evidence.linked_system_create(
            pilot=response().assessment.pilot,
            actor=owner,
            kind="eval_results",
            name="Golden set",
            configuration={"fixture": "junit-goldenset-pass.xml"},
        ),
        "linked_system_update": lambda: evidence.linked_system_update(
            system=LinkedSystem.objects.get(), actor=owner, check_interval_minutes=30
        ),
        "check_create": lambda: evidence.check_create(
            system=LinkedSystem.objects.get(),
            criterion=response().criterion,
            actor=owner,
            name="Pass rate",
            metric="pass_rate",
            comparator="gte",
            threshold=0.5,
        ),
        "check_update": lambda: evidence.check_update(check=Check.objects.get(), actor=owner, threshold=0.6),
        "check_run_request": lambda: evidence.check_run_request(check=Check.objects.get(), actor=owner),
        "check_run_execute": lambda: evidence.check_run_execute(run_id=CheckRun.objects.get().pk),
        "alert_webhook_set": lambda: evidence.alert_webhook_set(
            organisation=org, actor=admin, url="https://hooks.example.com/services/T0/B0/x"
        ),
        "alert_webhook_remove": lambda: evidence.alert_webhook_remove(organisation=org, actor=admin),
        "sow_text_update": lambda: sow.sow_text_update(
            pilot=response().assessment.pilot, actor=owner, preamble="Ours", scope="", expected_version=0
        ),
        **_review_invocations(ctx, response),
        "assessment_move": lambda: pilots.assessment_move(
            assessment=response().assessment, framework=framework_current(organisation=org), actor=owner
        ),
        "report_request": lambda: reports.report_request(
            kind="pilot", pilot=response().assessment.pilot, actor=Actor.for_user(users["viewer"])
        ),
        "report_render_execute": lambda: reports.report_render_execute(report_id=Report.objects.get().pk),
    }


def _review_invocations(ctx: dict[str, Any], response: Callable[[], Response]) -> dict[str, Callable[[], Any]]:
    from assessments.reviews import services as reviews
    from assessments.reviews.models import Condition, ReviewMeeting

    users, owner = ctx["users"], ctx["owner"]
    security = Actor.for_user(users["security"])
    when = dt.datetime(2030, 1, 7, 10, 0, tzinfo=dt.UTC)

    def meeting() -> ReviewMeeting:
        return ReviewMeeting.objects.order_by("pk")[0]

    def spare_meeting() -> ReviewMeeting:
        first = meeting()
        return ReviewMeeting.objects.create(
            pilot=first.pilot, assessment=first.assessment, scheduled_at=when, organiser=users["owner"]
        )

    def spare_condition() -> Condition:
        return Condition.objects.create(
            pilot=meeting().pilot, response=response(), text="Second", raised_by=users["security"],
            raised_role="security", owner=users["owner"], due_date=dt.date(2030, 1, 1),
        )  # fmt: skip

    return {
        "meeting_schedule": lambda: reviews.meeting_schedule(
            pilot=response().assessment.pilot,
            actor=owner,
            scheduled_at=when,
            participants=[(users["security"], "security"), (users["risk"], "risk")],
        ),
        "meeting_update": lambda: reviews.meeting_update(meeting=meeting(), actor=owner, location="Room 2"),
        "decision_record": lambda: reviews.decision_record(
            meeting=meeting(), actor=security, role="security", decision="approve"
        ),
        "comment_add": lambda: reviews.comment_add(response=response(), actor=owner, body="@security please look"),
        "condition_raise": lambda: reviews.condition_raise(
            response=response(),
            actor=security,
            role="security",
            text="Rotate keys",
            owner=users["owner"],
            due_date=dt.date(2030, 1, 1),
        ),
        "condition_meet": lambda: reviews.condition_meet(
            condition=Condition.objects.get(text="Rotate keys"), actor=owner
        ),
        "condition_waive": lambda: reviews.condition_waive(
            condition=spare_condition(), actor=security, reason="Covered elsewhere"
        ),
        "meeting_start": lambda: reviews.meeting_start(meeting=meeting(), actor=owner),
        "meeting_close": lambda: reviews.meeting_close(meeting=meeting(), actor=owner),
        "meeting_cancel": lambda: reviews.meeting_cancel(meeting=spare_meeting(), actor=owner),
    }


ORDER = [
    "organisation_create",
    "user_create",
    "membership_grant",
    "membership_revoke",
    "invitation_create",
    "invitation_revoke",
    "invitation_decline",
    "invitation_accept",
    "framework_load",
    "pilot_create",
    "pilot_update",
    "sow_text_update",
    "stop_condition_add",
    "stop_condition_update",
    "response_update",
    "evidence_add",
    "evidence_remove",
    "meeting_schedule",
    "meeting_update",
    "decision_record",
    "comment_add",
    "condition_raise",
    "condition_meet",
    "condition_waive",
    "meeting_start",
    "meeting_close",
    "meeting_cancel",
    "linked_system_create",
    "linked_system_update",
    "check_create",
    "check_update",
    "check_run_request",
    "check_run_execute",
    "alert_webhook_set",
    "alert_webhook_remove",
    "framework_copy",
    "gap_update",
    "criterion_create",
    "criterion_update",
    "criterion_delete",
    "framework_publish",
    "assessment_move",
    "report_request",
    "report_render_execute",
]  # fmt: skip


@pytest.fixture
def ctx(framework, users, default_spec, raw_spec):
    return {
        "system": Actor.system("tests"),
        "owner": Actor.for_user(users["owner"]),
        "admin": Actor.for_user(users["admin"]),
        "org": framework.organisation,
        "framework": framework,
        "users": users,
        "spec_v9": raw_spec,
        "stranger": _stranger(),
    }


def _stranger():
    """Someone with an account in another organisation, to invite."""
    from assessments.organisations.services import organisation_create, user_create

    elsewhere = organisation_create(name="Elsewhere", slug="elsewhere", actor=Actor.system("tests"))
    person = user_create(
        organisation=elsewhere,
        username="stranger",
        email="s@elsewhere.test",
        password="pw",
        actor=Actor.system("tests"),
    )
    Membership.objects.create(organisation=elsewhere, user=person, role="viewer")
    return person


@pytest.fixture
def raw_spec():
    import json

    from assessments.frameworks.loader import FRAMEWORK_V1_PATH

    data = json.loads(FRAMEWORK_V1_PATH.read_text(encoding="utf-8"))
    data["version"] = "9"
    return framework_parse(json.dumps(data))


def test_the_walk_covers_every_service():
    assert set(ORDER) == _public_functions(), "add the new service to ORDER and INVOCATIONS"
    assert _all_public_functions() >= COMPOSITES, "a composite that is no longer a service"
    assert {name for name, _ in COMPOSITE_CASES} == COMPOSITES, "walk every composite below"


def test_every_writing_service_records_exactly_one_event(ctx):
    calls = _invocations(ctx)
    assert set(calls) == set(ORDER)
    for name in ORDER:
        before = AuditEvent.objects.count()
        calls[name]()
        added = AuditEvent.objects.count() - before
        assert added == 1, f"{name} recorded {added} audit events"


# --- composites: one event per row created, each by the service that creates it ----------


def _invite(ctx: dict[str, Any], email: str, roles: list[str], username: str = "invitee") -> Any:
    from assessments.organisations.services import member_invite

    return member_invite(
        organisation=ctx["org"],
        email=email,
        username=username,
        first_name="",
        last_name="",
        roles=roles,
        actor=ctx["admin"],
        accept_url="http://testserver/invitations/",
    )


def _created_by_invite(ctx: dict[str, Any], case: str) -> list[tuple[str, int]]:
    """Call member_invite for ``case``; the (action, object id) each created row should have recorded."""
    users = ctx["users"]
    if case == "a new address":
        outcome = _invite(ctx, "new@walk.test", ["risk", "product"])
        return [("user.created", outcome.user.pk)] + [("membership.granted", m.pk) for m in outcome.memberships]
    if case == "a member here":
        outcome = _invite(ctx, users["viewer"].email, ["viewer", "risk", "product"])
        assert len(outcome.memberships) == 2  # viewer was held already
        return [("membership.granted", m.pk) for m in outcome.memberships]
    if case == "a member here holding every role asked":
        assert _invite(ctx, users["viewer"].email, ["viewer"]).memberships == ()
        return []
    outcome = _invite(ctx, ctx["stranger"].email, ["risk"])
    return [("invitation.created", outcome.invitation.pk)]


COMPOSITE_CASES = [
    ("member_invite", "a new address"),
    ("member_invite", "a member here"),
    ("member_invite", "a member here holding every role asked"),
    ("member_invite", "an account elsewhere"),
]


@pytest.mark.parametrize(("service", "case"), COMPOSITE_CASES)
def test_a_composite_records_one_event_per_row_it_creates(ctx, service, case):
    assert service == "member_invite"
    before = set(AuditEvent.objects.values_list("pk", flat=True))
    expected = _created_by_invite(ctx, case)
    recorded = AuditEvent.objects.exclude(pk__in=before).order_by("sequence")
    assert [(e.organisation_id, e.action, int(e.object_id)) for e in recorded] == [
        (ctx["org"].pk, action, object_id) for action, object_id in expected
    ]


# --- the admin: no domain write may go around the services -----------------------------

DOMAIN_APPS = {"organisations", "frameworks", "pilots", "audit", "evidence", "reviews", "reports"}


def _domain_admins():
    from django.contrib import admin

    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in DOMAIN_APPS
    ]


def _table_state(model) -> list:
    return sorted(map(repr, model.objects.values()))


@pytest.fixture
def busy_world(framework, users, owner_actor):
    """At least one row of every domain model, so change and delete pages have something to aim at."""
    from assessments.audit.signing import signing_key_ensure
    from assessments.audit.verify import audit_verify, checkpoint_create
    from assessments.pilots.services import evidence_add, pilot_create, stop_condition_add

    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Admin target", technical_owner=users["owner"]
    )
    response = Response.objects.filter(assessment__pilot=pilot).order_by("pk")[0]
    evidence_add(
        response=response,
        actor=owner_actor,
        kind="link",
        title="t",
        url="https://x.test",
        effective_date=dt.date(2026, 1, 1),
    )
    stop_condition_add(
        pilot=pilot, actor=owner_actor, condition="Stop", metric="m", comparator="lt", threshold=Decimal("1")
    )
    signing_key_ensure()
    checkpoint_create(organisation=framework.organisation)
    audit_verify(organisation=framework.organisation)
    return framework.organisation


def test_every_domain_model_is_registered_and_read_only_for_superusers(rf, busy_world):
    from django.contrib.auth.models import User

    superuser = User.objects.create_superuser("root", "root@x.test", "pw")
    request = rf.get("/admin/")
    request.user = superuser
    admins = _domain_admins()
    assert {m._meta.model_name for m, _ in admins} >= {
        "pilot",
        "response",
        "evidence",
        "framework",
        "criterion",
        "organisation",
        "membership",
    }
    for model, model_admin in admins:
        obj = model.objects.first()
        assert not model_admin.has_add_permission(request), f"{model.__name__} can be added in the admin"
        assert not model_admin.has_change_permission(request, obj), f"{model.__name__} can be changed in the admin"
        assert not model_admin.has_delete_permission(request, obj), f"{model.__name__} can be deleted in the admin"
        assert model_admin.has_view_permission(request, obj), f"{model.__name__} cannot even be read in the admin"
        for inline in model_admin.get_inline_instances(request, obj):
            assert not inline.has_add_permission(request, obj) and not inline.has_change_permission(request, obj)


def test_admin_posts_change_nothing_and_record_nothing(client, busy_world):
    """A superuser posting to every add, change and delete page of the admin is refused and nothing moves."""
    from django.contrib.auth.models import User
    from django.urls import reverse

    superuser = User.objects.create_superuser("root", "root@x.test", "pw")
    client.force_login(superuser)
    for model, _ in _domain_admins():
        info = (model._meta.app_label, model._meta.model_name)
        before, events = _table_state(model), AuditEvent.objects.count()
        obj = model.objects.first()
        urls = [reverse("admin:{}_{}_add".format(*info))]
        if obj is not None:
            urls += [
                reverse("admin:{}_{}_change".format(*info), args=[obj.pk]),
                reverse("admin:{}_{}_delete".format(*info), args=[obj.pk]),
            ]
            assert client.get(urls[1]).status_code == 200, f"{model.__name__} cannot be viewed"
        for url in urls:
            answer = client.post(url, {"post": "yes", "status": "met", "name": "Changed", "role": "admin"})
            assert answer.status_code == 403, f"POST {url} answered {answer.status_code}"
        bulk = client.post(
            reverse("admin:{}_{}_changelist".format(*info)),
            {"action": "delete_selected", "_selected_action": [obj.pk] if obj else [], "post": "yes"},
        )
        assert bulk.status_code in {200, 302, 403}
        assert _table_state(model) == before, f"the admin changed {model.__name__} rows"
        assert AuditEvent.objects.count() == events
