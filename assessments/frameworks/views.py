"""The framework editor for administrators: copy a published version to a draft,
edit its gaps and criteria, review the differences, publish.

Services enforce the rules (admin only, published versions immutable); these
views only translate their refusals into 403 and 422 responses.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assessments.audit.context import Actor
from assessments.frameworks.forms import CriterionForm, GapForm
from assessments.frameworks.models import Criterion, Framework, FrameworkStatus, Gap
from assessments.frameworks.selectors import framework_diff, frameworks_for_organisation
from assessments.frameworks.services import (
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


def _admin_org(request: HtmxHttpRequest) -> Organisation:
    organisation = current_organisation(request)
    if not can_administer(roles_of(user=request.user, organisation=organisation)):
        raise PermissionDenied("Only administrators manage frameworks.")
    return organisation


def _framework(request: HtmxHttpRequest, pk: int) -> Framework:
    return get_object_or_404(Framework, pk=pk, organisation=_admin_org(request))


@require_GET
@login_required
def framework_list(request: HtmxHttpRequest) -> HttpResponse:
    organisation = _admin_org(request)
    return render(
        request,
        "frameworks/list.html",
        {"organisation": organisation, "frameworks": frameworks_for_organisation(organisation=organisation)},
    )


@require_GET
@login_required
def framework_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    framework = _framework(request, pk)
    gaps = list(framework.gaps.prefetch_related("criteria__mappings"))
    return render(request, "frameworks/detail.html", {"framework": framework, "gaps": gaps})


@require_POST
@login_required
def framework_copy_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    framework = _framework(request, pk)
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
    framework = _framework(request, pk)
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
    form: Any,
    framework: Framework,
    save: Any,
    title: str,
    template: str = "frameworks/edit.html",
) -> HttpResponse:
    if framework.status != FrameworkStatus.DRAFT:
        # Never show a form whose save would be refused: published versions are immutable.
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
    return render(request, template, {"form": form, "framework": framework, "title": title}, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def gap_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    gap = get_object_or_404(Gap.objects.select_related("framework"), pk=pk, framework__organisation=_admin_org(request))
    form = GapForm(request.POST or None, instance=Gap.objects.get(pk=gap.pk))
    actor = Actor.for_user(request.user)
    return _edit(
        request, form, gap.framework, lambda data: gap_update(gap=gap, actor=actor, **data), f"Edit {gap.name}"
    )


@require_http_methods(["GET", "POST"])
@login_required
def criterion_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    criterion = get_object_or_404(
        Criterion.objects.select_related("framework", "gap"), pk=pk, framework__organisation=_admin_org(request)
    )
    form = CriterionForm(request.POST or None, instance=Criterion.objects.get(pk=criterion.pk))
    actor = Actor.for_user(request.user)
    return _edit(
        request,
        form,
        criterion.framework,
        lambda data: criterion_update(criterion=criterion, actor=actor, **data),
        f"Edit {criterion.code}",
    )


@require_http_methods(["GET", "POST"])
@login_required
def criterion_new(request: HtmxHttpRequest, gap_pk: int) -> HttpResponse:
    gap = get_object_or_404(
        Gap.objects.select_related("framework"), pk=gap_pk, framework__organisation=_admin_org(request)
    )
    form = CriterionForm(request.POST or None)
    actor = Actor.for_user(request.user)
    return _edit(
        request,
        form,
        gap.framework,
        lambda data: criterion_create(gap=gap, actor=actor, order=gap.criteria.count() + 1, **data),
        f"New criterion in {gap.name}",
    )


@require_POST
@login_required
def criterion_remove(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    criterion = get_object_or_404(
        Criterion.objects.select_related("framework"), pk=pk, framework__organisation=_admin_org(request)
    )
    framework = criterion.framework
    try:
        criterion_delete(criterion=criterion, actor=Actor.for_user(request.user))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("framework-detail", pk=framework.pk)
    messages.success(request, f"Removed {criterion.code}.")
    return redirect("framework-detail", pk=framework.pk)
