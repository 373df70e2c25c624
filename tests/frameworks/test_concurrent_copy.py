"""Two administrators pressing "Copy to new draft" at the same moment (real PostgreSQL, real requests)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from assessments.audit.context import Actor
from assessments.frameworks.models import Framework
from assessments.frameworks.services import FrameworkDraftExistsError, framework_copy
from tests.concurrency import run_together


def test_a_second_copy_while_a_draft_is_open_is_refused_with_the_draft_named(framework, users):
    admin = Actor.for_user(users["admin"])
    draft = framework_copy(framework=framework, actor=admin)
    with pytest.raises(FrameworkDraftExistsError, match=rf"v{draft.version} is already a draft"):
        framework_copy(framework=framework, actor=admin)
    assert Framework.objects.filter(status="draft").count() == 1


def test_copying_again_in_the_browser_leads_to_the_open_draft(client, framework, users):
    client.force_login(users["admin"])
    first = client.post(reverse("framework-copy", args=[framework.pk]))
    second = client.post(reverse("framework-copy", args=[framework.pk]), follow=True)
    assert second.status_code == 200
    assert second.redirect_chain[-1][0] == first["Location"]
    assert "is already a draft" in second.content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_give_one_draft_and_one_clear_refusal(framework, users):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are what is tested; SQLite serialises writers anyway")
    url = reverse("framework-copy", args=[framework.pk])
    for attempt in range(6):
        Framework.objects.filter(status="draft").delete()

        def press() -> int:
            browser = Client()
            browser.force_login(users["admin"])
            return browser.post(url).status_code

        statuses = run_together(press, press)
        assert all(isinstance(s, int) for s in statuses), statuses
        assert sorted(statuses) == [302, 302], f"attempt {attempt}: {statuses}"
        assert Framework.objects.filter(status="draft").count() == 1
