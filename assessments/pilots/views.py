"""Pilot pages: the portfolio, the pilot page with its inline checklist, evidence.

Views stay thin: parse input with a form, call a selector or a service, render.
A service's PermissionDenied becomes a 403, a ValidationError a 422 with the
message next to the field, a ResponseConflictError a 409 showing the other change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assessments.audit.context import Actor
from assessments.audit.selectors import activity_for_pilot, audit_head_sequence, integrity_badge
from assessments.evidence.charts import cost_chart_svg
from assessments.evidence.selectors import cost_trend, regressions_recent
from assessments.frameworks.charts import mini_bars_svg, radar_svg, score_band
from assessments.frameworks.models import GapKey
from assessments.frameworks.scoring import GapScore, Scorecard
from assessments.frameworks.selectors import framework_current, framework_diff
from assessments.organisations.context import (
    current_organisation,
    organisation_choose,
    request_organisations,
    request_roles,
)
from assessments.organisations.models import Organisation
from assessments.organisations.permissions import (
    can_create_pilot,
    can_edit_pilot,
    can_edit_response,
    roles_of,
)
from assessments.organisations.selectors import organisations_for_user
from assessments.pilots.export import checklist_csv, checklist_xlsx
from assessments.pilots.forms import (
    EvidenceForm,
    PilotForm,
    PortfolioFilterForm,
    ResponseForm,
    StageForm,
    StopConditionForm,
)
from assessments.pilots.models import (
    Assessment,
    Evidence,
    EvidenceKind,
    Pilot,
    Response,
    ResponseStatus,
    StopCondition,
    StopConditionStatus,
)
from assessments.pilots.selectors import (
    Checklist,
    ChecklistFilters,
    ChecklistRow,
    assessment_move_preview,
    assessment_open,
    assessment_open_of_pilot,
    checklist,
    checklist_filter,
    checklist_row,
    portfolio,
    portfolio_entries,
)
from assessments.pilots.services import (
    CLOSED_STATUSES,
    AssessmentClosedError,
    ResponseConflictError,
    assessment_move,
    evidence_add,
    pilot_create,
    pilot_update,
    response_update,
    stop_condition_add,
    stop_condition_update,
)
from assessments.pilots.uploads import upload_check
from assessments.reviews.selectors import overrides_of, portfolio_gates, readiness_gate
from assessments.text import filename_safe
from readiness.http import HtmxHttpRequest, form_attach_errors
from readiness.pagecache import page_key, part_render, parts_cached

PAGE_SIZE = 25
# Sent with every inline save: the production gate panel listens for it and reloads itself, so
# the save stays one pass and the gate (signatures, fingerprint) is read in its own request.
SAVED_EVENT = "preflight-saved"


def _members(organisation: Organisation) -> list[User]:
    return list(
        User.objects.filter(memberships__organisation=organisation).distinct().order_by("first_name", "username")
    )


def _pilot_for(request: HtmxHttpRequest, pk: int) -> Pilot:
    """A pilot of one of the user's organisations, or 404 (never reveal another organisation's data)."""
    return get_object_or_404(
        Pilot.objects.select_related("organisation", "business_owner", "technical_owner"),
        pk=pk,
        organisation_id__in=[org.pk for org in request_organisations(request)],
    )


def _pilot_for_edit(request: HtmxHttpRequest, pk: int) -> Pilot:
    """A pilot this person may edit (profile, stage, stop conditions, framework): 404 or 403 otherwise.

    Checked on GET too, so nobody is shown a form that would then be refused.
    """
    pilot = _pilot_for(request, pk)
    roles = roles_of(user=request.user, organisation=pilot.organisation)
    if not can_edit_pilot(roles, actor=Actor.for_user(request.user), pilot=pilot):
        raise PermissionDenied(f"Only the owners of {pilot.name} and administrators change it.")
    return pilot


def _response_for(request: HtmxHttpRequest, pk: int) -> Response:
    return get_object_or_404(
        Response.objects.select_related("assessment__pilot__organisation", "criterion__gap", "owner", "updated_by"),
        pk=pk,
        assessment__pilot__organisation__in=organisations_for_user(user=request.user),
    )


@require_GET
@login_required
def home(request: HtmxHttpRequest) -> HttpResponse:
    """The portfolio dashboard of the current organisation."""
    organisation = current_organisation(request)
    roles = request_roles(request, organisation)
    # The hourly ageing job rescores without an audited write: between it and a new day the
    # stored parts are at most PART_SECONDS behind it (its own lag is an hour).
    key = page_key(
        "portfolio",
        (
            organisation.pk,
            audit_head_sequence(organisation=organisation),
            timezone.localdate().isoformat(),
            request.user.pk,
            ",".join(sorted(roles)),
            urlencode(sorted(request.GET.lists()), doseq=True),
        ),
    )
    top, results = parts_cached(request, key, lambda: _portfolio_parts(request, organisation, roles))
    if request.htmx:
        return HttpResponse(results)
    return render(
        request, "pilots/dashboard.html", {"organisation": organisation, "top_html": top, "results_html": results}
    )


def _portfolio_parts(request: HtmxHttpRequest, organisation: Organisation, roles: set[str]) -> tuple[str, str]:
    """The dashboard's heading with its filters, and the page of results, rendered for storage."""
    owners = _members(organisation)
    form = PortfolioFilterForm(request.GET or None, owners=owners)
    filters = form.filters()
    paginator = Paginator(portfolio(organisation=organisation, filters=filters), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    entries = portfolio_entries(list(page.object_list))
    # The readiness gate (criteria, checks, the four signatures, overdue conditions) per pilot shown.
    gates = portfolio_gates(
        pilots=[(e.pilot.pk, getattr(e.pilot, "s_assessment", 0) or 0, e.is_ready) for e in entries],
        owners={
            e.pilot.pk: {pk for pk in (e.pilot.technical_owner_id, e.pilot.business_owner_id) if pk} for e in entries
        },
        today=timezone.localdate(),
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "organisation": organisation,
        "form": form,
        "page": page,
        "entries": [(entry, mini_bars_svg(entry.gaps), gates.get(entry.pilot.pk)) for entry in entries],
        "query": query.urlencode(),
        "can_create": can_create_pilot(roles),
        "regressions": regressions_recent(organisation_id=organisation.pk),
    }
    return (part_render("pilots/dashboard.html#top", context), part_render("pilots/dashboard.html#results", context))


@require_POST
@login_required
def organisation_switch(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    organisation = organisation_choose(request, slug)
    next_url = request.POST.get("next", "")
    messages.success(request, f"You are now looking at {organisation.name}.")
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect("home")


@require_http_methods(["GET", "POST"])
@login_required
def pilot_new(request: HtmxHttpRequest) -> HttpResponse:
    organisation = current_organisation(request)
    if not can_create_pilot(roles_of(user=request.user, organisation=organisation)):
        raise PermissionDenied("Only pilot owners and administrators create pilots.")
    members = _members(organisation)
    form = PilotForm(request.POST or None, members=members, initial={"technical_owner": request.user.pk})
    if request.method == "POST" and form.is_valid():
        try:
            pilot = pilot_create(organisation=organisation, actor=Actor.for_user(request.user), **form.cleaned_data)
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            messages.success(request, f"Created {pilot.name}; its assessment is open.")
            return redirect("pilot", pk=pilot.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "pilots/pilot_form.html", {"form": form, "creating": True}, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def pilot_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pilot = _pilot_for_edit(request, pk)
    form = PilotForm(
        request.POST or None, instance=Pilot.objects.get(pk=pilot.pk), members=_members(pilot.organisation)
    )
    if request.method == "POST" and form.is_valid():
        try:
            pilot_update(pilot=pilot, actor=Actor.for_user(request.user), **form.cleaned_data)
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            messages.success(request, "Pilot profile saved.")
            return redirect("pilot", pk=pilot.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "pilots/pilot_form.html", {"form": form, "pilot": pilot, "creating": False}, status=status)


@require_POST
@login_required
def pilot_stage(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pilot = _pilot_for_edit(request, pk)
    form = StageForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Unknown stage.", status=422)
    try:
        pilot_update(
            pilot=pilot,
            actor=Actor.for_user(request.user),
            stage=form.cleaned_data["stage"],
            override_justification=request.POST.get("override_justification", ""),
        )
    except ValidationError as exc:
        # The gate said no (its reasons are in the message and on the page's gate panel).
        messages.error(request, " ".join(exc.messages))
        return redirect(reverse("pilot", args=[pilot.pk]) + "#gate")
    messages.success(request, f"{pilot.name} is now {pilot.get_stage_display().lower()}.")
    return redirect("pilot", pk=pilot.pk)


@require_POST
@login_required
def stop_condition_new(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pilot = _pilot_for_edit(request, pk)
    form = StopConditionForm(request.POST)
    if form.is_valid():
        try:
            stop_condition_add(pilot=pilot, actor=Actor.for_user(request.user), **form.cleaned_data)
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            messages.success(request, "Stop condition added.")
            return redirect("pilot", pk=pilot.pk)
    # The page again, with the form as typed and its errors beside the fields; nothing saved.
    return _pilot_page(request, pilot, status=422, stop_form=form)


@require_POST
@login_required
def stop_condition_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    stop = get_object_or_404(
        StopCondition.objects.select_related("pilot__organisation"),
        pk=pk,
        pilot__organisation__in=organisations_for_user(user=request.user),
    )
    _pilot_for_edit(request, stop.pilot_id)
    status = request.POST.get("status", "")
    if status not in StopConditionStatus.values:
        return HttpResponse("Unknown stop-condition status.", status=422)
    stop_condition_update(stop=stop, actor=Actor.for_user(request.user), status=status)
    messages.success(request, f"Stop condition marked {stop.get_status_display().lower()}.")
    return redirect("pilot", pk=stop.pilot_id)


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a pilot, worked out once per request."""

    actor: Actor
    roles: set[str]
    owns_pilot: bool

    @classmethod
    def of(cls, request: HtmxHttpRequest, pilot: Pilot) -> Viewer:
        roles = request_roles(request, pilot.organisation)
        user_pk = request.user.pk
        return cls(
            actor=Actor.for_user(request.user),
            roles=roles,
            owns_pilot=user_pk in {pilot.technical_owner_id, pilot.business_owner_id},
        )

    def can_edit(self, pilot: Pilot, row: ChecklistRow) -> bool:
        if row.response.assessment.status in CLOSED_STATUSES:
            return False
        return can_edit_response(self.roles, actor=self.actor, pilot=pilot, response_owner_id=row.response.owner_id)


def _gap_band(gap: GapScore) -> str:
    # A gap with an open blocker is flagged whatever its score: the verdict depends on it.
    return "low" if gap.blocking_open else score_band(gap.score)


def _scores_context(card: Scorecard) -> dict[str, Any]:
    return {
        "card": card,
        "radar": radar_svg(card.gaps),
        "overall_band": score_band(card.overall),
        "gap_cards": [(gap, _gap_band(gap)) for gap in card.gaps],
    }


def _row_context(pilot: Pilot, members: list[User]) -> dict[str, Any]:
    """What a row (line or expanded editor) needs besides the row itself."""
    return {
        "pilot": pilot,
        "members": members,
        "status_choices": ResponseStatus.choices,
        "today": timezone.localdate(),
        "upload_limit": settings.FILE_UPLOAD_MAX_BYTES,
        "evidence_form": EvidenceForm(),
    }


def _page_context(
    request: HtmxHttpRequest, pilot: Pilot, data: Checklist, viewer: Viewer, **extra: Any
) -> dict[str, Any]:
    filters = ChecklistFilters.from_query(request.GET)
    full = request.GET.get("view") == "full"
    rows = checklist_filter(data.rows, filters=filters, user_pk=request.user.pk, owns_pilot=viewer.owns_pilot)
    gaps = {gap.key: gap for gap in data.card.gaps}
    groups: dict[str, tuple[GapScore, str, list[tuple[ChecklistRow, bool]]]] = {}
    for row in rows:
        gap = gaps[row.gap_key]
        groups.setdefault(row.gap_key, (gap, _gap_band(gap), []))[2].append((row, viewer.can_edit(pilot, row)))
    query = filters.query()
    return {
        # Only the full cards draw editors with an owner list; the compact lines need no members.
        **_row_context(pilot, _members(pilot.organisation) if full else []),
        **_scores_context(data.card),
        "assessment": data.assessment,
        "groups": list(groups.values()),
        "shown": len(rows),
        "total": len(data.rows),
        "open_count": sum(1 for row in rows if row.is_open),
        "filters": filters,
        "full_view": full,
        "filter_query": urlencode(query),
        "full_query": urlencode({**query, "view": "full"}),
        "gap_choices": GapKey.choices,
        **extra,
    }


@require_GET
@login_required
def pilot_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    organisations = {org.pk: org for org in request_organisations(request)}
    assessment = assessment_open_of_pilot(pilot_id=pk, organisation_ids=list(organisations))
    if assessment is None:
        return _pilot_page(request, _pilot_for(request, pk))  # a 404 either way, saying which
    pilot = assessment.pilot
    pilot.organisation = organisations[pilot.organisation_id]  # already read with the memberships
    return _pilot_page(request, pilot, assessment=assessment)


def _page_key(
    assessment: Assessment, head_sequence: int, viewer: Viewer, filters: ChecklistFilters, user_pk: int | None
) -> str | None:
    """Everything the stored parts of a pilot page show depends on: the organisation's data
    (every audited write moves the audit-chain head), the cached scores (the hourly ageing
    job rescores without an audit event), the day (freshness), who is looking (edit rights,
    "mine") and the filters."""
    score = getattr(assessment, "score", None)
    if score is None:
        return None
    return page_key(
        "pilot",
        (
            assessment.pk,
            head_sequence,
            score.updated_at.timestamp(),
            timezone.localdate().isoformat(),
            user_pk,
            ",".join(sorted(viewer.roles)),
            viewer.owns_pilot,
            urlencode(filters.query()),
        ),
    )


def _cost_context(pilot: Pilot) -> dict[str, Any]:
    """The measured cost gap: the newest usage export's cost per task by day against the envelope."""
    trend = cost_trend(pilot=pilot)
    if trend is None:
        return {"cost": None}
    return {"cost": trend, "cost_chart": cost_chart_svg(trend.series, envelope=trend.envelope)}


def _gate_context(pilot: Pilot, assessment: Assessment, data: Checklist) -> dict[str, Any]:
    """The production gate panel: verdict and reasons, the four roles, overrides, the next review."""
    gate = readiness_gate(assessment=assessment, card=data.card, rows=data.rows)
    return {"gate": gate, "next_meeting": gate.next_meeting, "overrides": list(overrides_of(pilot=pilot))}


def _pilot_parts(
    request: HtmxHttpRequest, pilot: Pilot, assessment: Assessment, viewer: Viewer, extra: dict[str, Any]
) -> tuple[str, str, str, str]:
    """The pilot page's head, scores, checklist and activity, rendered for storage."""
    full = request.GET.get("view") == "full"
    # The compact lines need only each evidence item's dates; the full cards show the items.
    data = checklist(assessment=assessment, today=timezone.localdate(), with_evidence=full)
    current = framework_current(organisation=pilot.organisation)
    context = {
        **_page_context(request, pilot, data, viewer),
        **_gate_context(pilot, assessment, data),
        "viewer_roles": viewer.roles,
        "can_edit_pilot": can_edit_pilot(viewer.roles, actor=viewer.actor, pilot=pilot),
        "stop_conditions": list(pilot.stop_conditions.all()),
        "stop_statuses": StopConditionStatus.choices,
        "stop_form": StopConditionForm(),
        "stage_form": StageForm(initial={"stage": pilot.stage}),
        "newer_framework": current if current.pk != assessment.framework_id else None,
        "activity": activity_for_pilot(pilot_id=pilot.pk, limit=20),
        **_cost_context(pilot),
        **extra,
    }
    return (
        part_render("pilots/pilot_detail.html#head", context),
        part_render("pilots/_scores.html", context),
        part_render("pilots/pilot_detail.html#checklist", context),
        part_render("pilots/pilot_detail.html#activity", context),
    )


def _pilot_page(
    request: HtmxHttpRequest,
    pilot: Pilot,
    *,
    assessment: Assessment | None = None,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    if assessment is None:
        assessment = assessment_open(pilot=pilot)
    if assessment is None:
        raise Http404("This pilot has no open assessment.")
    viewer = Viewer.of(request, pilot)
    filters = ChecklistFilters.from_query(request.GET)
    badge = integrity_badge(organisation=pilot.organisation)
    # The full cards (for printing) are rare and forms with errors are one-offs: only the
    # compact page, as anyone sees it on arrival or after a filter, is kept.
    full = request.GET.get("view") == "full"
    key = None if full or extra else _page_key(assessment, badge.head_sequence, viewer, filters, request.user.pk)
    head, scores, checklist_html, activity = parts_cached(
        request, key, lambda: _pilot_parts(request, pilot, assessment, viewer, extra)
    )
    if request.htmx and request.htmx.target == "checklist":
        return HttpResponse(checklist_html, status=status)
    context = {
        "pilot": pilot,
        "head_html": head,
        "scores_html": scores,
        "checklist_html": checklist_html,
        "activity_html": activity,
        "badge": badge,
    }
    return render(request, "pilots/pilot_detail.html", context, status=status)


def _row_render(
    request: HtmxHttpRequest,
    row: ChecklistRow,
    *,
    editable: bool,
    expanded: bool,
    members: list[User] | None = None,
    card: Scorecard | None = None,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    """One checklist row, as a line or as its open editor; with ``card``, the scores it moved, out of band."""
    pilot = row.response.assessment.pilot
    if members is None:
        members = _members(pilot.organisation) if expanded and editable else []
    gap = next((g for g in card.gaps if g.key == row.gap_key), None) if card is not None else None
    context = {
        **_row_context(pilot, members),
        "row": row,
        "row_gap": gap,
        "row_gap_band": _gap_band(gap) if gap else "na",
        "editable": editable,
        "expanded": expanded,
        **(_scores_context(card) | {"oob": True} if card is not None else {}),
        **extra,
    }
    return render(request, "pilots/_row_update.html", context, status=status)


def _row_response(request: HtmxHttpRequest, response: Response, *, status: int = 200, **extra: Any) -> HttpResponse:
    """A row read afresh (after a refusal or a conflict): its open editor and the current scores."""
    pilot = response.assessment.pilot
    data = checklist(assessment=response.assessment, today=timezone.localdate(), response_ids=[response.pk])
    row = data.rows[0]
    viewer = Viewer.of(request, pilot)
    return _row_render(
        request, row, editable=viewer.can_edit(pilot, row), expanded=True, card=data.card, status=status, **extra
    )


def _closed(request: HtmxHttpRequest, response: Response, exc: AssessmentClosedError) -> HttpResponse:
    """A change aimed at a closed assessment: 409, the row shown read-only with the reason."""
    if not request.htmx:
        messages.error(request, " ".join(exc.messages))
        return redirect("pilot", pk=response.assessment.pilot_id)
    return _row_response(request, response, status=409, closed={"response": response.pk, "message": exc.messages[0]})


@require_GET
@login_required
def response_row(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One criterion: ``?expanded=1`` opens its editor in place, otherwise its one-line summary."""
    response = _response_for(request, pk)
    expanded = request.GET.get("expanded") == "1"
    pilot = response.assessment.pilot
    if not request.htmx:
        # Without htmx the line's link lands on the pilot page at this criterion, opened.
        return redirect(f"{reverse('pilot', args=[pilot.pk])}?view=full#row-{response.pk}")
    data = checklist(
        assessment=response.assessment, today=timezone.localdate(), response_ids=[response.pk], with_evidence=expanded
    )
    row = data.rows[0]
    return _row_render(request, row, editable=Viewer.of(request, pilot).can_edit(pilot, row), expanded=expanded)


@require_POST
@login_required
def response_save(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Save what was posted (the line's status alone, or the whole editor) in one pass:
    the service computes the scores once and the fragment is rendered from its result."""
    response = _response_for(request, pk)
    if response.assessment.status in CLOSED_STATUSES:
        return _closed(request, response, AssessmentClosedError(response.assessment))
    prefix = f"r{response.pk}"
    expanded = request.POST.get(f"{prefix}-mode") != "line"
    # The line posts its status alone: no owner to check and no owner list to draw.
    members = _members(response.assessment.pilot.organisation) if expanded or f"{prefix}-owner" in request.POST else []
    form = ResponseForm(request.POST, members=members, prefix=prefix)
    if not form.is_valid():
        return _row_response(request, response, status=422, row_errors={response.pk: form.errors})
    # Only the fields that were posted change: the line posts its status alone.
    data = {name: value for name, value in form.cleaned_data.items() if f"{prefix}-{name}" in request.POST}
    version = data.pop("version")
    if "owner" in data:
        owner_id = data.pop("owner")
        data["owner"] = next((m for m in members if m.pk == owner_id), None)
    try:
        result = response_update(
            response=response, actor=Actor.for_user(request.user), expected_version=version, **data
        )
    except AssessmentClosedError as exc:
        return _closed(request, response, exc)
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        return _row_response(request, response, status=422, row_errors={response.pk: errors})
    except ResponseConflictError as exc:
        return _row_response(
            request, exc.current, status=409, conflict={"response": exc.current.pk, "message": str(exc), "mine": data}
        )
    if not request.htmx:
        return redirect("pilot", pk=response.assessment.pilot_id)
    row = checklist_row(response=result.response, card=result.card, today=timezone.localdate(), checks=result.checks)
    answer = _row_render(
        request,
        row,
        editable=result.still_editable,
        expanded=expanded,
        members=members,
        card=result.card,
        saved=response.pk,
    )
    answer["HX-Trigger"] = SAVED_EVENT  # the gate panel asks for itself again
    return answer


@require_http_methods(["GET", "POST"])
@login_required
def evidence_new(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: the add-evidence form (loaded into the row on demand, or as a page). POST: add it."""
    response = _response_for(request, pk)
    if response.assessment.status in CLOSED_STATUSES:
        return _closed(request, response, AssessmentClosedError(response.assessment))
    if request.method == "GET":
        pilot = response.assessment.pilot
        roles = roles_of(user=request.user, organisation=pilot.organisation)
        if not can_edit_response(
            roles, actor=Actor.for_user(request.user), pilot=pilot, response_owner_id=response.owner_id
        ):
            raise PermissionDenied("Only the pilot's owners and the criterion's owner add evidence.")
        context = {
            "response": response,
            "today": timezone.localdate(),
            "upload_limit": settings.FILE_UPLOAD_MAX_BYTES,
            "evidence_form": EvidenceForm(),
        }
        template = "pilots/_evidence_form.html" if request.htmx else "pilots/evidence_new.html"
        return render(request, template, context)
    form = EvidenceForm(request.POST, request.FILES)
    errors: dict[str, list[str]] = {}
    if form.is_valid():
        data = form.cleaned_data
        upload = None
        try:
            if data["kind"] == EvidenceKind.FILE:
                upload = upload_check(data["file"])
            evidence_add(
                response=response,
                actor=Actor.for_user(request.user),
                kind=data["kind"],
                title=data["title"],
                url=data.get("url") or "",
                note=data.get("note") or "",
                effective_date=data["effective_date"],
                expires_on=data.get("expires_on"),
                upload=upload,
            )
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"file": exc.messages}
    else:
        errors = {k: [str(e) for e in v] for k, v in form.errors.items()}
    if not request.htmx:
        if errors:
            messages.error(request, "Evidence not added: " + "; ".join(" ".join(v) for v in errors.values()))
        else:
            messages.success(request, "Evidence added.")
        return redirect("pilot", pk=response.assessment.pilot_id)
    if errors:
        # The form comes back as typed (a file cannot be kept: browsers never refill file inputs).
        return _row_response(
            request,
            response,
            status=422,
            evidence_errors={response.pk: errors},
            open_evidence=response.pk,
            evidence_form=form,
        )
    answer = _row_response(request, response, saved=response.pk)
    answer["HX-Trigger"] = SAVED_EVENT
    return answer


@require_GET
@login_required
def evidence_download(request: HtmxHttpRequest, pk: int) -> FileResponse:
    """Serve an uploaded file to members of its organisation only, always as a download."""
    evidence = get_object_or_404(
        Evidence.objects.select_related("response__assessment__pilot"),
        pk=pk,
        kind=EvidenceKind.FILE,
        response__assessment__pilot__organisation__in=organisations_for_user(user=request.user),
    )
    try:
        handle = evidence.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The stored file is missing; the audit verification will report it.") from exc
    result = FileResponse(
        handle,
        as_attachment=True,
        # Cleaned again on the way out: names stored before the rule may still hold path parts.
        filename=filename_safe(evidence.original_filename, fallback="evidence"),
        content_type=evidence.content_type,
    )
    result["X-Content-Type-Options"] = "nosniff"
    result["Content-Security-Policy"] = "default-src 'none'; sandbox"
    patch_cache_control(result, private=True, no_store=True)  # no shared or browser cache keeps it
    return result


@require_http_methods(["GET", "POST"])
@login_required
def assessment_move_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Show what moving to the newest published framework would do to each answer; move on confirmation."""
    pilot = _pilot_for_edit(request, pk)
    assessment = assessment_open(pilot=pilot)
    if assessment is None:
        raise Http404("This pilot has no open assessment.")
    target = framework_current(organisation=pilot.organisation)
    diff = framework_diff(old=assessment.framework, new=target)
    context = {
        "pilot": pilot,
        "assessment": assessment,
        "target": target,
        "diff": diff,
        "diff_from": assessment.framework,
        "preview": assessment_move_preview(assessment=assessment, framework=target),
    }
    if request.method == "POST":
        try:
            assessment_move(assessment=assessment, framework=target, actor=Actor.for_user(request.user))
        except ValidationError as exc:
            return render(request, "pilots/migrate.html", {**context, "error": " ".join(exc.messages)}, status=422)
        messages.success(request, f"{pilot.name} is now assessed against {target}.")
        return redirect("pilot", pk=pilot.pk)
    return render(request, "pilots/migrate.html", context)


@require_GET
@login_required
def pilot_export(request: HtmxHttpRequest, pk: int, fmt: str) -> HttpResponse:
    """The checklist as CSV or XLSX, for members of the pilot's organisation."""
    if fmt not in {"csv", "xlsx"}:
        raise Http404("Export as csv or xlsx.")
    pilot = _pilot_for(request, pk)
    assessment = assessment_open(pilot=pilot)
    if assessment is None:
        raise Http404("This pilot has no open assessment.")
    now = timezone.now()
    data = checklist(assessment=assessment, today=timezone.localdate())
    if fmt == "csv":
        body, content_type = checklist_csv(pilot=pilot, data=data, now=now), "text/csv; charset=utf-8"
    else:
        body = checklist_xlsx(pilot=pilot, data=data, now=now)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    result = HttpResponse(body, content_type=content_type)
    result["Content-Disposition"] = f'attachment; filename="{pilot.slug}-checklist-{now:%Y-%m-%d}.{fmt}"'
    patch_cache_control(result, private=True, no_store=True)
    return result
