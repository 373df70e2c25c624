"""Writes for reviews: meetings, decisions (signatures), comments and conditions.

Each public service checks who may write, changes rows and records exactly one audit
event in the same transaction. Mail (invitations, mentions) is sent after commit, so a
rolled-back change never mails anybody.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from functools import partial

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.models import AuditChainHead
from assessments.audit.services import audit_record, created_changes, diff_fields, snapshot
from assessments.frameworks.models import HeldEvidence
from assessments.organisations.models import REVIEWER_ROLES, Membership, Role
from assessments.organisations.permissions import can_edit_pilot, require, require_member, roles_of
from assessments.pilots.models import AssessmentStatus, Pilot, Response
from assessments.pilots.scorecache import scores_refresh_held
from assessments.reviews import notify
from assessments.reviews.fingerprint import fingerprint_current
from assessments.reviews.models import (
    OPEN_MEETING_STATUSES,
    PARTICIPANT_ROLES,
    SIGNING_ROLES,
    Comment,
    Condition,
    ConditionStatus,
    Decision,
    DecisionKind,
    MeetingStatus,
    Participant,
    ReviewMeeting,
)
from assessments.text import text_check

MEETING_FIELDS = ("scheduled_at", "duration_minutes", "location", "status", "minutes")
# Changing one of these re-sends the invitation with a higher SEQUENCE.
CALENDAR_FIELDS = frozenset({"scheduled_at", "duration_minutes", "location"})
CONDITION_FIELDS = ("text", "owner", "due_date", "raised_role", "status", "resolution")
MENTION = re.compile(r"(?<![\w.@])@([\w.+-]+)")
MAX_TEXT = 10_000

ParticipantSpec = tuple[User, str]


def _require_organiser(actor: Actor, pilot: Pilot) -> set[str]:
    """Scheduling and running a meeting: the pilot's owners, administrators and the four reviewer roles."""
    roles = require_member(actor=actor, organisation=pilot.organisation_id)
    require(
        can_edit_pilot(roles, actor=actor, pilot=pilot) or bool(roles & REVIEWER_ROLES),
        "Only the pilot's owners, administrators and reviewers schedule and run its reviews.",
    )
    return roles


def _prose(value: str, *, subject: str, field: str, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise ValidationError({field: f"{subject} cannot be empty."})
    if len(value) > MAX_TEXT:
        raise ValidationError({field: f"{subject} is longer than {MAX_TEXT:,} characters."})
    text_check(value, multiline=True, subject=subject, field=field)
    return value


def _check_participants(pilot: Pilot, participants: Sequence[ParticipantSpec]) -> list[ParticipantSpec]:
    """Each person must hold the role they represent in the pilot's organisation."""
    wanted = list(dict.fromkeys((user.pk, role) for user, role in participants))
    held = set(
        Membership.objects.filter(
            organisation_id=pilot.organisation_id, user_id__in={pk for pk, _ in wanted}
        ).values_list("user_id", "role")
    )
    people = {user.pk: user for user, _ in participants}
    # The pilot's own owners represent it whatever their role in the organisation.
    owners = {pilot.technical_owner_id, pilot.business_owner_id} - {None}
    problems = []
    for user_pk, role in wanted:
        if role not in PARTICIPANT_ROLES:
            problems.append(f"'{role}' is not a role a participant can represent.")
        elif role == Role.OWNER and user_pk in owners:
            continue
        elif (user_pk, role) not in held:
            problems.append(f"{people[user_pk].get_username()} does not hold the {Role(role).label} role here.")
    if problems:
        raise ValidationError({"participants": problems})
    return [(people[pk], role) for pk, role in wanted]


def _participants_of(meeting: ReviewMeeting) -> list[list[object]]:
    return [[p.user_id, p.role] for p in meeting.participants.order_by("role", "user_id")]


def _after_commit_mail(meeting_id: int, method: str, user_ids: Sequence[int] | None = None) -> None:
    transaction.on_commit(partial(notify.meeting_invitation_send, meeting_id, method, user_ids), robust=True)


@transaction.atomic
def meeting_schedule(
    *,
    pilot: Pilot,
    actor: Actor,
    scheduled_at: dt.datetime,
    participants: Sequence[ParticipantSpec],
    duration_minutes: int = 60,
    location: str = "",
) -> ReviewMeeting:
    """Schedule a review of the pilot's open assessment and mail the participants an invitation."""
    _require_organiser(actor, pilot)
    if actor.user_pk is None:
        raise ValidationError("A meeting is scheduled by a person, its organiser.")
    assessment = pilot.assessments.exclude(status=AssessmentStatus.SUPERSEDED).first()
    if assessment is None:
        raise ValidationError("This pilot has no open assessment to review.")
    if not participants:
        raise ValidationError({"participants": ["Invite at least one person."]})
    text_check(location, subject="The place", field="location")
    people = _check_participants(pilot, participants)
    meeting = ReviewMeeting(
        pilot=pilot,
        assessment=assessment,
        scheduled_at=scheduled_at,
        duration_minutes=duration_minutes,
        location=location.strip(),
        organiser_id=actor.user_pk,
    )
    meeting.full_clean()
    meeting.save()
    Participant.objects.bulk_create(Participant(meeting=meeting, user=user, role=role) for user, role in people)
    changes = created_changes(meeting, ("scheduled_at", "duration_minutes", "location", "status"))
    changes["participants"] = [None, _participants_of(meeting)]
    changes["sequence"] = [None, 0]
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="meeting.scheduled",
        object_type="review_meeting",
        object_id=meeting.pk,
        pilot_id=pilot.pk,
        changes=changes,
    )
    _after_commit_mail(meeting.pk, "REQUEST")
    return meeting


