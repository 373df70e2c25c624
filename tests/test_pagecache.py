"""Stored page parts: a warm page is a handful of queries, and never shows an old state,
another person's rights or a form token that is not the reader's own."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assessments.audit.verify import audit_verify
from assessments.pilots.models import Pilot, Response
from assessments.pilots.services import pilot_create, response_update, stop_condition_add
from readiness.pagecache import _token_stand_in

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )


def _get(client: Client, url: str) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode(), len(captured.captured_queries)


def test_a_warm_pilot_page_costs_six_queries_and_a_warm_portfolio_six(client, users, pilot):
    client.force_login(users["owner"])
    for url in (reverse("pilot", args=[pilot.pk]), reverse("home")):
        _, cold = _get(client, url)
        _, warm = _get(client, url)
        # session, user, memberships (organisations and roles), the pilot with its scores or
        # the chain head, the integrity badge or nothing, pending invitations
        assert warm <= 6 < cold, (url, warm, cold)


def test_every_audited_change_shows_at_once(client, users, pilot, owner_actor):
    client.force_login(users["owner"])
    url = reverse("pilot", args=[pilot.pk])
    page, _ = _get(client, url)
    assert "Watch the refusal rate" not in page
    stop_condition_add(
        pilot=pilot, actor=owner_actor, condition="Watch the refusal rate", metric="refusals", comparator="gt",
        threshold=Decimal("0.2"),
    )  # fmt: skip
    page, _ = _get(client, url)
    assert "Watch the refusal rate" in page
    response = Response.objects.filter(assessment__pilot=pilot).select_related("criterion").first()
    assert response is not None
    response_update(
        response=response, actor=owner_actor, expected_version=response.version, status="not_applicable",
        justification="Handled by the platform team's gateway.",
    )  # fmt: skip
    page, _ = _get(client, f"{url}?not_met=1")
    assert f'id="row-{response.pk}"' not in page
    # The portfolio sees a new pilot at once too.
    home, _ = _get(client, reverse("home"))
    assert "Fraud notes" not in home
    pilot_create(organisation=pilot.organisation, actor=owner_actor, name="Fraud notes", technical_owner=users["owner"])
    home, _ = _get(client, reverse("home"))
    assert "Fraud notes" in home


def test_the_badge_follows_a_verification_that_wrote_no_event(client, users, pilot):
    client.force_login(users["owner"])
    url = reverse("pilot", args=[pilot.pk])
    page, _ = _get(client, url)
    assert "Chain verified" not in page
    assert audit_verify(organisation=pilot.organisation).ok
    page, _ = _get(client, url)
    assert "Chain verified" in page


def test_each_reader_sees_their_own_rights_on_a_stored_page(client, users, pilot):
    url = reverse("pilot", args=[pilot.pk])
    client.force_login(users["owner"])
    owner_page, _ = _get(client, url)
    viewer = Client()
    viewer.force_login(users["viewer"])
    viewer_page, _ = _get(viewer, url)
    assert "Add a stop condition" in owner_page and "Edit profile" in owner_page
    assert "Add a stop condition" not in viewer_page and "Edit profile" not in viewer_page


def test_a_stored_page_carries_each_session_its_own_working_form_token(users, pilot):
    url = reverse("pilot", args=[pilot.pk])
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    for client in (first, second):
        client.force_login(users["owner"])
    page_one, _ = _get(first, url)
    page_two, queries = _get(second, url)
    assert queries <= 6, "the second session was served the stored parts"
    for page in (page_one, page_two):
        assert _token_stand_in() not in page
    # The header's sign-out form comes first (rendered live); the last is from the stored parts.
    token = TOKEN.findall(page_two)
    assert len(token) >= 2
    posted = second.post(
        reverse("stop-condition-new", args=[pilot.pk]),
        {"condition": "Cost per task above budget", "metric": "cost", "comparator": "gt", "threshold": "0.05",
         "csrfmiddlewaretoken": token[-1]},
    )  # fmt: skip
    assert posted.status_code == 302
    assert pilot.stop_conditions.filter(condition="Cost per task above budget").exists()
    # Without a token of its own the same post is refused: the stand-in is no token.
    refused = second.post(
        reverse("stop-condition-new", args=[pilot.pk]),
        {"condition": "Other", "metric": "cost", "comparator": "gt", "threshold": "1",
         "csrfmiddlewaretoken": _token_stand_in()},
    )  # fmt: skip
    assert refused.status_code == 403
    assert not pilot.stop_conditions.filter(condition="Other").exists()
