from __future__ import annotations

from django.http import Http404, HttpRequest

from assessments.organisations.context import (
    OrganisationChoiceNeeded,
    current_organisation,
    request_organisations,
    request_roles,
)
from assessments.organisations.selectors import invitations_pending


def membership(request: HttpRequest) -> dict[str, object]:
    """The current organisation, the user's roles in it, and their other organisations."""
    if not request.user.is_authenticated:
        return {}
    headers = request.headers
    if headers.get("HX-Request") == "true" and not (
        headers.get("HX-Boosted") or headers.get("HX-History-Restore-Request")
    ):
        # An htmx fragment (a row, a form) has no header to fill: spare its queries.
        return {}
    mine = request_organisations(request)
    invitations = invitations_pending(user=request.user).count()
    try:
        organisation = current_organisation(request, mine=mine)
    except (Http404, OrganisationChoiceNeeded):
        return {"current_org": None, "current_roles": set(), "my_orgs": mine, "pending_invitations": invitations}
    return {
        "current_org": organisation,
        "current_roles": request_roles(request, organisation),
        "my_orgs": mine,
        "pending_invitations": invitations,
    }
