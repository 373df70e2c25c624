"""Report pages: a pilot's reports panel, the portfolio report page, status polling, downloads.

Rendering never happens here: a request writes a pending row and the page polls the
row's status fragment (htmx, every two seconds) until it is done or failed.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_POST

from assessments.audit.context import Actor
from assessments.organisations.context import current_organisation, request_organisations, request_roles
from assessments.organisations.models import Organisation
from assessments.pilots.models import Pilot
from assessments.reports.models import Report, ReportKind
from assessments.reports.portfolio import portfolio_context
from assessments.reports.renderers import available_kinds
from assessments.reports.services import DOSSIER_ROLES, report_request
from readiness.http import HtmxHttpRequest

CONTENT_TYPES: dict[str, str] = {
    ReportKind.PILOT: "application/pdf",
    ReportKind.PORTFOLIO: "application/pdf",
    ReportKind.SOW_PDF: "application/pdf",
    ReportKind.SOW_MD: "text/markdown; charset=utf-8",
    ReportKind.SOW_DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ReportKind.DOSSIER: "application/zip",
}
LIST_LIMIT = 30


def _org_ids(request: HtmxHttpRequest) -> list[int]:
    return [org.pk for org in request_organisations(request)]


def _pilot_for(request: HtmxHttpRequest, pk: int) -> Pilot:
    return get_object_or_404(Pilot.objects.select_related("organisation"), pk=pk, organisation_id__in=_org_ids(request))


def _report_for(request: HtmxHttpRequest, pk: int) -> Report:
    """A report of one of the user's organisations, or 404; a dossier only to those who may see
    dossiers (403), on every view: its line and its error say as much as its file."""
    report = get_object_or_404(
        Report.objects.select_related("organisation", "pilot", "requested_by"),
        pk=pk,
        organisation_id__in=_org_ids(request),
    )
    if report.kind == ReportKind.DOSSIER and not _may_see_dossiers(request, report.organisation):
        raise PermissionDenied("Only administrators and risk & compliance see an auditor's dossier.")
    return report


def _may_see_dossiers(request: HtmxHttpRequest, organisation: Organisation) -> bool:
    """A dossier holds the organisation's whole audit trail: administrators and risk only."""
    return bool(request_roles(request, organisation) & DOSSIER_ROLES)


def _pilot_kinds(*, dossiers: bool) -> list[tuple[str, str]]:
    return [
        (k, ReportKind(k).label)
        for k in available_kinds()
        if k != ReportKind.PORTFOLIO and (dossiers or k != ReportKind.DOSSIER)
    ]


@require_GET
@login_required
def pilot_reports(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pilot = _pilot_for(request, pk)
    dossiers = _may_see_dossiers(request, pilot.organisation)
    reports = Report.objects.filter(pilot=pilot).select_related("requested_by")
    if not dossiers:
        reports = reports.exclude(kind=ReportKind.DOSSIER)
    context = {"pilot": pilot, "reports": reports[:LIST_LIMIT], "kinds": _pilot_kinds(dossiers=dossiers)}
    return render(request, "reports/pilot_reports.html", context)


@require_POST
@login_required
def pilot_report_new(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pilot = _pilot_for(request, pk)
    kind = request.POST.get("kind", ReportKind.PILOT)
    try:  # a portfolio kind is refused too: it is asked for an organisation, not a pilot
        report_request(kind=kind, pilot=pilot, actor=Actor.for_user(request.user))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("pilot-reports", pk=pilot.pk)
    messages.success(request, "Report requested: it renders in the background and appears below when it is ready.")
    return redirect("pilot-reports", pk=pilot.pk)


@require_GET
@login_required
def portfolio_report(request: HtmxHttpRequest) -> HttpResponse:
    organisation = current_organisation(request)
    context = portfolio_context(organisation=organisation)
    context["reports"] = Report.objects.filter(organisation=organisation, kind=ReportKind.PORTFOLIO).select_related(
        "requested_by"
    )[:LIST_LIMIT]
    return render(request, "reports/portfolio.html", context)


@require_POST
@login_required
def portfolio_report_new(request: HtmxHttpRequest) -> HttpResponse:
    organisation = current_organisation(request)
    report_request(kind=ReportKind.PORTFOLIO, organisation=organisation, actor=Actor.for_user(request.user))
    messages.success(request, "Portfolio report requested: it appears below when it is ready.")
    return redirect("portfolio-report")


@require_GET
@login_required
def report_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One report's line; while it is pending or running the line polls itself."""
    report = _report_for(request, pk)
    if not request.htmx:  # the "Refresh" link without JavaScript: back to the list it sits in
        return redirect("pilot-reports", pk=report.pilot_id) if report.pilot_id else redirect("portfolio-report")
    return render(request, "reports/_report_line.html", {"report": report})


@require_GET
@login_required
def report_download(request: HtmxHttpRequest, pk: int) -> FileResponse:
    """A finished report's file, to members of its organisation, always as a download."""
    report = _report_for(request, pk)
    if not report.file:
        raise Http404("This report has no file (yet).")
    try:
        handle = report.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The stored report file is missing.") from exc
    stored = PurePosixPath(report.file.name or "report").name
    result = FileResponse(
        handle,
        as_attachment=True,
        filename=stored.split("-", 1)[1] if "-" in stored else stored,
        content_type=CONTENT_TYPES.get(report.kind, "application/octet-stream"),
    )
    result["X-Content-Type-Options"] = "nosniff"
    result["Content-Security-Policy"] = "default-src 'none'; sandbox"
    patch_cache_control(result, private=True, no_store=True)  # no shared or browser cache keeps it
    return result
