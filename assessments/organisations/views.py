"""Members of the current organisation: invite people and manage their roles (admins only)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from assessments.audit.context import Actor
from assessments.organisations.context import current_organisation, organisation_choose
from assessments.organisations.forms import InviteForm, RoleForm
from assessments.organisations.models import Invitation, Membership, Organisation
from assessments.organisations.permissions import can_administer, roles_of
from assessments.organisations.selectors import (
    invitations_open_for_organisation,
    invitations_pending,
    organisations_for_user,
)
from assessments.organisations.services import (
    invitation_accept,
    invitation_decline,
    invitation_revoke,
    member_invite,
    membership_grant,
    membership_revoke,
)
from readiness.http import HtmxHttpRequest, form_attach_errors


def _admin_org(request: HtmxHttpRequest) -> Organisation:
    organisation = current_organisation(request)
    if not can_administer(roles_of(user=request.user, organisation=organisation)):
        raise PermissionDenied("Only administrators manage members.")
    return organisation


def _page(request: HtmxHttpRequest, organisation: Organisation, form: InviteForm, status: int = 200) -> HttpResponse:
    people: dict[int, tuple[User, list[Membership]]] = {}
    for membership in (
        Membership.objects.filter(organisation=organisation).select_related("user").order_by("user__username", "role")
    ):
        people.setdefault(membership.user_id, (membership.user, []))[1].append(membership)
    context = {
        "organisation": organisation,
        "people": list(people.values()),
        "invitations": list(invitations_open_for_organisation(organisation=organisation)),
        "form": form,
        "role_form": RoleForm(),
    }
    return render(request, "organisations/members.html", context, status=status)


@require_GET
@login_required
def members(request: HtmxHttpRequest) -> HttpResponse:
    return _page(request, _admin_org(request), InviteForm())


def _set_password_mail(request: HtmxHttpRequest, user: User) -> None:
    """Django's reset email, worded as an invitation: it needs the request for the link's host and scheme."""
    reset = PasswordResetForm({"email": user.email})
    if reset.is_valid():
        reset.save(
            request=request,
            use_https=request.is_secure(),
            subject_template_name="registration/invite_subject.txt",
            email_template_name="registration/invite_email.html",
        )


@require_POST
@login_required
def member_invite_view(request: HtmxHttpRequest) -> HttpResponse:
    """Invite by email; the service decides between a new account, more roles and an invitation."""
    organisation = _admin_org(request)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _page(request, organisation, form, status=422)
    data = form.cleaned_data
    try:
        outcome = member_invite(
            organisation=organisation,
            email=data["email"],
            username=data["username"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            roles=data["roles"],
            actor=Actor.for_user(request.user),
            accept_url=request.build_absolute_uri(reverse("invitations")),
        )
    except ValidationError as exc:
        form_attach_errors(form, exc)
        return _page(request, organisation, form, status=422)
    if outcome.kind == "roles_added" and outcome.user is not None:
        added = "roles added" if outcome.memberships else "they already hold those roles"
        messages.success(request, f"{outcome.user.get_username()} is already a member; {added}.")
        return redirect("members")
    if outcome.kind == "account_created" and outcome.user is not None:
        _set_password_mail(request, outcome.user)
    # The same words either way: whether the address already has an account elsewhere
    # is not this organisation's business.
    messages.success(request, f"Invitation sent to {data['email']}.")
    return redirect("members")


@require_POST
@login_required
def invitation_revoke_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    organisation = _admin_org(request)
    invitation = get_object_or_404(Invitation, pk=pk, organisation=organisation)
    try:
        invitation_revoke(invitation=invitation, actor=Actor.for_user(request.user))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Withdrew the invitation to {invitation.email}.")
    return redirect("members")


@require_GET
@login_required
def invitations(request: HtmxHttpRequest) -> HttpResponse:
    """The signed-in person's invitations waiting for an answer."""
    return render(
        request, "organisations/invitations.html", {"invitations": list(invitations_pending(user=request.user))}
    )


@require_POST
@login_required
def invitation_answer(request: HtmxHttpRequest, pk: int, answer: str) -> HttpResponse:
    invitation = get_object_or_404(invitations_pending(user=request.user), pk=pk)
    actor = Actor.for_user(request.user)
    user = request.user
    assert isinstance(user, User)
    try:
        if answer == "accept":
            invitation_accept(invitation=invitation, user=user, actor=actor)
        else:
            invitation_decline(invitation=invitation, user=user, actor=actor)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("invitations")
    if answer == "accept":
        organisation_choose(request, invitation.organisation.slug)
        messages.success(request, f"You joined {invitation.organisation.name}; you are now looking at it.")
        return redirect("home")
    messages.success(request, f"Declined the invitation from {invitation.organisation.name}.")
    return redirect("invitations")


@require_GET
@login_required
def organisation_choose_view(request: HtmxHttpRequest) -> HttpResponse:
    """People in several organisations pick the one they are looking at."""
    next_url = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    return render(
        request,
        "organisations/choose.html",
        {"organisations": list(organisations_for_user(user=request.user)), "next": next_url},
    )


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