def _lock_meeting(meeting: ReviewMeeting) -> ReviewMeeting:
    # Lock only the meeting row: decisions in one meeting are serialised by it (the owner
    # co-signing rule reads the others' signatures), without holding the organisation.
    return (
        ReviewMeeting.objects.select_for_update(of=("self",)).select_related("pilot__organisation").get(pk=meeting.pk)
    )


@transaction.atomic
def meeting_update(
    *,
    meeting: ReviewMeeting,
    actor: Actor,
    scheduled_at: dt.datetime | None = None,
    duration_minutes: int | None = None,
    location: str | None = None,
    minutes: str | None = None,
    participants: Sequence[ParticipantSpec] | None = None,
) -> ReviewMeeting:
    """Change a meeting's time, place, people or minutes (Markdown).

    A change of time, place or people is sent again to everyone concerned with the same
    UID and a higher SEQUENCE; people taken off the list are sent a cancellation. Minutes
    may still be written after the meeting closed; a cancelled meeting is a record.
    """
    meeting = _lock_meeting(meeting)
    pilot = meeting.pilot
    _require_organiser(actor, pilot)
    if meeting.status == MeetingStatus.CANCELLED:
        raise ValidationError("This meeting was cancelled; schedule a new one.")
    data: dict[str, object] = {}
    if scheduled_at is not None:
        data["scheduled_at"] = scheduled_at
    if duration_minutes is not None:
        data["duration_minutes"] = duration_minutes
    if location is not None:
        text_check(location, subject="The place", field="location")
        data["location"] = location.strip()
    if minutes is not None:
        data["minutes"] = _prose(minutes, subject="The minutes", field="minutes")
    before = snapshot(meeting, MEETING_FIELDS)
    before_people = _participants_of(meeting)
    if meeting.status == MeetingStatus.CLOSED and set(data) - {"minutes"}:
        raise ValidationError("This meeting is closed: only its minutes can still be edited.")
    changed = [name for name, value in data.items() if getattr(meeting, name) != value]
    for name in changed:
        setattr(meeting, name, data[name])
    removed: list[int] = []
    if participants is not None:
        if meeting.status == MeetingStatus.CLOSED:
            raise ValidationError("This meeting is closed: its participants are a record.")
        if not participants:
            raise ValidationError({"participants": ["Invite at least one person."]})
        people = _check_participants(pilot, participants)
        wanted = {(user.pk, role) for user, role in people}
        current = {(p.user_id, p.role): p for p in meeting.participants.all()}
        for key, row in current.items():
            if key not in wanted:
                row.delete()
        Participant.objects.bulk_create(
            Participant(meeting=meeting, user=user, role=role)
            for user, role in people
            if (user.pk, role) not in current
        )
        remaining = {pk for pk, _ in wanted}
        removed = sorted({pk for pk, _ in current if pk not in remaining})
    after_people = _participants_of(meeting)
    calendar = bool(CALENDAR_FIELDS & set(changed)) or before_people != after_people
    if not changed and before_people == after_people:
        return meeting
    if calendar:
        meeting.sequence += 1
        changed.append("sequence")
    meeting.full_clean()
    meeting.save(update_fields=[*changed, "updated_at"])
    changes = diff_fields(before=before, after=snapshot(meeting, MEETING_FIELDS))
    if "minutes" in changes:
        changes["minutes"] = [len(before["minutes"]), len(meeting.minutes)]  # sizes: the text is on the page
    if before_people != after_people:
        changes["participants"] = [before_people, after_people]
    if calendar:
        changes["sequence"] = [meeting.sequence - 1, meeting.sequence]
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="meeting.updated",
        object_type="review_meeting",
        object_id=meeting.pk,
        pilot_id=pilot.pk,
        changes=changes,
    )
    if calendar:
        _after_commit_mail(meeting.pk, "REQUEST")
        if removed:
            _after_commit_mail(meeting.pk, "CANCEL", removed)
    return meeting


