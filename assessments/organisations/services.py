"""Creating organisations and managing who holds which role."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from assessments.audit.context import Actor
from assessments.audit.services import audit_chain_start, audit_record
from assessments.organisations.models import Membership, Organisation, Role
from assessments.organisations.permissions import can_administer, require, require_member


@transaction.atomic
def organisation_create(*, name: str, slug: str, actor: Actor) -> Organisation:
    """Create an organisation with an empty audit chain; its first event records the creation."""
    organisation = Organisation(name=name, slug=slug)
    organisation.full_clean()
    organisation.save()
    audit_chain_start(organisation=organisation)
    audit_record(
        organisation=organisation,
        actor=actor,
        action="organisation.created",
        object_type="organisation",
        object_id=organisation.pk,
        changes={"name": [None, name], "slug": [None, slug]},
    )
    return organisation


def _require_admin(actor: Actor, organisation: Organisation) -> None:
    roles = require_member(actor=actor, organisation=organisation)
    require(can_administer(roles), "Only administrators manage members.")


@transaction.atomic
def membership_grant(*, organisation: Organisation, user: User, role: str, actor: Actor) -> Membership:
    """Give ``user`` ``role`` in ``organisation``; granting a role already held is an error."""
    _lock_organisation(organisation)
    _require_admin(actor, organisation)
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'."})
    if Membership.objects.filter(organisation=organisation, user=user, role=role).exists():
        raise ValidationError({"role": f"{user.get_username()} already holds the role '{role}'."})
    membership = Membership.objects.create(organisation=organisation, user=user, role=role)
    audit_record(
        organisation=organisation,
        actor=actor,
        action="membership.granted",
        object_type="membership",
        object_id=membership.pk,
        changes={"user": [None, user.get_username()], "role": [None, role]},
    )
    return membership


def _lock_organisation(organisation: Organisation) -> None:
    """Serialise membership changes in one organisation (a row lock on PostgreSQL).

    Without it two administrators removing each other at the same moment both see
    two administrators, both succeed, and the organisation is left with none.
    """
    Organisation.objects.select_for_update().filter(pk=organisation.pk).first()


@transaction.atomic
def membership_revoke(*, membership: Membership, actor: Actor) -> None:
    """Take a role away. The last administrator cannot be removed, even by a concurrent request."""
    organisation = membership.organisation
    _lock_organisation(organisation)
    # Checked after the lock: the actor may have lost the admin role a moment ago.
    _require_admin(actor, organisation)
    if not Membership.objects.filter(pk=membership.pk).exists():
        raise ValidationError("That role was already removed.")
    if (
        membership.role == Role.ADMIN
        and Membership.objects.filter(organisation=organisation, role=Role.ADMIN).count() == 1
    ):
        raise ValidationError("The last administrator cannot be removed.")
    username = membership.user.get_username()
    role = membership.role
    membership_id = membership.pk
    membership.delete()
    audit_record(
        organisation=organisation,
        actor=actor,
        action="membership.revoked",
        object_type="membership",
        object_id=membership_id,
        changes={"user": [username, None], "role": [role, None]},
    )


@transaction.atomic
def user_create(
    *,
    organisation: Organisation,
    username: str,
    email: str,
    password: str,
    actor: Actor,
    first_name: str = "",
    last_name: str = "",
) -> User:
    """Create a sign-in account for a person joining ``organisation`` (roles are granted separately)."""
    _require_admin(actor, organisation)
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"The username '{username}' is taken."})
    user = User.objects.create_user(
        username=username, email=email, password=password, first_name=first_name, last_name=last_name
    )
    audit_record(
        organisation=organisation,
        actor=actor,
        action="user.created",
        object_type="user",
        object_id=user.pk,
        changes={"username": [None, username], "email": [None, email]},
    )
    return user
