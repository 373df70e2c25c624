"""Review pages: a pilot's reviews and gate, a meeting, meeting mode, comments, conditions.

Views stay thin: find the object the person may see (404 otherwise), parse the form,
call a service. A service's PermissionDenied is a 403; a ValidationError comes back
beside the form that sent it with 422, and nothing is saved.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assessments.audit.context import Actor
from assessments.organisations.context import request_organisations, request_roles
from assessments.organisations.models import REVIEWER_ROLES, Membership, Role
from assessments.organisations.permissions import can_edit_pilot
from assessments.pilots.markup import render_markdown
from assessments.pilots.models import AssessmentStatus, Pilot, Response
from assessments.pilots.selectors import Checklist, checklist
from assessments.reviews.forms import (
    CommentForm,
    ConditionCloseForm,
    ConditionForm,
    DecisionForm,
    MeetingForm,
    MinutesForm,
    meeting_initial,
)
from assessments.reviews.ics import meeting_ics
from assessments.reviews.models import (
    PARTICIPANT_ROLES,
    SIGNING_ROLES,
    Comment,
    Condition,
    ReviewMeeting,
)
from assessments.reviews.selectors import (
    Gate,
    agenda,
    conditions_of,
    meetings_of,
    overrides_of,
    readiness_gate,
    threads_of,
)
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
from readiness.http import HtmxHttpRequest, form_attach_errors

# --- finding what the person may see ------------------------------------------------------


def _org_ids(request: HtmxHttpRequest) -> list[int]:
    return [org.pk for org in request_organisations(request)]


def _pilot_for(request: HtmxHttpRequest, pk: int) -> Pilot:
    return get_object_or_404(
        Pilot.objects.select_related("organisation", "technical_owner", "business_owner"),
        pk=pk,
        organisation_id__in=_org_ids(request),
    )


def _meeting_for(request: HtmxHttpRequest, pk: int) -> ReviewMeeting:
    return get_object_or_404(
        ReviewMeeting.objects.select_related(
            "pilot__organisation", "pilot__technical_owner", "pilot__business_owner", "assessment", "organiser"
        ),
        pk=pk,
        pilot__organisation_id__in=_org_ids(request),
    )


def _response_for(request: HtmxHttpRequest, pk: int) -> Response:
    return get_object_or_404(
        Response.objects.select_related("assessment__pilot__organisation", "criterion__gap"),
        pk=pk,
        assessment__pilot__organisation_id__in=_org_ids(request),
    )


def _condition_for(request: HtmxHttpRequest, pk: int) -> Condition:
    return get_object_or_404(
        Condition.objects.select_related("pilot__organisation", "response__criterion"),
        pk=pk,
        pilot__organisation_id__in=_org_ids(request),
    )


def _members(pilot: Pilot) -> list[User]:
    return list(
        User.objects.filter(memberships__organisation_id=pilot.organisation_id)
        .distinct()
        .order_by("first_name", "username")
    )


def _people(pilot: Pilot) -> list[tuple[User, str]]:
    """Everyone who may sit in a meeting, once per role they could represent."""
    rows = (
        Membership.objects.filter(organisation_id=pilot.organisation_id, role__in=PARTICIPANT_ROLES)
        .select_related("user")
        .order_by("role", "user__first_name", "user__username")
    )
    order = {role: i for i, role in enumerate(PARTICIPANT_ROLES)}
    people = [(m.user, m.role) for m in rows]
    # The pilot's own owners may attend as its owners whatever their role here.
    held = {(u.pk, role) for u, role in people}
    for owner in (pilot.technical_owner, pilot.business_owner):
        if owner is not None and (owner.pk, Role.OWNER) not in held:
            people.append((owner, Role.OWNER))
            held.add((owner.pk, Role.OWNER))
    return sorted(people, key=lambda p: order[p[1]])


def _owners(pilot: Pilot) -> set[int]:
    return {pk for pk in (pilot.technical_owner_id, pilot.business_owner_id) if pk is not None}


def _can_organise(roles: set[str], request: HtmxHttpRequest, pilot: Pilot) -> bool:
    return can_edit_pilot(roles, actor=Actor.for_user(request.user), pilot=pilot) or bool(roles & REVIEWER_ROLES)


def _gate_for(pilot: Pilot) -> tuple[Gate, Checklist]:
    assessment = pilot.assessments.exclude(status=AssessmentStatus.SUPERSEDED).select_related("framework").first()
    if assessment is None:
        raise Http404("This pilot has no open assessment.")
    assessment.pilot = pilot
    data = checklist(assessment=assessment, today=timezone.localdate(), with_evidence=False)
    return readiness_gate(assessment=assessment, card=data.card, rows=data.rows), data


def _errors(exc: ValidationError) -> list[str]:
    return [str(m) for m in exc.messages]


# --- a pilot's reviews ----------------------------------------------------------------------


def _reviews_page(
    request: HtmxHttpRequest, pilot: Pilot, *, form: MeetingForm | None = None, status: int = 200, **extra: Any
) -> HttpResponse:
    roles = request_roles(request, pilot.organisation)
    gate, _data = _gate_for(pilot)
    people = _people(pilot)
    can_organise = _can_organise(roles, request, pilot)
    if form is None and can_organise:
        form = MeetingForm(people=people, initial=meeting_initial(people, _owners(pilot)))
    context = {
        "pilot": pilot,
        "gate": gate,
        "meetings": list(meetings_of(pilot=pilot)),
        "conditions": list(conditions_of(pilot=pilot)),
        "overrides": list(overrides_of(pilot=pilot)),
        "form": form,
        "can_organise": can_organise,
        "my_roles": roles,
        "today": timezone.localdate(),
        **extra,
    }
    return render(request, "reviews/pilot_reviews.html", context, status=status)


@require_GET
@login_required
def pilot_reviews(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The production gate with its reasons, what changed since signing, meetings and conditions."""
    return _reviews_page(request, _pilot_for(request, pk))


