"""Linked systems, checks and runs in the admin: read-only (credentials never shown).
Changes go through the linked-systems page (services), which audit every rule change."""

from __future__ import annotations

from django.contrib import admin

from assessments.admin_base import ReadOnlyAdmin
from assessments.evidence.models import Check, CheckRun, LinkedSystem


@admin.register(LinkedSystem)
class LinkedSystemAdmin(ReadOnlyAdmin):
    list_display = ["name", "pilot", "kind", "check_interval_minutes", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "pilot__name"]
    exclude = ["credentials"]


@admin.register(Check)
class CheckAdmin(ReadOnlyAdmin):
    list_display = ["name", "linked_system", "criterion", "metric", "comparator", "threshold", "rule_version"]
    search_fields = ["name", "metric", "criterion__code"]


@admin.register(CheckRun)
class CheckRunAdmin(ReadOnlyAdmin):
    list_display = ["check_rule", "status", "verdict", "trigger", "queued_at", "finished_at"]
    list_filter = ["status", "verdict", "trigger"]
