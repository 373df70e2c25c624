"""Two administrators removing each other at the same moment (real PostgreSQL, real requests)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from assessments.audit.context import Actor
from assessments.audit.verify import audit_verify
from assessments.organisations.models import Membership, Role
from assessments.organisations.services import membership_grant, user_create
from tests.concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_mutual_revocation_always_leaves_an_administrator(org, users):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are what is tested; SQLite serialises writers anyway")
    system = Actor.system("tests")
    second = user_create(organisation=org, username="admin2", email="a2@acme.test", password="pw", actor=system)
    first = users["admin"]
    for attempt in range(10):
        for person in (first, second):
            if not Membership.objects.filter(organisation=org, user=person, role=Role.ADMIN).exists():
                membership_grant(organisation=org, user=person, role=Role.ADMIN, actor=system)
        mine = Membership.objects.get(organisation=org, user=first, role=Role.ADMIN)
        theirs = Membership.objects.get(organisation=org, user=second, role=Role.ADMIN)

        def revoke(actor_user, membership):
            def call() -> int:
                browser = Client()
                browser.force_login(actor_user)
                return browser.post(reverse("member-role-revoke", args=[membership.pk])).status_code

            return call

        statuses = run_together(revoke(first, theirs), revoke(second, mine))
        assert all(isinstance(s, int) for s in statuses), f"attempt {attempt}: {statuses}"
        admins = Membership.objects.filter(organisation=org, role=Role.ADMIN).count()
        assert admins >= 1, f"attempt {attempt}: no administrator left ({statuses})"
        # The loser is refused: no longer an administrator (403), no longer a member at all (404),
        # or the last administrator (409).
        assert sorted(statuses)[0] == 302 and sorted(statuses)[1] in {403, 404, 409}, statuses
    assert audit_verify(organisation=org, record_result=False).ok
