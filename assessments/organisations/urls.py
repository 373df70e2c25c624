from __future__ import annotations

from django.urls import path

from assessments.organisations import member_views

urlpatterns = [
    path("members/", member_views.members, name="members"),
    path("members/invite/", member_views.member_invite, name="member-invite"),
    path("members/<int:user_id>/roles/", member_views.member_role_grant, name="member-role-grant"),
    path("memberships/<int:membership_id>/revoke/", member_views.member_role_revoke, name="member-role-revoke"),
    path("members/invitations/<int:pk>/revoke/", member_views.invitation_revoke_view, name="invitation-revoke"),
    path("invitations/", member_views.invitations, name="invitations"),
    path(
        "invitations/<int:pk>/accept/", member_views.invitation_answer, {"answer": "accept"}, name="invitation-accept"
    ),
    path(
        "invitations/<int:pk>/decline/",
        member_views.invitation_answer,
        {"answer": "decline"},
        name="invitation-decline",
    ),
    path("org/", member_views.organisation_choose_view, name="organisation-choose"),
]
