"""Review pages: signing by role over HTTP, the meeting pages, meeting mode, comments, conditions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments.audit.models import AuditEvent
from assessments.reviews.models import Comment, Condition, Decision, ReviewMeeting
from tests.reviews.conftest import blocking_responses, sign_all

HTMX = {"HTTP_HX_REQUEST": "true"}


def _sign(client, meeting, role: str, decision: str = "approve", **extra: str):
    return client.post(reverse("meeting-decide", args=[meeting.pk]), {"role": role, "decision": decision, **extra})


@pytest.mark.parametrize(("who", "role"), [("viewer", "security"), ("delivery", "security"), ("admin", "risk")])
def test_a_viewer_or_the_wrong_role_cannot_sign_and_nothing_is_recorded(client, users, meeting, who, role):
    client.force_login(users[who])
    events = AuditEvent.objects.count()
    assert _sign(client, meeting, role).status_code == 403
    assert not Decision.objects.exists()
    assert AuditEvent.objects.count() == events


def test_a_role_outside_the_four_cannot_be_signed_for(client, users, meeting):
    client.force_login(users["owner"])
    assert _sign(client, meeting, "owner").status_code == 403
    assert not Decision.objects.exists()


def test_the_owner_cannot_be_the_only_signer_of_a_role(client, users, meeting, org):
    from assessments.organisations.services import membership_grant
    from tests.conftest import SYSTEM

    membership_grant(organisation=org, user=users["owner"], role="delivery", actor=SYSTEM)
    client.force_login(users["owner"])
    answer = _sign(client, meeting, "delivery")
    assert answer.status_code == 403
    assert "no one approves their own work alone" in answer.content.decode()
    assert not Decision.objects.exists()
    # Once someone else has signed delivery, the owner may co-sign it.
    client.force_login(users["delivery"])
    assert _sign(client, meeting, "delivery").status_code == 302
    client.force_login(users["owner"])
    assert _sign(client, meeting, "delivery").status_code == 302
    assert Decision.objects.filter(role="delivery").count() == 2


def test_a_person_holding_two_roles_signs_each_once(client, users, meeting, org):
    from assessments.organisations.services import membership_grant
    from tests.conftest import SYSTEM

    membership_grant(organisation=org, user=users["risk"], role="product", actor=SYSTEM)
    client.force_login(users["risk"])
    page = client.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert '<option value="risk"' in page and '<option value="product"' in page
    assert _sign(client, meeting, "risk").status_code == 302
    assert _sign(client, meeting, "product", "approve_with_conditions").status_code == 302
    again = _sign(client, meeting, "risk")
    assert again.status_code == 422
    assert "already signed for Risk &amp; compliance" in again.content.decode()
    assert sorted(Decision.objects.values_list("role", flat=True)) == ["product", "risk"]
    page = client.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert "You hold none of the four signing roles that still need your signature here." in page


def test_a_rejection_must_say_what_must_change(client, users, meeting):
    client.force_login(users["security"])
    answer = _sign(client, meeting, "security", "reject")
    assert answer.status_code == 422 and "what must change" in answer.content.decode()
    assert not Decision.objects.exists()
    assert _sign(client, meeting, "security", "reject", must_change="Pen-test the plugin API").status_code == 302
    page = client.get(reverse("pilot", args=[meeting.pilot_id])).content.decode()
    assert "Security rejected: Pen-test the plugin API" in page


def test_the_pilot_page_shows_ready_then_needs_re_review_with_the_diff(
    client, users, ready_criteria, meeting, owner_actor
):
    from assessments.pilots.services import response_update

    sign_all(meeting, users)
    client.force_login(users["viewer"])
    page = client.get(reverse("pilot", args=[ready_criteria.pk])).content.decode()
    assert "Ready for production" in page and "Needs re-review" not in page
    response = blocking_responses(ready_criteria)[0]
    response.refresh_from_db()
    response_update(response=response, actor=owner_actor, expected_version=response.version, status="not_met")
    page = client.get(reverse("pilot", args=[ready_criteria.pk])).content.decode()
    assert "Not ready for production" in page and "Needs re-review" in page
    reviews = client.get(reverse("pilot-reviews", args=[ready_criteria.pk])).content.decode()
    assert "What changed since it was signed" in reviews
    assert f"{response.criterion.code} {response.criterion.title}" in reviews and "Met → Not met" in reviews


def test_scheduling_over_http_invites_and_lists_the_meeting(
    client, users, pilot, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(users["owner"])
    form = client.get(reverse("pilot-reviews", args=[pilot.pk])).content.decode()
    assert "Schedule a review" in form
    when = (timezone.localtime() + dt.timedelta(days=2)).strftime("%Y-%m-%dT10:00")
    data = {
        "scheduled_at": when,
        "duration_minutes": "45",
        "location": "Board room",
        "participants": [f"{users[r].pk}:{r}" for r in ("delivery", "security", "risk", "product")],
    }
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(reverse("meeting-new", args=[pilot.pk]), data)
    meeting = ReviewMeeting.objects.get()
    assert answer.status_code == 302 and answer["Location"] == reverse("meeting", args=[meeting.pk])
    assert len(mailoutbox) == 1 and sorted(mailoutbox[0].to) == sorted(
        users[r].email for r in ("delivery", "security", "risk", "product")
    )
    # Someone who does not hold the role they are listed for is refused, with the reason shown.
    bad = {**data, "participants": [f"{users['viewer'].pk}:security"]}
    refused = client.post(reverse("meeting-new", args=[pilot.pk]), bad)
    assert refused.status_code == 422
    assert ReviewMeeting.objects.count() == 1


def test_viewers_cannot_schedule(client, users, pilot):
    client.force_login(users["viewer"])
    assert "Schedule a review" not in client.get(reverse("pilot-reviews", args=[pilot.pk])).content.decode()
    answer = client.post(reverse("meeting-new", args=[pilot.pk]), {"scheduled_at": "2030-01-01T10:00"})
    assert answer.status_code == 403


def test_meeting_mode_orders_blocking_first_and_swaps_the_stage_over_htmx(client, users, pilot, meeting):
    client.force_login(users["security"])
    page = client.get(reverse("meeting-present", args=[meeting.pk])).content.decode()
    assert "Blocking, not met" in page and 'id="next-item"' in page and "meeting.js" in page
    fragment = client.get(reverse("meeting-present", args=[meeting.pk]), {"item": 2}, HTTP_HX_TARGET="stage", **HTMX)
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body and "Item 2 of" in body


def test_comments_thread_with_mentions_and_conditions_inline(
    client, users, pilot, meeting, mailoutbox, django_capture_on_commit_callbacks
):
    response = blocking_responses(pilot)[0]
    url = reverse("response-comments", args=[response.pk])
    client.force_login(users["viewer"])  # any member who reads the pilot may comment
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            url, {"body": "@security can you look at the key rotation?", "meeting": meeting.pk}, **HTMX
        )
    assert answer.status_code == 200 and "can you look at the key rotation?" in answer.content.decode()
    comment = Comment.objects.get()
    assert list(comment.mentioned.all()) == [users["security"]] and comment.meeting == meeting
    assert [m.to for m in mailoutbox] == [[users["security"].email]]
    reply = client.post(url, {"body": "Seen", "parent": comment.pk}, **HTMX)
    assert reply.status_code == 200 and Comment.objects.get(body="Seen").parent == comment
    assert client.post(url, {"body": "   "}, **HTMX).status_code == 422
    # Viewers do not raise conditions; security does, inline.
    due = (timezone.localdate() + dt.timedelta(days=7)).isoformat()
    data = {"role": "security", "text": "Rotate keys", "owner": users["owner"].pk, "due_date": due}
    assert client.post(reverse("condition-new", args=[response.pk]), data, **HTMX).status_code == 403
    client.force_login(users["security"])
    raised = client.post(reverse("condition-new", args=[response.pk]), {**data, "meeting": meeting.pk}, **HTMX)
    assert raised.status_code == 200 and "Condition raised." in raised.content.decode()
    assert Condition.objects.get().meeting == meeting


def test_only_the_raising_role_waives_a_condition_and_only_with_a_reason(client, users, pilot):
    from assessments.audit.context import Actor
    from assessments.reviews.services import condition_raise

    condition = condition_raise(
        response=blocking_responses(pilot)[0], actor=Actor.for_user(users["risk"]), role="risk",
        text="DPIA signed", owner=users["owner"], due_date=timezone.localdate(),
    )  # fmt: skip
    url = reverse("condition-status", args=[condition.pk])
    client.force_login(users["security"])
    assert client.post(url, {"action": "waive", "resolution": "not needed"}).status_code == 403
    client.force_login(users["risk"])
    assert client.post(url, {"action": "waive", "resolution": ""}).status_code == 422
    assert client.post(url, {"action": "waive", "resolution": "Covered by the group DPIA"}).status_code == 302
    condition.refresh_from_db()
    assert condition.status == "waived" and condition.resolution == "Covered by the group DPIA"


def test_the_stage_form_refuses_production_with_the_reasons_and_an_admin_overrides_in_writing(client, users, pilot):
    from django.contrib.messages import get_messages

    from assessments.pilots.models import Pilot

    url = reverse("pilot-stage", args=[pilot.pk])
    client.force_login(users["owner"])
    refused = client.post(url, {"stage": "production"})
    complaints = [str(m) for m in get_messages(refused.wsgi_request)]
    assert refused.status_code == 302 and refused["Location"].endswith("#gate")
    assert complaints and complaints[0].startswith("Not ready for production:") and "more)" in complaints[0]
    assert Pilot.objects.get(pk=pilot.pk).stage == "pilot"
    assert "Override the gate" not in client.get(reverse("pilot", args=[pilot.pk])).content.decode()

    client.force_login(users["admin"])
    assert "Override the gate" in client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    why = "Board accepted the residual risk on 1 Dec; review within 30 days."
    assert client.post(url, {"stage": "production", "override_justification": why}).status_code == 302
    assert Pilot.objects.get(pk=pilot.pk).stage == "production"
    client.force_login(users["viewer"])
    page = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert "Gate overridden" in page and why in page
