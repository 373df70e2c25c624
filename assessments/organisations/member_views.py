"""Members of the current organisation: invite people and manage their roles (admins only)."""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from assessments.audit.context import Actor
from assessments.organisations.context import current_organisation
from assessments.organisations.forms import InviteForm, RoleForm
from assessments.organisations.models import Membership, Organisation
from assessments.organisations.permissions import can_administer, user_roles
from assessments.organisations.services import membership_grant, membership_revoke, user_create
from readiness.http import HtmxHttpRequest


def _admin_org(request: HtmxHttpRequest) -> Organisation:
    organisation = current_organisation(request)
    if not can_administer(user_roles(user=request.user, organisation=organisation)):
        raise PermissionDenied("Only administrators manage members.")
    return organisation


def _page(request: HtmxHttpRequest, organisation: Organisation, form: InviteForm, status: int = 200) -> HttpResponse:
    people: dict[int, tuple[User, list[Membership]]] = {}
    for membership in (
        Membership.objects.filter(organisation=organisation).select_related("user").order_by("user__username", "role")
    ):
        people.setdefault(membership.user_id, (membership.user, []))[1].append(membership)
    context = {"organisation": organisation, "people": list(people.values()), "form": form, "role_form": RoleForm()}
    return render(request, "organisations/members.html", context, status=status)


@require_GET
@login_required
def members(request: HtmxHttpRequest) -> HttpResponse:
    return _page(request, _admin_org(request), InviteForm())


@require_POST
@login_required
def member_invite(request: HtmxHttpRequest) -> HttpResponse:
    organisation = _admin_org(request)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _page(request, organisation, form, status=422)
    actor = Actor.for_user(request.user)
    data = form.cleaned_data
    try:
        with transaction.atomic():
            user = User.objects.filter(email__iexact=data["email"]).first()
            invited = user is None
            if user is None:
                user = user_create(
                    organisation=organisation,
                    username=data["username"],
                    email=data["email"],
                    # Nobody knows this password; the invitee sets their own from the email.
                    password=secrets.token_urlsafe(32),
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    actor=actor,
                )
            held = set(Membership.objects.filter(organisation=organisation, user=user).values_list("role", flat=True))
            for role in data["roles"]:
                if role not in held:
                    membership_grant(organisation=organisation, user=user, role=role, actor=actor)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return _page(request, organisation, form, status=422)
    if invited:
        reset = PasswordResetForm({"email": user.email})
        if reset.is_valid():
            reset.save(
                request=request,
                use_https=request.is_secure(),
                subject_template_name="registration/invite_subject.txt",
                email_template_name="registration/invite_email.html",
            )
        messages.success(request, f"Invited {user.email}; they will get an email to set their password.")
    else:
        messages.success(request, f"{user.get_username()} already had an account; roles granted.")
    return redirect("members")


@require_POST
@login_required
def member_role_grant(request: HtmxHttpRequest, user_id: int) -> HttpResponse:
    organisation = _admin_org(request)
    user = get_object_or_404(User.objects.filter(memberships__organisation=organisation).distinct(), pk=user_id)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            membership_grant(
                organisation=organisation, user=user, role=form.cleaned_data["role"], actor=Actor.for_user(request.user)
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("members")
        messages.success(request, f"{user.get_username()} is now also {form.cleaned_data['role']}.")
    return redirect("members")


@require_POST
@login_required
def member_role_revoke(request: HtmxHttpRequest, membership_id: int) -> HttpResponse:
    organisation = _admin_org(request)
    membership = get_object_or_404(
        Membership.objects.select_related("user", "organisation"), pk=membership_id, organisation=organisation
    )
    try:
        membership_revoke(membership=membership, actor=Actor.for_user(request.user))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _page(request, organisation, InviteForm(), status=409)
    messages.success(request, f"Removed the {membership.role} role from {membership.user.get_username()}.")
    return redirect("members")
