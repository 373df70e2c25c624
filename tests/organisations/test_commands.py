"""Creating an organisation from the command line (the admin site cannot)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from assessments.audit.models import AuditChainHead, AuditEvent
from assessments.audit.verify import audit_verify
from assessments.frameworks.models import Framework
from assessments.organisations.models import Membership, Organisation


@pytest.mark.django_db
def test_it_creates_an_organisation_with_chain_framework_and_administrator():
    User.objects.create_user("founder", "f@x.test", "pw")
    call_command("organisation_create", "Initech", "initech", admin="founder")
    organisation = Organisation.objects.get(slug="initech")
    assert (
        AuditChainHead.objects.get(organisation=organisation).sequence
        == AuditEvent.objects.filter(organisation=organisation).count()
    )
    assert Framework.objects.filter(organisation=organisation, status="published").count() == 1
    assert Membership.objects.filter(organisation=organisation, user__username="founder", role="admin").exists()
    assert audit_verify(organisation=organisation, record_result=False).ok


@pytest.mark.django_db
def test_a_taken_slug_or_unknown_admin_is_a_clear_error_and_writes_nothing(org):
    User.objects.create_user("founder", "f@x.test", "pw")
    with pytest.raises(CommandError, match="Slug already exists"):
        call_command("organisation_create", "Another Acme", "acme", admin="founder")
    with pytest.raises(CommandError, match="No account with username 'ghost'"):
        call_command("organisation_create", "Ghost Org", "ghost", admin="ghost")
    assert list(Organisation.objects.values_list("slug", flat=True)) == ["acme"]
