"""Reads about organisations and roles."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from assessments.organisations.models import Invitation, InvitationStatus, Organisation


def organisations_for_user(*, user: User | AnonymousUser) -> QuerySet[Organisation]:
    if not user.is_authenticated:
        return Organisation.objects.none()
    return Organisation.objects.filter(memberships__user=user).distinct()


def invitations_pending(*, user: User | AnonymousUser) -> QuerySet[Invitation]:
    """Invitations waiting for this person's answer."""
    if not user.is_authenticated:
        return Invitation.objects.none()
    return Invitation.objects.filter(invitee_id=user.pk, status=InvitationStatus.PENDING).select_related(
        "organisation", "invited_by"
    )


def invitations_open_for_organisation(*, organisation: Organisation) -> QuerySet[Invitation]:
    """What an organisation's administrators see of their unanswered invitations: the address typed, the roles."""
    return Invitation.objects.filter(organisation=organisation, status=InvitationStatus.PENDING).only(
        "pk", "email", "roles", "created_at", "organisation_id"
    )
