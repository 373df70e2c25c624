"""Frameworks in the admin: read-only. Drafts are edited in the framework editor,
which goes through the services (immutability of published versions, audit events)."""

from __future__ import annotations

from django.contrib import admin

from assessments.admin_base import ReadOnlyAdmin, ReadOnlyInline
from assessments.frameworks.models import Criterion, Framework, Gap, RegulatoryMapping


@admin.register(Framework)
class FrameworkAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "status", "organisation", "published_at"]
    list_filter = ["status", "organisation"]
    search_fields = ["name", "description"]


@admin.register(Gap)
class GapAdmin(ReadOnlyAdmin):
    list_display = ["name", "key", "order", "weight", "framework"]
    list_filter = ["key", "framework"]
    search_fields = ["name", "description"]
    list_select_related = ["framework"]


class MappingInline(ReadOnlyInline):
    model = RegulatoryMapping


@admin.register(Criterion)
class CriterionAdmin(ReadOnlyAdmin):
    list_display = [
        "code",
        "title",
        "severity_minimal",
        "severity_limited",
        "severity_high",
        "check_kind",
        "gap",
        "framework",
    ]
    list_filter = ["severity_high", "gap__key", "check_kind", "preflight_evidence", "framework"]
    search_fields = ["code", "title", "guidance"]
    list_select_related = ["gap", "framework"]
    inlines = [MappingInline]


@admin.register(RegulatoryMapping)
class RegulatoryMappingAdmin(ReadOnlyAdmin):
    list_display = ["criterion", "scheme", "reference", "title"]
    list_filter = ["scheme"]
    search_fields = ["reference", "title", "criterion__code"]
    list_select_related = ["criterion"]
