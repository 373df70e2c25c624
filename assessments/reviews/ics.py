"""iCalendar (RFC 5545) invitations for review meetings.

One UID per meeting for its whole life; SEQUENCE grows with every change of time,
place or people and with the cancellation, so calendar programs update the one event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

from assessments.reviews.models import MeetingStatus, Participant, ReviewMeeting

PRODID = "-//Preflight//Readiness reviews//EN"


def _address(email: str, name: str, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    address.params["cn"] = vText(name)
    for key, value in params.items():
        address.params[key] = vText(value)
    return address


def _name(user: object) -> str:
    full = getattr(user, "get_full_name", lambda: "")()
    return str(full or getattr(user, "username", ""))


def meeting_uid(meeting: ReviewMeeting) -> str:
    return f"{meeting.uid}@preflight"


def meeting_ics(
    meeting: ReviewMeeting, *, method: str = "REQUEST", participants: Sequence[Participant] | None = None
) -> bytes:
    """The invitation (``REQUEST``) or cancellation (``CANCEL``) of ``meeting``."""
    if participants is None:
        participants = list(meeting.participants.select_related("user"))
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", meeting_uid(meeting))
    event.add("dtstamp", timezone.now().astimezone(dt.UTC))
    event.add("sequence", meeting.sequence)
    start = meeting.scheduled_at.astimezone(dt.UTC)
    event.add("dtstart", start)
    event.add("dtend", start + dt.timedelta(minutes=meeting.duration_minutes))
    event.add("summary", f"Readiness review: {meeting.pilot.name}")
    if meeting.location:
        event.add("location", meeting.location)
    link = reverse("meeting", args=[meeting.pk])
    event.add(
        "description",
        f"Production-readiness review of {meeting.pilot.name}. "
        f"Delivery, security, risk and product record a decision each and sign. Meeting page: {link}",
    )
    cancelled = method == "CANCEL" or meeting.status == MeetingStatus.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    organiser = meeting.organiser
    event["organizer"] = _address(organiser.email or settings.DEFAULT_FROM_EMAIL, _name(organiser))
    for participant in participants:
        user = participant.user
        if not user.email:
            continue
        event.add(
            "attendee",
            _address(
                user.email,
                _name(user),
                role="REQ-PARTICIPANT" if participant.role != "viewer" else "OPT-PARTICIPANT",
                partstat="NEEDS-ACTION",
                rsvp="TRUE",
            ),
            encode=False,
        )
    calendar.add_component(event)
    return calendar.to_ical()
