"""The organisation a signed-in person is working in, kept in the session."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.http import Http404, HttpRequest

from assessments.organisations.models import Organisation
from assessments.organisations.permissions import roles_of
from assessments.organisations.selectors import organisations_for_user

SESSION_KEY = "preflight_org"


class OrganisationChoiceNeeded(Exception):
    """The person belongs to several organisations and has not chosen which one to look at."""


def current_organisation(request: HttpRequest, *, mine: list[Organisation] | None = None) -> Organisation:
    """The organisation chosen in this session, or the only one the person belongs to.

    Someone in several organisations is never dropped into one of them silently (say,
    the one that just added them): they are asked to choose, and the header shows
    the choice from then on.
    """
    user: User | AnonymousUser = request.user
    if mine is None:
        mine = list(organisations_for_user(user=user))
    slug = request.session.get(SESSION_KEY)
    chosen = next((org for org in mine if org.slug == slug), None) if slug else None
    if chosen is not None:
        return chosen
    if not mine:
        raise Http404("You are not a member of any organisation.")
    if len(mine) > 1:
        raise OrganisationChoiceNeeded()
    return mine[0]


def organisation_choose(request: HttpRequest, slug: str) -> Organisation:
    organisation = organisations_for_user(user=request.user).filter(slug=slug).first()
    if organisation is None:
        raise Http404("No such organisation.")
    request.session[SESSION_KEY] = organisation.slug
    return organisation


def request_roles(request: HttpRequest, organisation: Organisation) -> set[str]:
    """``roles_of`` for the signed-in person, asked once per request and organisation
    (the page and its header both need it)."""
    known: dict[int, set[str]] = request.__dict__.setdefault("_preflight_roles", {})
    if organisation.pk not in known:
        known[organisation.pk] = roles_of(user=request.user, organisation=organisation)
    return known[organisation.pk]