def _status_move(
    meeting: ReviewMeeting, actor: Actor, *, allowed_from: set[str], to: str, action: str
) -> ReviewMeeting:
    meeting = _lock_meeting(meeting)
    _require_organiser(actor, meeting.pilot)
    if meeting.status not in allowed_from:
        raise ValidationError(
            f"This meeting is {meeting.get_status_display().lower()}; it cannot be "
            f"{MeetingStatus(to).label.lower()} now."
        )
    before = meeting.status
    meeting.status = to
    fields = ["status", "updated_at"]
    if to == MeetingStatus.CLOSED:
        meeting.closed_at = timezone.now()
        fields.append("closed_at")
    changes: dict[str, list[object]] = {"status": [before, to]}
    if to == MeetingStatus.CANCELLED:
        meeting.sequence += 1
        fields.append("sequence")
        changes["sequence"] = [meeting.sequence - 1, meeting.sequence]
    meeting.save(update_fields=fields)
    audit_record(
        organisation=meeting.pilot.organisation,
        actor=actor,
        action=action,
        object_type="review_meeting",
        object_id=meeting.pk,
        pilot_id=meeting.pilot_id,
        changes=changes,
    )
    return meeting


@transaction.atomic
def meeting_start(*, meeting: ReviewMeeting, actor: Actor) -> ReviewMeeting:
    """The meeting is under way (meeting mode shows it as live)."""
    return _status_move(
        meeting, actor, allowed_from={MeetingStatus.SCHEDULED}, to=MeetingStatus.IN_PROGRESS, action="meeting.started"
    )


@transaction.atomic
def meeting_close(*, meeting: ReviewMeeting, actor: Actor) -> ReviewMeeting:
    """Close the meeting: no more decisions in it. Its minutes stay editable."""
    return _status_move(
        meeting, actor, allowed_from=set(OPEN_MEETING_STATUSES), to=MeetingStatus.CLOSED, action="meeting.closed"
    )


@transaction.atomic
def meeting_cancel(*, meeting: ReviewMeeting, actor: Actor) -> ReviewMeeting:
    """Call the meeting off; every participant gets a cancellation (same UID, higher SEQUENCE).
    Decisions already recorded in it no longer count."""
    meeting = _status_move(
        meeting, actor, allowed_from={MeetingStatus.SCHEDULED}, to=MeetingStatus.CANCELLED, action="meeting.cancelled"
    )
    _after_commit_mail(meeting.pk, "CANCEL")
    # Its decisions no longer count, so neither does a sign-off held through them.
    scores_refresh_held(
        kind=HeldEvidence.REVIEW_SIGNOFF, organisation_id=meeting.pilot.organisation_id, pilot_id=meeting.pilot_id
    )
    return meeting


