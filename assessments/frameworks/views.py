"""Framework pages: every member reads them; administrators edit drafts.

Any member of the organisation opens the list, a version with all its criteria, and
each criterion's own page (``criterion-detail``, the page the pilot checklist links
to). Administrators also copy a published version to a draft, edit its gaps and
criteria, review the differences and publish. A published or retired version never
changes, so its edit pages lead to the read-only page instead of showing a form.

Services enforce the rules again (admin only, published versions immutable); these
views only translate their refusals into 403, 409 and 422 responses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assessments.audit.context import Actor
from assessments.frameworks.forms import CriterionForm, GapForm
from assessments.frameworks.models import Criterion, Framework, Gap, RiskTier
from assessments.frameworks.selectors import criterion_field_label, framework_diff, frameworks_for_organisation
from assessments.frameworks.services import (
    CRITERION_FIELDS,
    FrameworkDraftExistsError,
    criterion_create,
    criterion_delete,
    criterion_update,
    framework_copy,
    framework_publish,
    gap_update,
)
from assessments.organisations.context import current_organisation
from assessments.organisations.models import Organisation
from assessments.organisations.permissions import can_administer, roles_of
from readiness.http import HtmxHttpRequest, form_attach_errors


def _may_edit(request: HtmxHttpRequest, organisation: Organisation | int) -> bool:
    return can_administer(roles_of(user=request.user, organisation=organisation))


def _organisation_for(request: HtmxHttpRequest, *, edit: bool) -> Organisation:
    """The current organisation: any member reads its frameworks, only administrators edit them (403)."""
    organisation = current_organisation(request)
    if edit and not _may_edit(request, organisation):
        raise PermissionDenied("Only administrators edit frameworks.")
    return organisation


def _framework_for(request: HtmxHttpRequest, pk: int, *, edit: bool = False) -> Framework:
    return get_object_or_404(Framework, pk=pk, organisation=_organisation_for(request, edit=edit))


def _gap_for(request: HtmxHttpRequest, pk: int, *, edit: bool = False) -> Gap:
    organisation = _organisation_for(request, edit=edit)
    return get_object_or_404(Gap.objects.select_related("framework"), pk=pk, framework__organisation=organisation)


def _criterion_for(request: HtmxHttpRequest, pk: int, *, edit: bool = False) -> Criterion:
    organisation = _organisation_for(request, edit=edit)
    return get_object_or_404(
        Criterion.objects.select_related("framework", "gap"), pk=pk, framework__organisation=organisation
    )


@require_GET
@login_required
def framework_list(request: HtmxHttpRequest) -> HttpResponse:
    organisation = _organisation_for(request, edit=False)
    context = {
        "organisation": organisation,
        "frameworks": frameworks_for_organisation(organisation=organisation),
        "can_edit": _may_edit(request, organisation),
    }
    return render(request, "frameworks/list.html", context)


@require_GET
@login_required
def framework_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    framework = _framework_for(request, pk)
    gaps = list(framework.gaps.prefetch_related("criteria__mappings"))
    context = {"framework": framework, "gaps": gaps, "can_edit": _may_edit(request, framework.organisation_id)}
    return render(request, "frameworks/detail.html", context)


@require_GET
@login_required
def criterion_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Everything about one criterion, read-only; for administrators on a draft, the way to edit it."""
    criterion = _criterion_for(request, pk)
    context = {
        "criterion": criterion,
        "framework": criterion.framework,
        "mappings": list(criterion.mappings.all()),
        "tiers": [(tier.label, criterion.severity_for(tier), criterion.severity_label_for(tier)) for tier in RiskTier],
        "labels": {name: criterion_field_label(name) for name in (*CRITERION_FIELDS, "gap")},
        "can_edit": _may_edit(request, criterion.framework.organisation_id),
    }
    return render(request, "frameworks/criterion.html", context)


@require_POST
@login_required
def framework_copy_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    framework = _framework_for(request, pk, edit=True)
    try:
        draft = framework_copy(framework=framework, actor=Actor.for_user(request.user))
    except FrameworkDraftExistsError as exc:
        messages.error(request, exc.messages[0])
        return redirect("framework-detail", pk=exc.draft.pk)
    messages.success(request, f"Created draft {draft}. Edit it, then publish.")
    return redirect("framework-detail", pk=draft.pk)


