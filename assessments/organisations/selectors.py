"""Reads about organisations and roles."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from assessments.organisations.models import Membership, Organisation


def organisations_for_user(*, user: User | AnonymousUser) -> QuerySet[Organisation]:
    if not user.is_authenticated:
        return Organisation.objects.none()
    return Organisation.objects.filter(memberships__user=user).distinct()


def roles_for_user(*, user: User | AnonymousUser, organisation: Organisation) -> set[str]:
    if not user.is_authenticated:
        return set()
    return set(Membership.objects.filter(user=user, organisation=organisation).values_list("role", flat=True))
