"""Admin for frameworks. Published versions are read-only here too: edits go through
a draft copy (services), never around them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from assessments.frameworks.models import Criterion, Framework, FrameworkStatus, Gap, RegulatoryMapping


class ReadOnlyUnlessDraft(admin.ModelAdmin):
    def _framework(self, obj: Any) -> Framework | None:
        if obj is None:
            return None
        return obj if isinstance(obj, Framework) else obj.framework

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        framework = self._framework(obj)
        if framework is not None and framework.status != FrameworkStatus.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        framework = self._framework(obj)
        if framework is not None and framework.status != FrameworkStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(Framework)
class FrameworkAdmin(ReadOnlyUnlessDraft):
    list_display = ["name", "version", "status", "organisation", "published_at"]
    list_filter = ["status", "organisation"]
    search_fields = ["name", "description"]
    readonly_fields = ["status", "published_at", "based_on", "created_at"]


@admin.register(Gap)
class GapAdmin(ReadOnlyUnlessDraft):
    list_display = ["name", "key", "order", "weight", "framework"]
    list_filter = ["key", "framework"]
    search_fields = ["name", "description"]
    list_select_related = ["framework"]


class MappingInline(admin.TabularInline):
    model = RegulatoryMapping
    extra = 0


@admin.register(Criterion)
class CriterionAdmin(ReadOnlyUnlessDraft):
    list_display = ["code", "title", "severity", "check_kind", "gap", "framework"]
    list_filter = ["severity", "gap__key", "check_kind", "framework"]
    search_fields = ["code", "title", "guidance"]
    list_select_related = ["gap", "framework"]
    inlines = [MappingInline]

    def _framework(self, obj: Any) -> Framework | None:
        return None if obj is None else obj.framework


@admin.register(RegulatoryMapping)
class RegulatoryMappingAdmin(admin.ModelAdmin):
    list_display = ["criterion", "scheme", "reference", "title"]
    list_filter = ["scheme"]
    search_fields = ["reference", "title", "criterion__code"]
    list_select_related = ["criterion"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.criterion.framework.status != FrameworkStatus.DRAFT:
            return False
        return super().has_change_permission(request, obj)