@require_http_methods(["GET", "POST"])
@login_required
def framework_publish_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    framework = _framework_for(request, pk, edit=True)
    diff = framework_diff(old=framework.based_on, new=framework) if framework.based_on else None
    if request.method == "POST":
        try:
            framework_publish(framework=framework, actor=Actor.for_user(request.user))
        except ValidationError as exc:
            return render(
                request,
                "frameworks/publish.html",
                {
                    "framework": framework,
                    "diff": diff,
                    "diff_from": framework.based_on,
                    "error": " ".join(exc.messages),
                },
                status=422,
            )
        messages.success(request, f"Published {framework}. It can no longer change.")
        return redirect("framework-detail", pk=framework.pk)
    return render(
        request, "frameworks/publish.html", {"framework": framework, "diff": diff, "diff_from": framework.based_on}
    )


def _edit(
    request: HtmxHttpRequest,
    form: forms.ModelForm[Any],
    framework: Framework,
    save: Callable[[dict[str, Any]], object],
    title: str,
    *,
    read_only_url: str,
) -> HttpResponse:
    """Show or save an editing form for a draft; a frozen version never shows one.

    Asked for the edit page of a published or retired version (an old link, a stale tab),
    the administrator is sent to its read-only page; a form posted after publication
    is refused with 409 and nothing is saved.
    """
    if not framework.is_editable:
        reason = f"{framework} is {framework.get_status_display().lower()}; copy it to a new draft to change it."
        if request.method == "GET":
            messages.info(request, reason)
            return redirect(read_only_url)
        return render(request, "frameworks/immutable.html", {"framework": framework}, status=409)
    if request.method == "POST" and form.is_valid():
        try:
            save(form.cleaned_data)
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("framework-detail", pk=framework.pk)
    status = 422 if request.method == "POST" else 200
    return render(
        request, "frameworks/edit.html", {"form": form, "framework": framework, "title": title}, status=status
    )


@require_http_methods(["GET", "POST"])
@login_required
def gap_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    gap = _gap_for(request, pk, edit=True)
    # The form gets its own copy, so values a failed save set on ``gap`` are not shown as saved.
    form = GapForm(request.POST or None, instance=Gap.objects.get(pk=gap.pk))
    actor = Actor.for_user(request.user)
    return _edit(
        request,
        form,
        gap.framework,
        lambda data: gap_update(gap=gap, actor=actor, **data),
        f"Edit {gap.name}",
        read_only_url=reverse("framework-detail", args=[gap.framework_id]),
    )


@require_http_methods(["GET", "POST"])
@login_required
def criterion_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    criterion = _criterion_for(request, pk, edit=True)
    form = CriterionForm(request.POST or None, instance=Criterion.objects.get(pk=criterion.pk))
    actor = Actor.for_user(request.user)
    return _edit(
        request,
        form,
        criterion.framework,
        lambda data: criterion_update(criterion=criterion, actor=actor, **data),
        f"Edit {criterion.code}",
        read_only_url=reverse("criterion-detail", args=[criterion.pk]),
    )


@require_http_methods(["GET", "POST"])
@login_required
def criterion_new(request: HtmxHttpRequest, gap_pk: int) -> HttpResponse:
    gap = _gap_for(request, gap_pk, edit=True)
    form = CriterionForm(request.POST or None)
    actor = Actor.for_user(request.user)
    return _edit(
        request,
        form,
        gap.framework,
        lambda data: criterion_create(gap=gap, actor=actor, order=gap.criteria.count() + 1, **data),
        f"New criterion in {gap.name}",
        read_only_url=reverse("framework-detail", args=[gap.framework_id]),
    )


@require_POST
@login_required
def criterion_remove(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    criterion = _criterion_for(request, pk, edit=True)
    framework = criterion.framework
    try:
        criterion_delete(criterion=criterion, actor=Actor.for_user(request.user))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("framework-detail", pk=framework.pk)
    messages.success(request, f"Removed {criterion.code}.")
    return redirect("framework-detail", pk=framework.pk)
