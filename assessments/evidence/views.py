"""The linked-systems page of a pilot: its systems, their checks with the latest verdicts,
"re-check now" (polled by htmx until the run finishes), and the forms to add both."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assessments.audit.context import Actor
from assessments.evidence.charts import sparkline_svg
from assessments.evidence.connectors.base import ConnectorError
from assessments.evidence.credentials import CredentialsError
from assessments.evidence.forms import (
    AlertWebhookForm,
    CheckEditForm,
    CheckForm,
    LinkedSystemEditForm,
    LinkedSystemForm,
    kinds_by_field,
)
from assessments.evidence.models import AlertWebhook, Check, CheckRun, LinkedSystem, RunStatus
from assessments.evidence.notify import webhook_post
from assessments.evidence.selectors import linked_systems_of, run_history
from assessments.evidence.services import (
    EditConflict,
    alert_webhook_remove,
    alert_webhook_set,
    check_create,
    check_run_request,
    check_update,
    linked_system_create,
    linked_system_update,
)
from assessments.frameworks.models import Criterion
from assessments.organisations.context import current_organisation, request_organisations, request_roles
from assessments.organisations.models import Organisation
from assessments.organisations.permissions import can_administer, can_edit_pilot, roles_of
from assessments.pilots.models import Pilot
from assessments.pilots.selectors import assessment_open
from readiness.http import HtmxHttpRequest, form_attach_errors


def _pilot_for(request: HtmxHttpRequest, pk: int) -> Pilot:
    return get_object_or_404(
        Pilot.objects.select_related("organisation"),
        pk=pk,
        organisation_id__in=[org.pk for org in request_organisations(request)],
    )


def _check_for(request: HtmxHttpRequest, pk: int) -> Check:
    return get_object_or_404(
        Check.objects.select_related("linked_system__pilot__organisation", "criterion", "latest_run"),
        pk=pk,
        linked_system__pilot__organisation_id__in=[org.pk for org in request_organisations(request)],
    )


def _system_for(request: HtmxHttpRequest, pk: int) -> LinkedSystem:
    return get_object_or_404(
        LinkedSystem.objects.select_related("pilot__organisation"),
        pk=pk,
        pilot__organisation_id__in=[org.pk for org in request_organisations(request)],
    )


def _can_edit(request: HtmxHttpRequest, pilot: Pilot) -> bool:
    return can_edit_pilot(request_roles(request, pilot.organisation), actor=Actor.for_user(request.user), pilot=pilot)


def _criteria(pilot: Pilot) -> Any:
    assessment = assessment_open(pilot=pilot)
    if assessment is None:
        return Criterion.objects.none()
    return Criterion.objects.filter(framework_id=assessment.framework_id).order_by("-check_kind", "gap__order", "order")


def _open_runs(check_ids: list[int]) -> dict[int, CheckRun]:
    """The queued or running run of each check (at most one each), in one query."""
    runs = CheckRun.objects.filter(check_rule_id__in=check_ids, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
    return {run.check_rule_id: run for run in runs}


def _framework_id(pilot: Pilot) -> int | None:
    assessment = assessment_open(pilot=pilot)
    return assessment.framework_id if assessment else None


def _check_context(
    check: Check, history: list[CheckRun], open_run: CheckRun | None, framework_id: int | None
) -> dict[str, Any]:
    return {
        "check": check,
        "spark": sparkline_svg(history, threshold=check.threshold),
        "open_run": open_run,
        # Its criterion left the framework when the pilot moved to a newer version.
        "orphaned": check.criterion.framework_id != framework_id,
    }


def _settings_shown(system: LinkedSystem) -> list[tuple[str, str]]:
    return [
        (key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
        for key, value in system.configuration.items()
    ]


def _page(
    request: HtmxHttpRequest,
    pilot: Pilot,
    *,
    system_form: LinkedSystemForm | None = None,
    check_form: CheckForm | None = None,
    status: int = 200,
) -> HttpResponse:
    systems = list(linked_systems_of(pilot=pilot))
    checks = [check for system in systems for check in system.checks.all()]
    history = run_history(check_ids=[c.pk for c in checks])
    open_runs = _open_runs([c.pk for c in checks])
    editable = _can_edit(request, pilot)
    framework_id = _framework_id(pilot)
    system_qs = LinkedSystem.objects.filter(pilot=pilot)
    context = {
        "pilot": pilot,
        "systems": [
            (
                system,
                _settings_shown(system),
                [
                    _check_context(c, history.get(c.pk, []), open_runs.get(c.pk), framework_id)
                    for c in system.checks.all()
                ],
            )
            for system in systems
        ],
        "can_edit": editable,
        "system_form": system_form or LinkedSystemForm(auto_id="system_%s"),
        "check_form": check_form or CheckForm(auto_id="check_%s", systems=system_qs, criteria=_criteria(pilot)),
        "kind_fields": kinds_by_field(),
    }
    return render(request, "evidence/systems.html", context, status=status)


@require_GET
@login_required
def systems(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _page(request, _pilot_for(request, pk))


@require_POST
@login_required
def system_new(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pilot = _pilot_for(request, pk)
    if not _can_edit(request, pilot):
        raise PermissionDenied("Only this pilot's owners and administrators link systems.")
    form = LinkedSystemForm(request.POST, request.FILES, auto_id="system_%s")
    if form.is_valid():
        try:
            system = linked_system_create(
                pilot=pilot,
                actor=Actor.for_user(request.user),
                kind=form.cleaned_data["kind"],
                name=form.cleaned_data["name"],
                configuration=form.configuration(),
                secrets=form.secrets(),
                upload=form.cleaned_data.get("upload"),
                check_interval_minutes=form.cleaned_data["check_interval_minutes"],
            )
        except (ValidationError, CredentialsError) as exc:
            if isinstance(exc, CredentialsError):
                exc = ValidationError(str(exc))
            form_attach_errors(form, exc)
        else:
            messages.success(request, f"Linked {system.name}. Add a check to turn what it says into a verdict.")
            return redirect("linked-systems", pk=pilot.pk)
    return _page(request, pilot, system_form=form, status=422)


@require_POST
@login_required
def check_new(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pilot = _pilot_for(request, pk)
    if not _can_edit(request, pilot):
        raise PermissionDenied("Only this pilot's owners and administrators write check rules.")
    form = CheckForm(
        request.POST, auto_id="check_%s", systems=LinkedSystem.objects.filter(pilot=pilot), criteria=_criteria(pilot)
    )
    if form.is_valid():
        try:
            check = check_create(
                system=form.cleaned_data["linked_system"],
                criterion=form.cleaned_data["criterion"],
                actor=Actor.for_user(request.user),
                **form.rule(),
            )
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            check_run_request(check=check, actor=Actor.for_user(request.user))
            messages.success(request, f"Check “{check.name}” saved; its first run is queued.")
            return redirect("linked-systems", pk=pilot.pk)
    return _page(request, pilot, check_form=form, status=422)


@require_http_methods(["GET", "POST"])
@login_required
def check_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: one check's card (polled while a run is open). POST: "re-check now"."""
    check = _check_for(request, pk)
    refused = ""
    if request.method == "POST":
        try:
            check_run_request(check=check, actor=Actor.for_user(request.user))
        except ValidationError as exc:
            refused = " ".join(exc.messages)
            if not request.htmx:
                messages.error(request, refused)
                return redirect("linked-systems", pk=check.linked_system.pilot_id)
        else:
            check = _check_for(request, pk)
            if not request.htmx:
                messages.success(request, f"“{check.name}” is queued for a re-check.")
                return redirect("linked-systems", pk=check.linked_system.pilot_id)
    history = run_history(check_ids=[check.pk]).get(check.pk, [])
    pilot = check.linked_system.pilot
    context = _check_context(check, history, _open_runs([check.pk]).get(check.pk), _framework_id(pilot))
    context["can_edit"] = _can_edit(request, check.linked_system.pilot)
    context["refused"] = refused
    return render(request, "evidence/systems.html#check", context, status=409 if refused else 200)


