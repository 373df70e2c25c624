"""The organisation a signed-in person is working in, kept in the session."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.http import Http404, HttpRequest

from assessments.organisations.models import Organisation
from assessments.organisations.permissions import user_roles
from assessments.organisations.selectors import organisations_for_user

SESSION_KEY = "preflight_org"


def current_organisation(request: HttpRequest) -> Organisation:
    """The session's organisation if the user still belongs to it, else their first one."""
    user: User | AnonymousUser = request.user
    mine = organisations_for_user(user=user)
    slug = request.session.get(SESSION_KEY)
    organisation = (mine.filter(slug=slug).first() if slug else None) or mine.first()
    if organisation is None:
        raise Http404("You are not a member of any organisation.")
    return organisation


def organisation_choose(request: HttpRequest, slug: str) -> Organisation:
    organisation = organisations_for_user(user=request.user).filter(slug=slug).first()
    if organisation is None:
        raise Http404("No such organisation.")
    request.session[SESSION_KEY] = organisation.slug
    return organisation


def roles_in(request: HttpRequest, organisation: Organisation) -> set[str]:
    return user_roles(user=request.user, organisation=organisation)
