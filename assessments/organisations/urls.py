from __future__ import annotations

from django.urls import path

from assessments.organisations import member_views

urlpatterns = [
    path("members/", member_views.members, name="members"),
    path("members/invite/", member_views.member_invite, name="member-invite"),
    path("members/<int:user_id>/roles/", member_views.member_role_grant, name="member-role-grant"),
    path("memberships/<int:membership_id>/revoke/", member_views.member_role_revoke, name="member-role-revoke"),
]
