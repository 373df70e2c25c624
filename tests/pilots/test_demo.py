"""The demo loads through the services, once, into the states the README promises."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User

from assessments.audit.models import AuditEvent, AuditVerification
from assessments.organisations.models import Membership, Organisation
from assessments.pilots.demo import demo_seed
from assessments.pilots.models import Evidence, Pilot, Response
from assessments.pilots.selectors import assessment_open, scorecard

TODAY = dt.date(2026, 11, 22)


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


def test_the_four_pilots_are_in_the_promised_states(db):
    demo_seed(today=TODAY)
    cards = {p.name: scorecard(assessment=assessment_open(pilot=p), today=TODAY) for p in Pilot.objects.all()}
    nearly = cards["Support reply drafting"]
    assert not nearly.is_ready and [b.code for b in nearly.blockers] == ["GV-03"]
    blocked = cards["Credit limit explainer"]
    assert {b.gap_key for b in blocked.blockers} == {"guardrails", "cost"}
    started = cards["Contract clause finder"]
    assert started.overall is not None and started.overall < 10
    production = cards["IT helpdesk assistant"]
    assert production.is_ready and production.freshness.stale >= 1


def test_the_demo_chain_is_checkpointed_and_verified(db):
    result = demo_seed(today=TODAY)
    assert result.organisation.audit_checkpoints.exists()
    assert AuditVerification.objects.get(organisation=result.organisation).ok
