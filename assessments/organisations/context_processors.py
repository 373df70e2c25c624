from __future__ import annotations

from django.http import Http404, HttpRequest

from assessments.organisations.context import current_organisation, roles_in
from assessments.organisations.selectors import organisations_for_user


def membership(request: HttpRequest) -> dict[str, object]:
    """The current organisation, the user's roles in it, and their other organisations."""
    if not request.user.is_authenticated:
        return {}
    try:
        organisation = current_organisation(request)
    except Http404:
        return {"current_org": None, "current_roles": set(), "my_orgs": []}
    return {
        "current_org": organisation,
        "current_roles": roles_in(request, organisation),
        "my_orgs": list(organisations_for_user(user=request.user)),
    }
