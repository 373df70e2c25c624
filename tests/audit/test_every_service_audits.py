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
from assessments.organisations.models import Membership
from assessments.pilots.models import Evidence, Response, StopCondition

SERVICE_MODULES = [
    "assessments.audit.services",
    "assessments.organisations.services",
    "assessments.frameworks.services",
    "assessments.pilots.services",
]
# Helpers that are not writes of their own: audit_record *is* the event; the rest
# build its payload. audit_chain_start runs inside organisation_create.
NOT_WRITES = {"audit_record", "audit_chain_start", "diff_fields", "snapshot", "created_changes"}


def _public_functions() -> set[str]:
    names = set()
    for module_name in SERVICE_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in inspect.getmembers(module, inspect.isfunction):
            if obj.__module__ == module_name and not name.startswith("_"):
                names.add(name)
    return names - NOT_WRITES


def _invocations(ctx: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    from assessments.frameworks import services as fw
    from assessments.organisations import services as orgs
    from assessments.pilots import services as pilots

    system, owner, admin = ctx["system"], ctx["owner"], ctx["admin"]
    org, framework, users = ctx["org"], ctx["framework"], ctx["users"]

    def draft() -> Framework:
        return Framework.objects.filter(organisation=org, status="draft").latest("version")

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
            severity="minor",
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
        "assessment_migrate": lambda: pilots.assessment_migrate(
            assessment=response().assessment, framework=framework_current(organisation=org), actor=owner
        ),
    }


ORDER = [
    "organisation_create",
    "user_create",
    "membership_grant",
    "membership_revoke",
    "framework_load",
    "pilot_create",
    "pilot_update",
    "stop_condition_add",
    "stop_condition_update",
    "response_update",
    "evidence_add",
    "evidence_remove",
    "framework_copy",
    "gap_update",
    "criterion_create",
    "criterion_update",
    "criterion_delete",
    "framework_publish",
    "assessment_migrate",
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
    }


@pytest.fixture
def raw_spec():
    import json

    from assessments.frameworks.loader import DEFAULT_FRAMEWORK_PATH

    data = json.loads(DEFAULT_FRAMEWORK_PATH.read_text(encoding="utf-8"))
    data["version"] = "9"
    return framework_parse(json.dumps(data))


def test_the_walk_covers_every_service():
    assert set(ORDER) == _public_functions(), "add the new service to ORDER and INVOCATIONS"


def test_every_writing_service_records_exactly_one_event(ctx):
    calls = _invocations(ctx)
    assert set(calls) == set(ORDER)
    for name in ORDER:
        before = AuditEvent.objects.count()
        calls[name]()
        added = AuditEvent.objects.count() - before
        assert added == 1, f"{name} recorded {added} audit events"
