"""The audit trail is read-only in the admin: no add, change or delete, ever."""

from __future__ import annotations

from django.contrib import admin

from assessments.admin_base import ReadOnlyAdmin
from assessments.audit.models import AuditCheckpoint, AuditEvent, AuditVerification


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "organisation", "occurred_at", "actor_label", "action", "object_type", "object_id"]
    list_filter = ["organisation", "actor_type", "action", "object_type"]
    search_fields = ["action", "actor_label", "object_id", "request_id", "hash"]
    list_select_related = ["organisation"]


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["organisation", "sequence", "signed_at", "key_id", "timestamp_status", "anchor_status"]
    list_filter = ["organisation", "timestamp_status", "anchor_status"]


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    list_display = ["organisation", "verified_at", "ok", "head_sequence", "first_bad_sequence", "reason"]
    list_filter = ["ok", "organisation"]
