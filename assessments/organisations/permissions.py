"""Who may do what. Services call these before writing, so a forged request is
refused even when the page never showed the button.

- every member reads their organisation's pilots and frameworks; viewers only read;
- owners create pilots, and edit the pilots (profile, stage, stop conditions,
  responses, evidence, framework moves) they own — and nothing of other pilots,
  even a criterion they are named owner of there;
- delivery, security, risk and product (``REVIEWER_ROLES``) edit the responses
  (and their evidence) they are named owner of;
- admins edit frameworks, manage members and may edit any pilot's profile, stage,
  stop conditions and framework version; they edit responses only as one of the above.
Nobody sees or touches another organisation's data.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied

from assessments.audit.context import Actor
from assessments.organisations.models import REVIEWER_ROLES, Membership, Organisation, Role


def roles_of(*, user: User | AnonymousUser | int | None, organisation: Organisation | int) -> set[str]:
    """The roles ``user`` holds in ``organisation``; none for anonymous people and strangers.

    The one place roles are looked up. Views pass ``request.user``; services know their
    actor only by ``Actor.user_pk`` and often hold just a row's ``organisation_id``, so a
    primary key is accepted for either.
    """
    if user is not None and not isinstance(user, int):
        user = user.pk if user.is_authenticated else None
    if user is None:
        return set()
    organisation_id = organisation if isinstance(organisation, int) else organisation.pk
    return set(Membership.objects.filter(user_id=user, organisation_id=organisation_id).values_list("role", flat=True))


def _owns_pilot(user_pk: int | None, pilot: object) -> bool:
    return user_pk is not None and user_pk in {
        getattr(pilot, "technical_owner_id", None),
        getattr(pilot, "business_owner_id", None),
    }


def require_member(*, actor: Actor, organisation: Organisation | int) -> set[str]:
    """The actor's roles in ``organisation``; system jobs act with every right."""
    if actor.type == "system":
        return set(Role.values)
    roles = roles_of(user=actor.user_pk, organisation=organisation)
    if not roles:
        raise PermissionDenied("You are not a member of this organisation.")
    return roles


def can_create_pilot(roles: set[str]) -> bool:
    return bool(roles & {Role.OWNER, Role.ADMIN})


def can_edit_pilot(roles: set[str], *, actor: Actor, pilot: object) -> bool:
    return Role.ADMIN in roles or (Role.OWNER in roles and _owns_pilot(actor.user_pk, pilot)) or actor.type == "system"


def can_edit_response(roles: set[str], *, actor: Actor, pilot: object, response_owner_id: int | None) -> bool:
    """The pilot's own owners edit every criterion; a reviewer edits the ones they are named owner of.

    Being named owner of a criterion does not let a pilot owner edit *someone else's*
    pilot: criterion ownership is a reviewer's assignment.
    """
    if actor.type == "system":
        return True
    if Role.OWNER in roles and _owns_pilot(actor.user_pk, pilot):
        return True
    return bool(roles & REVIEWER_ROLES) and response_owner_id == actor.user_pk


def can_administer(roles: set[str]) -> bool:
    return Role.ADMIN in roles


def require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)
