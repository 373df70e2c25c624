"""Reviews in the admin: read-only; decisions and conditions are written through the services."""

from __future__ import annotations

from django.contrib import admin

from assessments.admin_base import ReadOnlyAdmin
from assessments.reviews.models import Comment, Condition, Decision, GateOverride, ReviewMeeting


@admin.register(ReviewMeeting)
class ReviewMeetingAdmin(ReadOnlyAdmin):
    list_display = ["pilot", "scheduled_at", "status", "sequence"]
    list_filter = ["status"]
    search_fields = ["pilot__name"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["meeting", "role", "signer", "decision", "signed_at"]
    list_filter = ["role", "decision"]
    exclude = ["snapshot"]


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin):
    list_display = ["pilot", "response", "author", "created_at"]


@admin.register(Condition)
class ConditionAdmin(ReadOnlyAdmin):
    list_display = ["pilot", "text", "owner", "due_date", "status"]
    list_filter = ["status"]


@admin.register(GateOverride)
class GateOverrideAdmin(ReadOnlyAdmin):
    list_display = ["pilot", "actor", "stage_to", "created_at"]
