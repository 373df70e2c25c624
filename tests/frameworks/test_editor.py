"""The framework editor over HTTP: admins only, drafts editable, published versions frozen."""

from __future__ import annotations

import pytest
from django.urls import reverse

from assessments.frameworks.models import Criterion, Framework, FrameworkStatus


@pytest.fixture
def admin_client(client, users):
    client.force_login(users["admin"])
    return client


def test_an_admin_copies_edits_and_publishes_a_new_version(admin_client, framework):
    response = admin_client.post(reverse("framework-copy", args=[framework.pk]))
    draft = Framework.objects.get(status=FrameworkStatus.DRAFT)
    assert response["Location"] == reverse("framework-detail", args=[draft.pk])
    criterion = draft.criteria.get(code="EV-03")
    data = {
        "code": "EV-03", "title": "Quality bar of 98% met on the latest run", "severity": "blocking",
        "guidance": criterion.guidance, "cost_if_missing": criterion.cost_if_missing,
        "evidence_expected": criterion.evidence_expected, "check_kind": "eval_pass_rate",
        "max_evidence_age_days": 14, "applies_to_limited": "on", "applies_to_high": "on",
    }  # fmt: skip
    assert admin_client.post(reverse("criterion-edit", args=[criterion.pk]), data).status_code == 302
    gap = draft.gaps.get(key="evals")
    new = {**data, "code": "EV-09", "title": "Latency budget evaluated"}
    assert admin_client.post(reverse("criterion-new", args=[gap.pk]), new).status_code == 302
    page = admin_client.get(reverse("framework-publish", args=[draft.pk])).content.decode()
    assert "EV-09" in page and "Latency budget evaluated" in page  # added
    assert "Maximum evidence age (days)" in page and "Applies to minimal-risk pilots" in page  # changed fields
    assert admin_client.post(reverse("framework-publish", args=[draft.pk])).status_code == 302
    draft.refresh_from_db()
    framework.refresh_from_db()
    assert (draft.status, framework.status) == (FrameworkStatus.PUBLISHED, FrameworkStatus.RETIRED)


def test_editing_a_published_criterion_is_refused_and_changes_nothing(admin_client, framework):
    criterion = framework.criteria.get(code="EV-01")
    data = {"code": "EV-01", "title": "Hacked", "severity": "minor", "guidance": "g", "cost_if_missing": "c",
            "evidence_expected": "e", "max_evidence_age_days": 5, "applies_to_high": "on"}  # fmt: skip
    response = admin_client.post(reverse("criterion-edit", args=[criterion.pk]), data)
    assert response.status_code == 409  # the edit form is never shown for a published version
    assert "copy it to a new draft" in response.content.decode()
    assert Criterion.objects.get(pk=criterion.pk).title != "Hacked"
    assert admin_client.post(reverse("criterion-delete", args=[criterion.pk])).status_code == 302
    assert Criterion.objects.filter(pk=criterion.pk).exists()


def test_a_criterion_form_with_bad_input_explains_itself(admin_client, framework):
    admin_client.post(reverse("framework-copy", args=[framework.pk]))
    draft = Framework.objects.get(status=FrameworkStatus.DRAFT)
    gap = draft.gaps.get(key="cost")
    response = admin_client.post(
        reverse("criterion-new", args=[gap.pk]), {"code": "CO-01", "title": "", "severity": "urgent"}
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "This field is required." in body and "Select a valid choice" in body
    assert draft.criteria.count() == framework.criteria.count()


def test_non_admins_get_403_and_other_organisations_404(client, users, framework, other_org, default_spec):
    from assessments.audit.context import Actor
    from assessments.frameworks.services import framework_load

    client.force_login(users["owner"])
    assert client.get(reverse("framework-list")).status_code == 403
    assert client.post(reverse("framework-copy", args=[framework.pk])).status_code == 403
    foreign = framework_load(organisation=other_org, spec=default_spec, actor=Actor.system("t"))
    client.force_login(users["admin"])
    assert client.get(reverse("framework-detail", args=[foreign.pk])).status_code == 404


def test_the_detail_page_query_count_does_not_grow_with_criteria(
    admin_client, framework, django_assert_max_num_queries
):
    with django_assert_max_num_queries(14):
        assert admin_client.get(reverse("framework-detail", args=[framework.pk])).status_code == 200
