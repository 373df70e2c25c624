"""Loads the demo organisation from fixtures/demo.json through the ordinary services,
so the demo's audit chain and activity feeds look exactly like real use."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.signing import signing_key_ensure
from assessments.audit.verify import audit_verify, checkpoint_create
from assessments.frameworks.loader import DEFAULT_FRAMEWORK_PATH, framework_read_file
from assessments.frameworks.services import framework_load
from assessments.organisations.models import Organisation
from assessments.organisations.services import membership_grant, organisation_create, user_create
from assessments.pilots.models import Pilot, Response
from assessments.pilots.selectors import assessment_open
from assessments.pilots.services import evidence_add, pilot_create, response_update, stop_condition_add

DEMO_PATH = Path(__file__).resolve().parents[2] / "fixtures" / "demo.json"
DECIMAL_FIELDS = ("value_baseline", "value_target", "value_current", "cost_envelope_per_task")


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    roles: list[str]


@dataclass(frozen=True)
class DemoResult:
    organisation: Organisation
    created: bool
    logins: list[DemoLogin]


def demo_seed(*, path: Path = DEMO_PATH, today: dt.date | None = None) -> DemoResult:
    """Create the demo organisation once; a second run changes nothing."""
    data = json.loads(path.read_text(encoding="utf-8"))
    logins = [DemoLogin(u["username"], data["password"], u["roles"]) for u in data["users"]]
    existing = Organisation.objects.filter(slug=data["organisation"]["slug"]).first()
    if existing is not None:
        return DemoResult(organisation=existing, created=False, logins=logins)
    signing_key_ensure()
    with transaction.atomic():
        organisation = _seed(data, today or timezone.localdate())
    checkpoint_create(organisation=organisation)
    audit_verify(organisation=organisation)
    return DemoResult(organisation=organisation, created=True, logins=logins)


def _seed(data: dict[str, Any], today: dt.date) -> Organisation:
    setup = Actor.system("demo.seed")
    organisation = organisation_create(
        name=data["organisation"]["name"], slug=data["organisation"]["slug"], actor=setup
    )
    framework_load(organisation=organisation, spec=framework_read_file(DEFAULT_FRAMEWORK_PATH), actor=setup)
    people: dict[str, User] = {}
    for spec in data["users"]:
        user = user_create(
            organisation=organisation,
            username=spec["username"],
            email=spec["email"],
            password=data["password"],
            first_name=spec["first_name"],
            last_name=spec["last_name"],
            actor=setup,
        )
        if spec.get("superuser"):
            get_user_model().objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
        for role in spec["roles"]:
            membership_grant(organisation=organisation, user=user, role=role, actor=setup)
        people[spec["username"]] = user
    for spec in data["pilots"]:
        _seed_pilot(organisation, spec, people, today)
    return organisation


def _seed_pilot(organisation: Organisation, spec: dict[str, Any], people: dict[str, User], today: dt.date) -> Pilot:
    owner = people[spec["technical_owner"]]
    actor = Actor.for_user(owner)
    profile = {k: v for k, v in spec["profile"].items()}
    for name in DECIMAL_FIELDS:
        if profile.get(name) is not None:
            profile[name] = Decimal(str(profile[name]))
    pilot = pilot_create(
        organisation=organisation,
        actor=actor,
        name=spec["name"],
        business_owner=people[spec["business_owner"]],
        technical_owner=owner,
        target_date=today + dt.timedelta(days=spec.get("target_in_days", 60)),
        **profile,
    )
    for stop in spec.get("stop_conditions", []):
        stop_condition_add(pilot=pilot, actor=actor, **{**stop, "threshold": Decimal(str(stop["threshold"]))})
    assessment = assessment_open(pilot=pilot)
    assert assessment is not None
    plan = spec["responses"]
    evidence_age = int(plan.get("evidence_age_days", 20))
    for response in Response.objects.filter(assessment=assessment).select_related("criterion__gap"):
        code = response.criterion.code
        answer = plan.get("codes", {}).get(code) or {
            "status": plan["gaps"].get(response.criterion.gap.key, plan["default"])
        }
        if answer["status"] == "not_started":
            continue
        fields: dict[str, Any] = {"status": answer["status"]}
        if answer.get("justification"):
            fields["justification"] = answer["justification"]
        if answer.get("owner"):
            fields["owner"] = people[answer["owner"]]
        if answer.get("due_in_days") is not None:
            fields["due_date"] = today + dt.timedelta(days=answer["due_in_days"])
        response = response_update(response=response, actor=actor, expected_version=response.version, **fields)
        if answer["status"] in {"met", "partly_met"}:
            age = int(answer.get("evidence_age_days", evidence_age))
            evidence_add(
                response=response,
                actor=actor,
                kind="link",
                title=answer.get("evidence_title", response.criterion.evidence_expected[:190]),
                url=f"https://wiki.{organisation.slug}.example/ai/{pilot.slug}/{code.lower()}",
                effective_date=today - dt.timedelta(days=age),
            )
    return pilot
