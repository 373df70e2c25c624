from __future__ import annotations

from django.urls import path

from assessments.organisations import views

urlpatterns = [
    path("members/", views.members, name="members"),
    path("members/invite/", views.member_invite_view, name="member-invite"),
    path("members/<int:user_id>/roles/", views.member_role_grant, name="member-role-grant"),
    path("memberships/<int:membership_id>/revoke/", views.member_role_revoke, name="member-role-revoke"),
    path("members/invitations/<int:pk>/revoke/", views.invitation_revoke_view, name="invitation-revoke"),
    path("invitations/", views.invitations, name="invitations"),
    path("invitations/<int:pk>/accept/", views.invitation_answer, {"answer": "accept"}, name="invitation-accept"),
    path(
        "invitations/<int:pk>/decline/",
        views.invitation_answer,
        {"answer": "decline"},
        name="invitation-decline",
    ),
    path("org/", views.organisation_choose_view, name="organisation-choose"),
]
