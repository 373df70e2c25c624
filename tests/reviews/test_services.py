"""Review services: invitations that calendars understand, overdue conditions, the audit trail."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.reviews.models import SIGNING_ROLES, Condition, Decision
from assessments.reviews.notify import conditions_overdue_mail
from assessments.reviews.services import (
    comment_add,
    condition_meet,
    condition_raise,
    condition_waive,
    decision_record,
    meeting_cancel,
    meeting_close,
    meeting_schedule,
    meeting_start,
    meeting_update,
)
from assessments.reviews.tasks import conditions_overdue_notify
from tests.reviews.conftest import blocking_responses


def _event(message):
    """The VEVENT of a mail's .ics attachment, parsed back with the icalendar package."""
    ((name, content, mimetype),) = message.attachments
    assert name == "invite.ics" and mimetype.startswith("text/calendar; method=")
    calendar = Calendar.from_ical(content)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def test_the_invitation_is_valid_icalendar_and_updates_keep_the_uid_with_a_higher_sequence(
    pilot, users, owner_actor, mailoutbox, django_capture_on_commit_callbacks
):
    start = dt.datetime(2030, 3, 4, 9, 30, tzinfo=dt.UTC)
    with django_capture_on_commit_callbacks(execute=True):
        meeting = meeting_schedule(
            pilot=pilot, actor=owner_actor, scheduled_at=start, duration_minutes=45, location="Room 4.12",
            participants=[(users[role], role) for role in SIGNING_ROLES],
        )  # fmt: skip
    calendar, event = _event(mailoutbox[0])
    assert str(calendar["method"]) == "REQUEST" and str(calendar["version"]) == "2.0"
    uid = str(event["uid"])
    assert uid == f"{meeting.uid}@preflight"
    assert event["dtstart"].dt == start and event["dtend"].dt == start + dt.timedelta(minutes=45)
    assert event["dtstamp"].dt.tzinfo is not None
    assert int(event["sequence"]) == 0
    assert str(event["organizer"]) == f"mailto:{users['owner'].email}"
    attendees = sorted(str(a) for a in event["attendee"])
    assert attendees == sorted(f"mailto:{users[role].email}" for role in SIGNING_ROLES)
    assert str(event["location"]) == "Room 4.12" and "Claims triage" in str(event["summary"])

    # Moving it: the same UID, SEQUENCE 1; a person taken off the list is sent a cancellation.
    later = start + dt.timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        meeting_update(
            meeting=meeting, actor=owner_actor, scheduled_at=later,
            participants=[(users[role], role) for role in ("delivery", "security", "risk")],
        )  # fmt: skip
    update, removed = mailoutbox[1], mailoutbox[2]
    _cal, event = _event(update)
    assert (str(event["uid"]), int(event["sequence"]), event["dtstart"].dt) == (uid, 1, later)
    assert len(event["attendee"]) == 3
    calendar, event = _event(removed)
    assert removed.to == [users["product"].email]
    assert (str(calendar["method"]), str(event["uid"]), int(event["sequence"])) == ("CANCEL", uid, 1)

    # Minutes are not a calendar change: no mail, no new SEQUENCE.
    with django_capture_on_commit_callbacks(execute=True):
        meeting_update(meeting=meeting, actor=owner_actor, minutes="# Notes")
    assert len(mailoutbox) == 3

    with django_capture_on_commit_callbacks(execute=True):
        meeting_cancel(meeting=meeting, actor=owner_actor)
    calendar, event = _event(mailoutbox[3])
    assert (str(calendar["method"]), str(event["uid"]), int(event["sequence"])) == ("CANCEL", uid, 2)
    assert str(event["status"]) == "CANCELLED"


def test_the_ics_download_parses(client, users, meeting):
    client.force_login(users["viewer"])
    answer = client.get(reverse("meeting-ics", args=[meeting.pk]))
    assert answer["Content-Type"].startswith("text/calendar")
    (event,) = Calendar.from_ical(answer.content).walk("VEVENT")
    assert str(event["uid"]) == f"{meeting.uid}@preflight"


def test_an_overdue_condition_blocks_is_flagged_and_mails_its_owner_once(client, pilot, users, mailoutbox):
    condition = condition_raise(
        response=blocking_responses(pilot)[0], actor=Actor.for_user(users["risk"]), role="risk",
        text="DPIA signed by the DPO", owner=users["owner"], due_date=timezone.localdate() - dt.timedelta(days=2),
    )  # fmt: skip
    assert conditions_overdue_notify() == 1
    assert conditions_overdue_mail() == 0  # a second run (or a duplicate delivery) mails nobody again
    assert [m.to for m in mailoutbox] == [[users["owner"].email]]
    assert "DPIA signed by the DPO" in mailoutbox[0].body
    assert Condition.objects.get().overdue_notified_at is not None
    client.force_login(users["viewer"])
    dashboard = client.get(reverse("home")).content.decode()
    assert "1 overdue condition" in dashboard
    page = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert f"#condition-{condition.pk}" in page and "Condition overdue since" in page
    condition_meet(condition=condition, actor=Actor.for_user(users["owner"]), note="Signed on Monday")
    assert "overdue condition" not in client.get(reverse("home")).content.decode()


def test_a_closed_or_cancelled_meeting_takes_no_decisions(meeting, users, owner_actor):
    meeting_start(meeting=meeting, actor=owner_actor)
    meeting_close(meeting=meeting, actor=owner_actor)
    with pytest.raises(ValidationError, match="closed"):
        decision_record(meeting=meeting, actor=Actor.for_user(users["risk"]), role="risk", decision="approve")
    assert not Decision.objects.exists()


def test_every_review_write_is_in_the_audit_trail_exactly_once(pilot, users, owner_actor, ready_criteria):
    security = Actor.for_user(users["security"])
    response = blocking_responses(pilot)[0]
    start = AuditEvent.objects.order_by("-sequence").first().sequence
    meeting = meeting_schedule(
        pilot=pilot, actor=owner_actor, scheduled_at=timezone.now() + dt.timedelta(days=1),
        participants=[(users["security"], "security")],
    )  # fmt: skip
    meeting_start(meeting=meeting, actor=owner_actor)
    signature = decision_record(meeting=meeting, actor=security, role="security", decision="approve_with_conditions")
    comment = comment_add(response=response, actor=security, body="Looks fine, @owner")
    raised = condition_raise(
        response=response, actor=security, role="security", text="Pen test", owner=users["owner"],
        due_date=timezone.localdate() + dt.timedelta(days=30),
    )  # fmt: skip
    condition_waive(condition=raised, actor=security, reason="Pen-tested last quarter")
    meeting_close(meeting=meeting, actor=owner_actor)
    events = list(AuditEvent.objects.filter(sequence__gt=start).order_by("sequence"))
    assert [(e.action, e.object_id) for e in events] == [
        ("meeting.scheduled", str(meeting.pk)),
        ("meeting.started", str(meeting.pk)),
        ("decision.signed", str(signature.pk)),
        ("comment.added", str(comment.pk)),
        ("condition.raised", str(raised.pk)),
        ("condition.waived", str(raised.pk)),
        ("meeting.closed", str(meeting.pk)),
    ]
    assert all(e.pilot_id == pilot.pk for e in events)
    signed = events[2].changes
    assert signed["fingerprint"] == [None, signature.fingerprint]
    assert signed["audit_head"] == [None, signature.audit_head_sequence] == [None, events[1].sequence]
    assert events[3].changes["mentioned"] == [None, [users["owner"].pk]]