@transaction.atomic
def decision_record(
    *,
    meeting: ReviewMeeting,
    actor: Actor,
    role: str,
    decision: str,
    comment: str = "",
    must_change: str = "",
) -> Decision:
    """Sign ``role``'s decision in ``meeting``, bound to the fingerprint of the assessment now.

    - only for a role the person holds in the pilot's organisation (else PermissionDenied);
    - once per person per role per meeting (the database refuses a second);
    - the pilot's own owners may co-sign a role only after someone else signed it, so no
      one approves their own work alone (PermissionDenied);
    - a rejection says what must change;
    - only while the meeting is open, and only on the pilot's open assessment.
    """
    meeting = _lock_meeting(meeting)
    pilot = meeting.pilot
    if actor.user_pk is None:
        raise PermissionDenied("Decisions are signed by people.")
    roles = roles_of(user=actor.user_pk, organisation=pilot.organisation_id)
    if role not in SIGNING_ROLES:
        raise ValidationError({"role": "Only delivery, security, risk and product sign a review."})
    if role not in roles:
        raise PermissionDenied(f"You do not hold the {Role(role).label} role in {pilot.organisation.name}.")
    if decision not in DecisionKind.values:
        raise ValidationError({"decision": "Choose approve, approve with conditions or reject."})
    comment = _prose(comment, subject="The comment", field="comment")
    must_change = _prose(must_change, subject="What must change", field="must_change")
    if decision == DecisionKind.REJECT and not must_change:
        raise ValidationError({"must_change": "A rejection says what must change before you would approve."})
    if not meeting.is_open:
        raise ValidationError(f"This meeting is {meeting.get_status_display().lower()}: it takes no more decisions.")
    if meeting.assessment.status == AssessmentStatus.SUPERSEDED:
        raise ValidationError("The assessment this meeting reviews was superseded; schedule a review of the new one.")
    owners = {pilot.technical_owner_id, pilot.business_owner_id} - {None}
    owns = actor.user_pk in owners
    others = Decision.objects.filter(meeting=meeting, role=role).exclude(signer_id__in=owners)
    if owns and not others.exists():
        raise PermissionDenied(
            f"You own {pilot.name}: someone else must sign for {Role(role).label} first "
            "(no one approves their own work alone)."
        )
    fingerprint, state = fingerprint_current(assessment_id=meeting.assessment_id)
    head = AuditChainHead.objects.get(organisation_id=pilot.organisation_id)
    signature = Decision(
        meeting=meeting,
        role=role,
        signer_id=actor.user_pk,
        decision=decision,
        comment=comment,
        must_change=must_change,
        signer_owns_pilot=owns,
        fingerprint=fingerprint,
        snapshot=state,
        audit_head_sequence=head.sequence,
        audit_head_hash=head.hash,
        signed_at=timezone.now(),
    )
    signature.full_clean(exclude=["meeting", "signer"], validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            signature.save()
    except IntegrityError as exc:
        raise ValidationError(
            f"You have already signed for {Role(role).label} in this meeting.", code="duplicate"
        ) from exc
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="decision.signed",
        object_type="decision",
        object_id=signature.pk,
        pilot_id=pilot.pk,
        changes={
            "meeting": [None, meeting.pk],
            "role": [None, role],
            "decision": [None, decision],
            "comment": [None, comment],
            "must_change": [None, must_change],
            "fingerprint": [None, fingerprint],
            "audit_head": [None, head.sequence],
        },
    )
    # A criterion may count the signed review as its evidence: its stored score moves now.
    scores_refresh_held(kind=HeldEvidence.REVIEW_SIGNOFF, organisation_id=pilot.organisation_id, pilot_id=pilot.pk)
    return signature


def _mentioned(pilot: Pilot, body: str, author_pk: int | None) -> list[User]:
    names = {name.rstrip(".").casefold() for name in MENTION.findall(body)}
    if not names:
        return []
    members = User.objects.filter(memberships__organisation_id=pilot.organisation_id).distinct()
    return [u for u in members if u.get_username().casefold() in names and u.pk != author_pk]


@transaction.atomic
def comment_add(
    *,
    response: Response,
    actor: Actor,
    body: str,
    parent: Comment | None = None,
    meeting: ReviewMeeting | None = None,
) -> Comment:
    """Comment on a criterion (any member who can read the pilot). ``@username`` mentions
    members of the organisation, who are mailed after commit. A reply joins the thread of
    the comment it answers."""
    pilot = response.assessment.pilot
    require_member(actor=actor, organisation=pilot.organisation_id)
    if actor.user_pk is None:
        raise ValidationError("Comments are written by people.")
    body = _prose(body, subject="The comment", field="body", required=True)
    if parent is not None:
        if parent.response_id != response.pk:
            raise ValidationError("A reply belongs to the same criterion as the comment it answers.")
        parent = parent.parent or parent
    if meeting is not None and meeting.pilot_id != pilot.pk:
        raise ValidationError("That meeting reviews another pilot.")
    comment = Comment.objects.create(
        response=response, pilot=pilot, meeting=meeting, parent=parent, author_id=actor.user_pk, body=body
    )
    mentioned = _mentioned(pilot, body, actor.user_pk)
    comment.mentioned.set(mentioned)
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="comment.added",
        object_type="comment",
        object_id=comment.pk,
        pilot_id=pilot.pk,
        changes={
            "criterion": [None, response.criterion.code],
            "body": [None, body],
            "parent": [None, parent.pk if parent else None],
            "meeting": [None, meeting.pk if meeting else None],
            "mentioned": [None, sorted(u.pk for u in mentioned)],
        },
    )
    if mentioned:
        transaction.on_commit(partial(notify.mention_send, comment.pk), robust=True)
    return comment


