"""Pilots in the admin: read-only. Changes go through the pilot pages (services),
which check permissions, bump versions, refresh scores and record audit events."""

from __future__ import annotations

from django.contrib import admin

from assessments.admin_base import ReadOnlyAdmin, ReadOnlyInline
from assessments.pilots.models import Assessment, Evidence, Pilot, Response, StopCondition


class StopConditionInline(ReadOnlyInline):
    model = StopCondition


@admin.register(Pilot)
class PilotAdmin(ReadOnlyAdmin):
    list_display = ["name", "organisation", "stage", "risk_tier", "data_sensitivity", "technical_owner"]
    list_filter = ["stage", "risk_tier", "data_sensitivity", "data_leaves_boundary", "organisation"]
    search_fields = ["name", "slug", "description", "model_providers"]
    list_select_related = ["organisation", "technical_owner"]
    inlines = [StopConditionInline]


@admin.register(Assessment)
class AssessmentAdmin(ReadOnlyAdmin):
    list_display = ["pilot", "framework", "status", "target_date", "created_at"]
    list_filter = ["status", "framework"]
    search_fields = ["pilot__name"]
    list_select_related = ["pilot", "framework"]


@admin.register(Response)
class ResponseAdmin(ReadOnlyAdmin):
    list_display = ["criterion", "assessment", "status", "owner", "due_date", "updated_at", "version"]
    list_filter = ["status", "criterion__severity_high", "criterion__gap__key"]
    search_fields = ["criterion__code", "criterion__title", "assessment__pilot__name", "justification"]
    list_select_related = ["criterion", "assessment__pilot", "owner"]


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = ["title", "kind", "response", "effective_date", "expires_on", "added_by"]
    list_filter = ["kind"]
    search_fields = ["title", "url", "note", "original_filename", "sha256"]
    list_select_related = ["response__criterion", "added_by"]


@admin.register(StopCondition)
class StopConditionAdmin(ReadOnlyAdmin):
    list_display = ["pilot", "metric", "comparator", "threshold", "status"]
    list_filter = ["status"]
    search_fields = ["pilot__name", "metric", "condition"]
