"""Reports in the admin: read-only; reports are requested and rendered through the services."""

from __future__ import annotations

from django.contrib import admin

from assessments.admin_base import ReadOnlyAdmin
from assessments.reports.models import Report, SowText


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ["pk", "organisation", "pilot", "kind", "status", "requested_at", "finished_at"]
    list_filter = ["kind", "status"]
    search_fields = ["pilot__name", "sha256"]


@admin.register(SowText)
class SowTextAdmin(ReadOnlyAdmin):
    list_display = ["pilot", "version", "updated_at", "updated_by"]
    search_fields = ["pilot__name"]