def _edit_page(
    request: HtmxHttpRequest, *, pilot: Pilot, form: Any, title: str, what: str, status: int, conflict: str = ""
) -> HttpResponse:
    context = {"pilot": pilot, "form": form, "title": title, "what": what, "conflict": conflict}
    return render(request, "evidence/edit.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def system_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Change a linked system's settings, file, credentials, schedule, or switch it off."""
    system = _system_for(request, pk)
    pilot = system.pilot
    if not _can_edit(request, pilot):
        raise PermissionDenied("Only this pilot's owners and administrators change linked systems.")
    title = f"Edit {system.name}"
    if request.method == "GET":
        return _edit_page(
            request, pilot=pilot, form=LinkedSystemEditForm(system=system), title=title, what="system", status=200
        )
    form = LinkedSystemEditForm(request.POST, request.FILES, system=system)
    if form.is_valid():
        try:
            linked_system_update(
                system=system,
                actor=Actor.for_user(request.user),
                name=form.cleaned_data["name"],
                configuration=form.configuration(),
                check_interval_minutes=form.cleaned_data["check_interval_minutes"],
                enabled=form.cleaned_data["enabled"],
                secrets=form.secrets(),
                upload=form.cleaned_data.get("upload"),
                expected_token=form.cleaned_data["edit_token"],
            )
        except EditConflict as exc:
            current = LinkedSystemEditForm(system=_system_for(request, pk))
            return _edit_page(
                request, pilot=pilot, form=current, title=title, what="system", status=409, conflict=str(exc)
            )
        except (ValidationError, CredentialsError) as exc:
            form_attach_errors(form, ValidationError(str(exc)) if isinstance(exc, CredentialsError) else exc)
        else:
            messages.success(request, f"Saved {form.cleaned_data['name']}.")
            return redirect(f"{reverse('linked-systems', args=[pilot.pk])}#system-{system.pk}")
    return _edit_page(request, pilot=pilot, form=form, title=title, what="system", status=422)


@require_http_methods(["GET", "POST"])
@login_required
def check_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Change a check's rule; the change is audited before any run uses it."""
    check = _check_for(request, pk)
    pilot = check.linked_system.pilot
    if not _can_edit(request, pilot):
        raise PermissionDenied("Only this pilot's owners and administrators change check rules.")
    title = f"Edit the rule of {check.name}"
    if request.method == "GET":
        return _edit_page(request, pilot=pilot, form=CheckEditForm(check=check), title=title, what="check", status=200)
    form = CheckEditForm(request.POST, check=check)
    if form.is_valid():
        try:
            check_update(
                check=check,
                actor=Actor.for_user(request.user),
                expected_version=form.cleaned_data["rule_version"],
                **form.rule(),
            )
        except EditConflict as exc:
            current = CheckEditForm(check=_check_for(request, pk))
            return _edit_page(
                request, pilot=pilot, form=current, title=title, what="check", status=409, conflict=str(exc)
            )
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            if check.linked_system.enabled:
                run = check_run_request(check=check, actor=Actor.for_user(request.user))
                then = (
                    "a run with it is queued"
                    if run.status == RunStatus.QUEUED
                    else "it runs as soon as the current run ends"
                )
            else:
                then = "its system is switched off, so nothing runs until it is switched on"
            messages.success(request, f"Rule of “{form.cleaned_data['name']}” saved; {then}.")
            return redirect(f"{reverse('linked-systems', args=[pilot.pk])}#check-{check.pk}")
    return _edit_page(request, pilot=pilot, form=form, title=title, what="check", status=422)


def _alerts_page(
    request: HtmxHttpRequest, organisation: Organisation, *, form: AlertWebhookForm | None = None, status: int = 200
) -> HttpResponse:
    webhook = AlertWebhook.objects.select_related("updated_by").filter(organisation=organisation).first()
    context = {"organisation": organisation, "webhook": webhook, "form": form or AlertWebhookForm()}
    return render(request, "evidence/alerts.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def alerts(request: HtmxHttpRequest) -> HttpResponse:
    """The organisation's regression alerts: set, replace, remove or try its chat webhook (admins)."""
    organisation = current_organisation(request)
    if not can_administer(roles_of(user=request.user, organisation=organisation)):
        raise PermissionDenied("Only administrators set where regression alerts go.")
    if request.method == "GET":
        return _alerts_page(request, organisation)
    actor = Actor.for_user(request.user)
    action = request.POST.get("action", "set")
    if action == "remove":
        try:
            alert_webhook_remove(organisation=organisation, actor=actor)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Removed the alert webhook; regressions are still mailed to pilot owners.")
        return redirect("alerts")
    if action == "test":
        try:
            said = webhook_post(
                organisation_id=organisation.pk,
                text=f"Test message from Preflight for {organisation.name}: regression alerts arrive here.",
            )
        except (ConnectorError, CredentialsError) as exc:
            messages.error(request, f"The test message did not arrive: {exc}")
        else:
            messages.success(request, said)
        return redirect("alerts")
    form = AlertWebhookForm(request.POST)
    if form.is_valid():
        try:
            alert_webhook_set(organisation=organisation, actor=actor, url=form.cleaned_data["url"])
        except ValidationError as exc:
            form_attach_errors(form, exc)
        else:
            messages.success(request, "Saved the alert webhook. Send a test message to see it arrive.")
            return redirect("alerts")
    return _alerts_page(request, organisation, form=form, status=422)
