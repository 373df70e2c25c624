"""Organisations and memberships in the admin: read-only. Organisations are created
with ``organisation_create`` (which starts the audit chain) and members are managed
on the Members page, both through audited services."""

from __future__ import annotations

from django.contrib import admin

from assessments.admin_base import ReadOnlyAdmin
from assessments.organisations.models import Membership, Organisation


@admin.register(Organisation)
class OrganisationAdmin(ReadOnlyAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "organisation", "role", "created_at"]
    list_filter = ["role", "organisation"]
    search_fields = ["user__username", "user__email", "organisation__name"]
    list_select_related = ["user", "organisation"]
