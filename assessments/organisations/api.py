"""API access rules shared by every room's API: members of some organisation only."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from assessments.organisations.models import Membership


class IsMember(BasePermission):
    """Signed in and holding at least one role somewhere; object rules live in the services."""

    message = "Sign in as a member of an organisation to use the API."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and Membership.objects.filter(user_id=user.pk).exists())
