from __future__ import annotations

from django.contrib import admin

from assessments.pilots.models import Assessment, Evidence, Pilot, Response, StopCondition


class StopConditionInline(admin.TabularInline):
    model = StopCondition
    extra = 0


@admin.register(Pilot)
class PilotAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "stage", "risk_tier", "data_sensitivity", "technical_owner"]
    list_filter = ["stage", "risk_tier", "data_sensitivity", "data_leaves_boundary", "organisation"]
    search_fields = ["name", "slug", "description", "model_providers"]
    list_select_related = ["organisation", "technical_owner"]
    inlines = [StopConditionInline]


@admin.register(Assessment)
class AssessmentAdmin(admin.ModelAdmin):
    list_display = ["pilot", "framework", "status", "target_date", "created_at"]
    list_filter = ["status", "framework"]
    search_fields = ["pilot__name"]
    list_select_related = ["pilot", "framework"]


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["criterion", "assessment", "status", "owner", "due_date", "updated_at", "version"]
    list_filter = ["status", "criterion__severity", "criterion__gap__key"]
    search_fields = ["criterion__code", "criterion__title", "assessment__pilot__name", "justification"]
    list_select_related = ["criterion", "assessment__pilot", "owner"]
    readonly_fields = ["version", "updated_by", "updated_at"]


@admin.register(Evidence)
class EvidenceAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "response", "effective_date", "expires_on", "added_by"]
    list_filter = ["kind"]
    search_fields = ["title", "url", "note", "original_filename", "sha256"]
    list_select_related = ["response__criterion", "added_by"]
    readonly_fields = ["sha256", "size_bytes", "original_filename", "content_type", "added_by", "added_at"]


@admin.register(StopCondition)
class StopConditionAdmin(admin.ModelAdmin):
    list_display = ["pilot", "metric", "comparator", "threshold", "status"]
    list_filter = ["status"]
    search_fields = ["pilot__name", "metric", "condition"]