@require_GET
@login_required
def pilot_gate(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The gate panel of the pilot page, fetched again after an inline save."""
    pilot = _pilot_for(request, pk)
    gate, _data = _gate_for(pilot)
    context = {
        "pilot": pilot,
        "gate": gate,
        "next_meeting": gate.next_meeting,
        "overrides": list(overrides_of(pilot=pilot)),
    }
    return render(request, "reviews/_gate_panel.html", context)


@require_POST
@login_required
def meeting_new(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pilot = _pilot_for(request, pk)
    roles = request_roles(request, pilot.organisation)
    if not _can_organise(roles, request, pilot):
        raise PermissionDenied("Only the pilot's owners, administrators and reviewers schedule its reviews.")
    form = MeetingForm(request.POST, people=_people(pilot))
    if form.is_valid():
        try:
            meeting = meeting_schedule(
                pilot=pilot,
                actor=Actor.for_user(request.user),
                scheduled_at=form.cleaned_data["scheduled_at"],
                duration_minutes=form.cleaned_data["duration_minutes"],
                location=form.cleaned_data["location"],
                participants=form.chosen(),
            )
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            messages.success(request, "Review scheduled; the participants have been sent an invitation.")
            return redirect("meeting", pk=meeting.pk)
    return _reviews_page(request, pilot, form=form, status=422)


# --- one meeting -----------------------------------------------------------------------------


def _meeting_page(request: HtmxHttpRequest, meeting: ReviewMeeting, *, status: int = 200, **extra: Any) -> HttpResponse:
    pilot = meeting.pilot
    roles = request_roles(request, pilot.organisation)
    gate, data = _gate_for(pilot)
    people = _people(pilot)
    participants = list(meeting.participants.select_related("user"))
    decisions = list(meeting.decisions.select_related("signer").order_by("signed_at"))
    signed_by_me = {d.role for d in decisions if d.signer_id == request.user.pk}
    my_signing_roles = [r for r in SIGNING_ROLES if r in roles and r not in signed_by_me]
    can_organise = _can_organise(roles, request, pilot)
    edit_form = None
    if can_organise and meeting.status in {"scheduled", "in_progress"}:
        edit_form = extra.pop("edit_form", None) or MeetingForm(
            people=people,
            initial={
                "scheduled_at": timezone.localtime(meeting.scheduled_at),
                "duration_minutes": meeting.duration_minutes,
                "location": meeting.location,
                "participants": [f"{p.user_id}:{p.role}" for p in participants],
            },
        )
    decision_form = extra.pop("decision_form", None) or DecisionForm(
        initial={"role": my_signing_roles[0] if my_signing_roles else ""}
    )
    decision_form.roles_limit(my_signing_roles)
    context = {
        "meeting": meeting,
        "pilot": pilot,
        "gate": gate,
        "participants": participants,
        "decisions": decisions,
        "decision_form": decision_form,
        "my_signing_roles": my_signing_roles,
        "owns_pilot": request.user.pk in _owners(pilot),
        "can_organise": can_organise,
        "edit_form": edit_form,
        "minutes_form": extra.pop("minutes_form", None) or MinutesForm(initial={"minutes": meeting.minutes}),
        "minutes_html": render_markdown(meeting.minutes) if meeting.minutes else "",
        "agenda_size": len(agenda(data.rows)),
        "conditions": [c for c in conditions_of(pilot=pilot) if c.meeting_id == meeting.pk],
        **extra,
    }
    return render(request, "reviews/meeting.html", context, status=status)


@require_GET
@login_required
def meeting_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _meeting_page(request, _meeting_for(request, pk))


@require_POST
@login_required
def meeting_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Change time, place and people (``participants`` posted), or the minutes (``minutes`` posted)."""
    meeting = _meeting_for(request, pk)
    pilot = meeting.pilot
    if not _can_organise(request_roles(request, pilot.organisation), request, pilot):
        raise PermissionDenied("Only the pilot's owners, administrators and reviewers change its reviews.")
    actor = Actor.for_user(request.user)
    if "minutes" in request.POST:
        minutes_form = MinutesForm(request.POST)
        if minutes_form.is_valid():
            try:
                meeting_update(meeting=meeting, actor=actor, minutes=minutes_form.cleaned_data["minutes"])
            except ValidationError as exc:
                form_attach_errors(minutes_form, exc)
            else:
                messages.success(request, "Minutes saved.")
                return redirect(reverse("meeting", args=[meeting.pk]) + "#minutes")
        return _meeting_page(request, meeting, status=422, minutes_form=minutes_form)
    form = MeetingForm(request.POST, people=_people(pilot))
    if form.is_valid():
        try:
            meeting_update(
                meeting=meeting,
                actor=actor,
                scheduled_at=form.cleaned_data["scheduled_at"],
                duration_minutes=form.cleaned_data["duration_minutes"],
                location=form.cleaned_data["location"],
                participants=form.chosen(),
            )
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            messages.success(request, "Meeting updated; the participants have been sent the change.")
            return redirect("meeting", pk=meeting.pk)
    return _meeting_page(request, meeting, status=422, edit_form=form)


STATUS_ACTIONS = {"start": meeting_start, "close": meeting_close, "cancel": meeting_cancel}
STATUS_WORDS = {"start": "started", "close": "closed", "cancel": "cancelled"}


@require_POST
@login_required
def meeting_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    meeting = _meeting_for(request, pk)
    action = request.POST.get("action", "")
    if action not in STATUS_ACTIONS:
        return HttpResponse("Start, close or cancel.", status=422)
    try:
        STATUS_ACTIONS[action](meeting=meeting, actor=Actor.for_user(request.user))
    except ValidationError as exc:
        return _meeting_page(request, meeting, status=422, status_error=" ".join(_errors(exc)))
    messages.success(request, f"Meeting {STATUS_WORDS[action]}.")
    if action == "start":
        return redirect("meeting-present", pk=meeting.pk)
    return redirect("meeting", pk=meeting.pk)


@require_GET
@login_required
def meeting_ics_download(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    meeting = _meeting_for(request, pk)
    method = "CANCEL" if meeting.status == "cancelled" else "REQUEST"
    answer = HttpResponse(meeting_ics(meeting, method=method), content_type="text/calendar; charset=utf-8")
    answer["Content-Disposition"] = f'attachment; filename="review-{meeting.pilot.slug}-{meeting.pk}.ics"'
    return answer


@require_POST
@login_required
def meeting_decide(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Record and sign one role's decision."""
    meeting = _meeting_for(request, pk)
    form = DecisionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            decision_record(
                meeting=meeting,
                actor=Actor.for_user(request.user),
                role=data["role"],
                decision=data["decision"],
                comment=data["comment"],
                must_change=data["must_change"],
            )
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            messages.success(request, f"Signed for {Role(data['role']).label}.")
            return redirect(reverse("meeting", args=[meeting.pk]) + "#decisions")
    elif "role" in form.errors and request.POST.get("role") not in SIGNING_ROLES:
        raise PermissionDenied("Only delivery, security, risk and product sign a review.")
    return _meeting_page(request, meeting, status=422, decision_form=form)


# --- meeting mode ---------------------------------------------------------------------------


@require_GET
@login_required
def meeting_present(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Meeting mode: one agenda item at a time, large, with its evidence, checks, comments and
    conditions; ``?item=N`` (1-based). htmx swaps only the stage."""
    meeting = _meeting_for(request, pk)
    pilot = meeting.pilot
    roles = request_roles(request, pilot.organisation)
    assessment = meeting.assessment
    assessment.pilot = pilot
    data = checklist(assessment=assessment, today=timezone.localdate())
    items = agenda(data.rows)
    try:
        number = max(1, min(int(request.GET.get("item", "1")), max(len(items), 1)))
    except ValueError:
        number = 1
    item = items[number - 1] if items else None
    threads = threads_of(response_ids=[item.row.response.pk]) if item else {}
    conditions = list(conditions_of(pilot=pilot).filter(response_id=item.row.response.pk)) if item else []
    context = {
        "meeting": meeting,
        "pilot": pilot,
        "items": items,
        "item": item,
        "number": number,
        "total": len(items),
        "threads": threads.get(item.row.response.pk, []) if item else [],
        "conditions": conditions,
        "comment_form": CommentForm(initial={"meeting": meeting.pk}),
        "condition_form": _condition_form(pilot, roles, meeting=meeting) if item else None,
        "can_raise": bool(roles & set(SIGNING_ROLES)),
        "card": data.card,
    }
    if request.htmx and request.htmx.target == "stage":
        return render(request, "reviews/present.html#stage", context)
    return render(request, "reviews/present.html", context)


def _condition_form(
    pilot: Pilot, roles: set[str], *, meeting: ReviewMeeting | None = None, data: Any = None
) -> ConditionForm:
    form = ConditionForm(
        data,
        members=_members(pilot),
        initial={
            "role": next((r for r in SIGNING_ROLES if r in roles), ""),
            "owner": pilot.technical_owner_id,
            "due_date": timezone.localdate() + dt.timedelta(days=14),
            "meeting": meeting.pk if meeting else None,
        },
    )
    form.roles_limit([r for r in SIGNING_ROLES if r in roles])
    return form


# --- comments and conditions on a criterion ----------------------------------------------


def _thread_render(request: HtmxHttpRequest, response: Response, *, status: int = 200, **extra: Any) -> HttpResponse:
    pilot = response.assessment.pilot
    roles = request_roles(request, pilot.organisation)
    context = {
        "response": response,
        "threads": threads_of(response_ids=[response.pk]).get(response.pk, []),
        "conditions": list(conditions_of(pilot=pilot).filter(response=response)),
        "comment_form": extra.pop("comment_form", None) or CommentForm(initial={"meeting": request.GET.get("meeting")}),
        "condition_form": extra.pop("condition_form", None) or _condition_form(pilot, roles),
        "can_raise": bool(roles & set(SIGNING_ROLES)),
        "meeting_id": request.POST.get("meeting") or request.GET.get("meeting") or "",
        **extra,
    }
    return render(request, "reviews/_thread.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def response_comments(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: a criterion's comment threads and conditions (a fragment, or the pilot page at it).
    POST: add a comment or a reply."""
    response = _response_for(request, pk)
    pilot = response.assessment.pilot
    if request.method == "GET":
        if not request.htmx:
            return redirect(f"{reverse('pilot', args=[pilot.pk])}?view=full#row-{response.pk}")
        return _thread_render(request, response)
    form = CommentForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        parent = Comment.objects.filter(pk=data["parent"], response=response).first() if data["parent"] else None
        meeting = ReviewMeeting.objects.filter(pk=data["meeting"], pilot=pilot).first() if data["meeting"] else None
        try:
            comment_add(
                response=response, actor=Actor.for_user(request.user), body=data["body"], parent=parent, meeting=meeting
            )
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            if not request.htmx:
                messages.success(request, "Comment added.")
                return redirect(f"{reverse('pilot', args=[pilot.pk])}?view=full#row-{response.pk}")
            return _thread_render(request, response, saved="comment")
    return _thread_render(request, response, status=422, comment_form=form)


@require_POST
@login_required
def condition_new(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    response = _response_for(request, pk)
    pilot = response.assessment.pilot
    roles = request_roles(request, pilot.organisation)
    if not roles & set(SIGNING_ROLES):
        raise PermissionDenied("Only delivery, security, risk and product raise conditions.")
    form = _condition_form(pilot, roles, data=request.POST)
    if form.is_valid():
        data = form.cleaned_data
        meeting = ReviewMeeting.objects.filter(pk=data["meeting"], pilot=pilot).first() if data["meeting"] else None
        try:
            condition_raise(
                response=response,
                actor=Actor.for_user(request.user),
                role=data["role"],
                text=data["text"],
                owner=form.members[data["owner"]],
                due_date=data["due_date"],
                meeting=meeting,
            )
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            if not request.htmx:
                messages.success(request, "Condition raised.")
                return redirect(reverse("pilot-reviews", args=[pilot.pk]) + "#conditions")
            return _thread_render(request, response, saved="condition")
    elif "role" in form.errors and request.POST.get("role") in SIGNING_ROLES:
        raise PermissionDenied("You do not hold that role here.")
    return _thread_render(request, response, status=422, condition_form=form)


@require_POST
@login_required
def condition_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    condition = _condition_for(request, pk)
    form = ConditionCloseForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Mark met or waive.", status=422)
    actor = Actor.for_user(request.user)
    try:
        if form.cleaned_data["action"] == "waive":
            condition_waive(condition=condition, actor=actor, reason=form.cleaned_data["resolution"])
        else:
            condition_meet(condition=condition, actor=actor, note=form.cleaned_data["resolution"])
    except ValidationError as exc:
        return _reviews_page(
            request, condition.pilot, status=422, condition_errors={condition.pk: " ".join(_errors(exc))}
        )
    word = "waived" if form.cleaned_data["action"] == "waive" else "marked met"
    messages.success(request, f"Condition {word}.")
    return redirect(reverse("pilot-reviews", args=[condition.pilot_id]) + f"#condition-{condition.pk}")
