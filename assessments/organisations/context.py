"""The organisation a signed-in person is working in, kept in the session."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.http import Http404, HttpRequest

from assessments.organisations.models import Membership, Organisation
from assessments.organisations.selectors import organisations_for_user

SESSION_KEY = "preflight_org"


class OrganisationChoiceNeeded(Exception):
    """The person belongs to several organisations and has not chosen which one to look at."""


@dataclass(frozen=True)
class _Memberships:
    organisations: list[Organisation]
    roles: dict[int, frozenset[str]]


def _request_memberships(request: HttpRequest) -> _Memberships:
    """The signed-in person's organisations and their roles in each: one query per request
    (the page, its permission checks and its header all need them)."""
    known: _Memberships | None = request.__dict__.get("_preflight_memberships")
    if known is None:
        organisations: dict[int, Organisation] = {}
        roles: dict[int, set[str]] = defaultdict(set)
        if request.user.is_authenticated:
            rows = Membership.objects.filter(user_id=request.user.pk).select_related("organisation")
            for membership in rows.order_by("organisation__name", "organisation_id"):
                organisations.setdefault(membership.organisation_id, membership.organisation)
                roles[membership.organisation_id].add(membership.role)
        known = _Memberships(list(organisations.values()), {pk: frozenset(r) for pk, r in roles.items()})
        request.__dict__["_preflight_memberships"] = known
    return known


def request_organisations(request: HttpRequest) -> list[Organisation]:
    """The signed-in person's organisations, by name."""
    return _request_memberships(request).organisations


def current_organisation(request: HttpRequest, *, mine: list[Organisation] | None = None) -> Organisation:
    """The organisation chosen in this session, or the only one the person belongs to.

    Someone in several organisations is never dropped into one of them silently (say,
    the one that just added them): they are asked to choose, and the header shows
    the choice from then on.
    """
    if mine is None:
        mine = request_organisations(request)
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
    """``roles_of`` for the signed-in person, read with their organisations once per request.
    Services check roles afresh (``roles_of``) inside their own transaction."""
    return set(_request_memberships(request).roles.get(organisation.pk, frozenset()))
