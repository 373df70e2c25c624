"""The statement-of-work definition pages: read it and download it (every member), edit
its preamble and scope (those who edit the pilot).

Views stay thin: the definition comes from ``sow_definition``, writes go through
``sow_text_update``; PermissionDenied is a 403, a ValidationError a 422 beside the field,
a stale version a 409 showing the text saved in the meantime.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_http_methods

from assessments.audit.context import Actor
from assessments.organisations.context import request_organisations, request_roles
from assessments.organisations.permissions import can_edit_pilot
from assessments.pilots.models import Pilot
from assessments.reports.models import ReportKind, SowText
from assessments.reports.sow import RENDERERS, SowDefinition, SowUnavailable, sow_definition
from assessments.reports.sow_services import SOW_TEXT_MAX_CHARS, SowTextConflictError, sow_text_update
from assessments.text import PROSE
from readiness.http import HtmxHttpRequest, form_attach_errors

# Markdown and Word take milliseconds and are made here; the PDF takes seconds, so it is a
# recorded report rendered in the background (the reports page's ``sow_pdf`` kind).
DOWNLOADS = ("md", "docx")


class SowTextForm(forms.Form):
    preamble = forms.CharField(
        required=False,
        strip=False,
        max_length=SOW_TEXT_MAX_CHARS,
        validators=[PROSE],
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Opens the document. Leave empty for the standard wording.",
    )
    scope = forms.CharField(
        required=False,
        strip=False,
        max_length=SOW_TEXT_MAX_CHARS,
        validators=[PROSE],
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What the definition covers. Leave empty for the standard wording.",
    )
    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)


def _pilot_for(request: HtmxHttpRequest, pk: int) -> Pilot:
    """A pilot of one of the user's organisations, or 404."""
    return get_object_or_404(
        Pilot.objects.select_related("organisation"),
        pk=pk,
        organisation_id__in=[org.pk for org in request_organisations(request)],
    )


def _can_edit(request: HtmxHttpRequest, pilot: Pilot) -> bool:
    return can_edit_pilot(request_roles(request, pilot.organisation), actor=Actor.for_user(request.user), pilot=pilot)


def _pilot_for_edit(request: HtmxHttpRequest, pk: int) -> Pilot:
    """A pilot whose definition this person may edit: 404 or 403 otherwise, on GET too."""
    pilot = _pilot_for(request, pk)
    if not _can_edit(request, pilot):
        raise PermissionDenied(f"Only the owners of {pilot.name} and administrators change its definition.")
    return pilot


def _definition(pilot: Pilot) -> SowDefinition:
    try:
        return sow_definition(pilot=pilot)
    except SowUnavailable as exc:
        raise Http404(str(exc)) from exc


@require_GET
@login_required
def sow_page(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pilot = _pilot_for(request, pk)
    context = {
        "pilot": pilot,
        "d": _definition(pilot),
        "can_edit": _can_edit(request, pilot),
        "downloads": DOWNLOADS,
        "pdf_kind": ReportKind.SOW_PDF,
    }
    return render(request, "reports/sow_page.html", context)


@require_GET
@login_required
def sow_download(request: HtmxHttpRequest, pk: int, fmt: str) -> HttpResponse:
    """The definition as Markdown or Word, made in the request (milliseconds)."""
    if fmt not in DOWNLOADS:
        raise Http404("Download as md or docx; the PDF is made on the reports page.")
    pilot = _pilot_for(request, pk)
    try:
        content, content_type, filename = RENDERERS[fmt](pilot)
    except SowUnavailable as exc:
        raise Http404(str(exc)) from exc
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, private=True, no_store=True)
    return response


@require_http_methods(["GET", "POST"])
@login_required
def sow_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pilot = _pilot_for_edit(request, pk)
    saved = SowText.objects.filter(pilot=pilot).first()
    initial = {"preamble": saved.preamble if saved else "", "scope": saved.scope if saved else "", "version": 0}
    if saved:
        initial["version"] = saved.version
    # Bound on every POST, even an empty one, so a 422 always says what is wrong.
    form = SowTextForm(request.POST if request.method == "POST" else None, initial=initial)
    conflict = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            sow_text_update(
                pilot=pilot,
                actor=Actor.for_user(request.user),
                preamble=data["preamble"],
                scope=data["scope"],
                expected_version=data["version"],
            )
        except ValidationError as exc:
            form_attach_errors(form, exc)
        except SowTextConflictError as exc:
            current = exc.current
            conflict = str(exc)
            # The editor shows what is saved now, with its version; the text that was not saved
            # stays visible beside it so nothing typed is lost.
            context = {
                "pilot": pilot,
                "form": SowTextForm(
                    initial={
                        "preamble": current.preamble if current else "",
                        "scope": current.scope if current else "",
                        "version": current.version if current else 0,
                    }
                ),
                "conflict": conflict,
                "mine": data,
            }
            return render(request, "reports/sow_edit.html", context, status=409)
        else:
            messages.success(request, "Preamble and scope saved.")
            return redirect("sow", pk=pilot.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "reports/sow_edit.html", {"pilot": pilot, "form": form}, status=status)