@transaction.atomic
def condition_raise(
    *,
    response: Response,
    actor: Actor,
    role: str,
    text: str,
    owner: User,
    due_date: dt.date,
    meeting: ReviewMeeting | None = None,
) -> Condition:
    """Raise a condition on a criterion for ``role`` (which the person must hold), with an
    owner (a member of the organisation) and a due date."""
    pilot = response.assessment.pilot
    roles = require_member(actor=actor, organisation=pilot.organisation_id)
    if actor.user_pk is None:
        raise ValidationError("Conditions are raised by people.")
    if role not in SIGNING_ROLES:
        raise ValidationError({"role": "Conditions are raised for delivery, security, risk or product."})
    require(role in roles, f"You do not hold the {Role(role).label} role here.")
    text = _prose(text, subject="The condition", field="text", required=True)
    if not Membership.objects.filter(organisation_id=pilot.organisation_id, user=owner).exists():
        raise ValidationError({"owner": "The owner must be a member of this organisation."})
    if meeting is not None and meeting.pilot_id != pilot.pk:
        raise ValidationError("That meeting reviews another pilot.")
    condition = Condition(
        pilot=pilot,
        response=response,
        meeting=meeting,
        text=text,
        raised_by_id=actor.user_pk,
        raised_role=role,
        owner=owner,
        due_date=due_date,
    )
    condition.full_clean()
    condition.save()
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="condition.raised",
        object_type="condition",
        object_id=condition.pk,
        pilot_id=pilot.pk,
        changes={"criterion": [None, response.criterion.code], **created_changes(condition, CONDITION_FIELDS)},
    )
    return condition


def _close_condition(condition: Condition, actor: Actor, *, status: str, resolution: str, action: str) -> Condition:
    locked = Condition.objects.select_for_update(of=("self",)).select_related(
        "pilot__organisation", "response__criterion"
    )
    condition = locked.get(pk=condition.pk)
    if condition.status != ConditionStatus.OPEN:
        raise ValidationError(f"This condition is already {condition.get_status_display().lower()}.")
    before = snapshot(condition, CONDITION_FIELDS)
    condition.status = status
    condition.resolution = resolution
    condition.resolved_by_id = actor.user_pk
    condition.resolved_at = timezone.now()
    condition.full_clean()
    condition.save(update_fields=["status", "resolution", "resolved_by", "resolved_at"])
    audit_record(
        organisation=condition.pilot.organisation,
        actor=actor,
        action=action,
        object_type="condition",
        object_id=condition.pk,
        pilot_id=condition.pilot_id,
        changes={
            "criterion": [condition.response.criterion.code, condition.response.criterion.code],
            **diff_fields(before=before, after=snapshot(condition, CONDITION_FIELDS)),
        },
    )
    return condition


@transaction.atomic
def condition_meet(*, condition: Condition, actor: Actor, note: str = "") -> Condition:
    """Mark a condition met: its owner, the role that raised it, or the pilot's owners."""
    pilot = condition.pilot
    roles = require_member(actor=actor, organisation=pilot.organisation_id)
    require(
        actor.user_pk == condition.owner_id
        or condition.raised_role in roles
        or can_edit_pilot(roles, actor=actor, pilot=pilot),
        "Only the condition's owner, the role that raised it and the pilot's owners mark it met.",
    )
    note = _prose(note, subject="The note", field="resolution")
    return _close_condition(condition, actor, status=ConditionStatus.MET, resolution=note, action="condition.met")


@transaction.atomic
def condition_waive(*, condition: Condition, actor: Actor, reason: str) -> Condition:
    """Waive a condition: only someone holding the role that raised it, and with a reason."""
    roles = require_member(actor=actor, organisation=condition.pilot.organisation_id)
    require(
        condition.raised_role in roles,
        f"Only {Role(condition.raised_role).label} raised this condition, so only they can waive it.",
    )
    reason = _prose(reason, subject="The reason", field="resolution", required=True)
    return _close_condition(
        condition, actor, status=ConditionStatus.WAIVED, resolution=reason, action="condition.waived"
    )
