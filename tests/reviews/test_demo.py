"""The demo's reviews: four current signatures on the production pilot, stale ones on another."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments.pilots.demo import demo_seed
from assessments.pilots.models import Pilot
from assessments.pilots.selectors import assessment_open, scorecard
from assessments.reviews.models import Decision, ReviewMeeting
from assessments.reviews.selectors import readiness_gate


def _gate(name: str):
    assessment = assessment_open(pilot=Pilot.objects.get(name=name))
    assert assessment is not None
    return readiness_gate(assessment=assessment, card=scorecard(assessment=assessment, today=timezone.localdate()))


@pytest.mark.django_db
def test_the_demo_holds_a_closed_signed_meeting_and_a_stale_sign_off(client):
    demo_seed()
    helpdesk = _gate("IT helpdesk assistant")
    assert helpdesk.ready, helpdesk.reason_texts
    closed = ReviewMeeting.objects.get(pilot__name="IT helpdesk assistant")
    assert closed.status == "closed" and closed.minutes
    signed = Decision.objects.filter(meeting=closed)
    assert sorted(set(signed.values_list("role", flat=True))) == ["delivery", "product", "risk", "security"]
    # Dan owns the pilot: he co-signed delivery after Theo, never alone.
    delivery = list(signed.filter(role="delivery").order_by("signed_at").values_list("signer__username", flat=True))
    assert delivery == ["theo", "dan"]

    support = _gate("Support reply drafting")
    assert not support.ready and support.needs_rereview
    assert any("Retention policy v2" in line.change and line.subject.startswith("GV-03") for line in support.diff)
    assert ReviewMeeting.objects.filter(pilot__name="Support reply drafting", status="scheduled").count() == 1

    client.login(username="victor", password="preflight-demo")
    portfolio = client.get(reverse("home")).content.decode()
    assert "Needs re-review" in portfolio
