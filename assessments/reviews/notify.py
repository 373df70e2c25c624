"""Mail for reviews, sent after the change that causes it has committed.

A mail server that is down never undoes the change: the meeting, mention or condition
is on the page and in the audit trail either way, and the failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.core.mail import EmailMessage, send_mail
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from assessments.reviews.ics import meeting_ics
from assessments.reviews.models import Comment, Condition, ConditionStatus, ReviewMeeting

logger = logging.getLogger(__name__)


def meeting_invitation_send(meeting_id: int, method: str, user_ids: Sequence[int] | None = None) -> None:
    """Mail the meeting's participants (or, for a cancellation sent to people taken off the
    list, those people) the .ics of the meeting as it now is."""
    meeting = ReviewMeeting.objects.select_related("pilot", "organiser").filter(pk=meeting_id).first()
    if meeting is None:
        logger.warning("meeting %s vanished before its invitation was sent", meeting_id)
        return
    participants = list(meeting.participants.select_related("user"))
    if user_ids is not None:
        from django.contrib.auth.models import User

        people = User.objects.filter(pk__in=user_ids)
        recipients = sorted({u.email for u in people if u.email})
    else:
        recipients = sorted({p.user.email for p in participants if p.user.email})
    if not recipients:
        return
    when = timezone.localtime(meeting.scheduled_at).strftime("%-d %b %Y %H:%M")
    verb = {"REQUEST": "Invitation" if meeting.sequence == 0 else "Updated", "CANCEL": "Cancelled"}[method]
    subject = f"[Preflight] {verb}: readiness review of {meeting.pilot.name}, {when}"
    body = (
        f"{meeting.pilot.name}: production-readiness review on {when}"
        f"{f' in {meeting.location}' if meeting.location else ''} ({meeting.duration_minutes} minutes).\n\n"
        + ("This meeting is cancelled.\n\n" if method == "CANCEL" else "")
        + f"Meeting page: {reverse('meeting', args=[meeting.pk])}\n"
    )
    message = EmailMessage(subject, body, None, recipients)
    message.attach("invite.ics", meeting_ics(meeting, method=method, participants=participants),
                   f"text/calendar; method={method}; charset=utf-8")  # fmt: skip
    try:
        message.send()
    except OSError as exc:
        logger.warning("could not mail the invitation of meeting %s: %s", meeting_id, exc)


def mention_send(comment_id: int) -> None:
    comment = Comment.objects.select_related("author", "pilot", "response__criterion").filter(pk=comment_id).first()
    if comment is None:
        return
    recipients = sorted({u.email for u in comment.mentioned.all() if u.email})
    if not recipients:
        return
    author = comment.author.get_full_name() or comment.author.get_username()
    criterion = comment.response.criterion
    subject = f"[Preflight] {author} mentioned you on {criterion.code} of {comment.pilot.name}"
    body = (
        f"{author} wrote on {criterion.code} {criterion.title} ({comment.pilot.name}):\n\n{comment.body}\n\n"
        f"Reply in Preflight: {reverse('response-comments', args=[comment.response_id])}\n"
    )
    try:
        send_mail(subject, body, None, recipients)
    except OSError as exc:
        logger.warning("could not mail the mentions of comment %s: %s", comment_id, exc)


def conditions_overdue_mail(*, today: object = None) -> int:
    """Mail the owner of each open condition past its due date, once per condition.

    Each condition is claimed with a compare-and-set on ``overdue_notified_at`` before
    its mail goes out, so a job delivered twice, or two workers, mail it once.
    """
    day = today or timezone.localdate()
    due = Condition.objects.filter(
        Q(overdue_notified_at__isnull=True), status=ConditionStatus.OPEN, due_date__lt=day
    ).values_list("pk", flat=True)
    sent = 0
    for pk in list(due):
        claimed = Condition.objects.filter(pk=pk, overdue_notified_at__isnull=True).update(
            overdue_notified_at=timezone.now()
        )
        if claimed != 1:
            continue
        condition = Condition.objects.select_related("owner", "pilot", "response__criterion").get(pk=pk)
        if not condition.owner.email:
            continue
        criterion = condition.response.criterion
        subject = f"[Preflight] Overdue condition on {condition.pilot.name}: {criterion.code}"
        body = (
            f"A review condition you own was due on {condition.due_date:%-d %b %Y} and is still open:\n\n"
            f"{condition.text}\n\n({criterion.code} {criterion.title})\n\n"
            f"Until it is met or waived, {condition.pilot.name} is not ready for production.\n"
            f"{reverse('pilot-reviews', args=[condition.pilot_id])}#condition-{condition.pk}\n"
        )
        try:
            send_mail(subject, body, None, [condition.owner.email])
            sent += 1
        except OSError as exc:
            logger.warning("could not mail overdue condition %s: %s", pk, exc)
    return sent
