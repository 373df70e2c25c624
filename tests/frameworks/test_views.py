"""The framework pages end to end: every member reads them, administrators alone edit; the
whole copy-edit-publish journey, what a frozen version refuses, accessible forms and a
flat query count."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.frameworks.models import Criterion, Framework, FrameworkStatus, Gap, RegulatoryMapping, RiskTier
from assessments.frameworks.services import criterion_create, framework_copy, framework_load, framework_publish
from assessments.organisations.models import Role

NON_ADMIN_ROLES = [role for role in Role.values if role != Role.ADMIN]


def _criterion_data(criterion: Criterion, **overrides: Any) -> dict[str, Any]:
    """The criterion form as a browser would submit it ("Does not apply" is the empty choice)."""
    fields: dict[str, Any] = {
        "code": criterion.code,
        "title": criterion.title,
        "severity_minimal": criterion.severity_minimal,
        "severity_limited": criterion.severity_limited,
        "severity_high": criterion.severity_high,
        "guidance": criterion.guidance,
        "cost_if_missing": criterion.cost_if_missing,
        "evidence_expected": criterion.evidence_expected,
        "check_kind": criterion.check_kind,
        "preflight_evidence": criterion.preflight_evidence,
        "max_evidence_age_days": criterion.max_evidence_age_days,
    }
    fields.update(overrides)
    return {name: ("on" if value is True else value) for name, value in fields.items() if value is not False}


def _snapshot(framework: Framework) -> list[tuple[Any, ...]]:
    gaps = list(framework.gaps.values_list("name", "weight", "description"))
    criteria = list(framework.criteria.order_by("code").values_list(*_CRITERION_COLUMNS))
    return [*gaps, *criteria]


_CRITERION_COLUMNS = (
    "code",
    "title",
    "severity_minimal",
    "severity_limited",
    "severity_high",
    "check_kind",
    "max_evidence_age_days",
    "applies_to_minimal",
    "applies_to_limited",
    "applies_to_high",
)


@pytest.fixture
def admin_client(client, users):
    client.force_login(users["admin"])
    return client


@pytest.fixture
def draft(framework, users) -> Framework:
    return framework_copy(framework=framework, actor=Actor.for_user(users["admin"]))


def _reading_routes(framework: Framework, draft: Framework) -> list[tuple[str, str]]:
    """(method, url) for every page any member reads, a draft's as well as a published version's."""
    return [
        ("get", reverse("framework-list")),
        ("get", reverse("framework-detail", args=[framework.pk])),
        ("get", reverse("framework-detail", args=[draft.pk])),
        ("get", reverse("criterion-detail", args=[framework.criteria.get(code="EV-01").pk])),
        ("get", reverse("criterion-detail", args=[draft.criteria.get(code="EV-01").pk])),
    ]


def _editing_routes(framework: Framework, draft: Framework) -> list[tuple[str, str]]:
    """(method, url) for every editor page, aimed at the draft where the page edits."""
    gap = draft.gaps.get(key="evals")
    criterion = draft.criteria.get(code="EV-01")
    return [
        ("post", reverse("framework-copy", args=[framework.pk])),
        ("get", reverse("framework-publish", args=[draft.pk])),
        ("post", reverse("framework-publish", args=[draft.pk])),
        ("get", reverse("gap-edit", args=[gap.pk])),
        ("post", reverse("gap-edit", args=[gap.pk])),
        ("get", reverse("criterion-edit", args=[criterion.pk])),
        ("post", reverse("criterion-edit", args=[criterion.pk])),
        ("get", reverse("criterion-new", args=[gap.pk])),
        ("post", reverse("criterion-new", args=[gap.pk])),
        ("post", reverse("criterion-delete", args=[criterion.pk])),
    ]


def _routes(framework: Framework, draft: Framework) -> list[tuple[str, str]]:
    return _reading_routes(framework, draft) + _editing_routes(framework, draft)


def test_an_admin_copies_edits_and_publishes_through_the_pages(admin_client, framework):
    response = admin_client.post(reverse("framework-copy", args=[framework.pk]))
    draft = Framework.objects.get(organisation=framework.organisation, status=FrameworkStatus.DRAFT)
    assert response.status_code == 302
    assert response["Location"] == reverse("framework-detail", args=[draft.pk])
    assert (draft.version, draft.based_on_id) == (framework.version + 1, framework.pk)

    gap = draft.gaps.get(key="cost")
    response = admin_client.post(
        reverse("gap-edit", args=[gap.pk]), {"name": "Cost and value", "weight": 12, "description": "Money."}
    )
    assert response.status_code == 302
    gap.refresh_from_db()
    assert (gap.name, gap.weight, gap.description) == ("Cost and value", 12, "Money.")

    criterion = draft.criteria.get(code="EV-02")
    data = _criterion_data(
        criterion,
        severity_minimal="",
        severity_limited="",
        severity_high="major",
        check_kind="eval_regression",
        max_evidence_age_days=45,
    )
    assert admin_client.post(reverse("criterion-edit", args=[criterion.pk]), data).status_code == 302
    criterion.refresh_from_db()
    assert (criterion.severity_by_tier, criterion.check_kind, criterion.max_evidence_age_days) == (
        {"high": "major"},
        "eval_regression",
        45,
    )
    assert criterion.risk_tiers == ["high"]
    assert (criterion.applies_to_minimal, criterion.applies_to_limited, criterion.severity_minimal) == (
        False,
        False,
        "",
    )

    new = _criterion_data(criterion, code="CO-90", title="Cost alert on budget burn", severity_minimal="major")
    assert admin_client.post(reverse("criterion-new", args=[gap.pk]), new).status_code == 302
    added = draft.criteria.get(code="CO-90")
    assert added.gap == gap

    doomed = draft.criteria.get(code="OW-01")
    assert admin_client.post(reverse("criterion-delete", args=[doomed.pk])).status_code == 302
    assert not draft.criteria.filter(code="OW-01").exists()

    page = admin_client.get(reverse("framework-publish", args=[draft.pk])).content.decode()
    added_part, _, rest = page.partition("<h3>Removed</h3>")
    removed_part, _, changed_part = rest.partition("<h3>Changed</h3>")
    assert "CO-90" in added_part and "Cost alert on budget burn" in added_part
    assert "OW-01" in removed_part
    assert "EV-02" in changed_part
    # The changed fields by the labels people read, never the column names.
    for label in (
        "Severity by risk tier",
        "Automated check",
        "Maximum evidence age (days)",
        "minimal blocking → does not apply, limited blocking → does not apply, high blocking → major",
    ):
        assert label in changed_part
    assert "max_evidence_age_days" not in changed_part and "applies_to_" not in changed_part
    assert f"Publish v{draft.version}" in page

    assert admin_client.post(reverse("framework-publish", args=[draft.pk])).status_code == 302
    draft.refresh_from_db()
    framework.refresh_from_db()
    assert (draft.status, framework.status) == (FrameworkStatus.PUBLISHED, FrameworkStatus.RETIRED)

    listing = admin_client.get(reverse("framework-list")).content.decode()
    assert f"v{framework.version}" in listing and f"v{draft.version}" in listing
    assert "Retired" in listing and "Published" in listing
    assert f'<td class="num">{draft.criteria.count()}</td>' in listing


def test_a_criterion_can_block_high_risk_pilots_and_be_minor_for_minimal_ones(admin_client, draft):
    criterion = draft.criteria.get(code="EV-03")
    data = _criterion_data(criterion, severity_minimal="minor", severity_limited="major", severity_high="blocking")
    assert admin_client.post(reverse("criterion-edit", args=[criterion.pk]), data).status_code == 302
    criterion.refresh_from_db()
    assert criterion.severity_by_tier == {"minimal": "minor", "limited": "major", "high": "blocking"}
    assert criterion.severity_summary == "Minimal: minor · Limited: major · High: blocking"
    page = admin_client.get(reverse("criterion-detail", args=[criterion.pk])).content.decode()
    assert 'Minimal: <span class="sev sev-minor">Minor</span>' in page
    assert 'High: <span class="sev sev-blocking">Blocking</span>' in page


def test_a_criterion_with_no_tier_at_all_is_refused_and_says_so(admin_client, draft):
    criterion = draft.criteria.get(code="EV-03")
    before = criterion.severity_by_tier
    data = _criterion_data(criterion, severity_minimal="", severity_limited="", severity_high="")
    response = admin_client.post(reverse("criterion-edit", args=[criterion.pk]), data)
    assert response.status_code == 422
    assert "Give the criterion a severity for at least one risk tier." in response.content.decode()
    criterion.refresh_from_db()
    assert criterion.severity_by_tier == before


def test_a_published_version_is_shown_read_only(admin_client, framework):
    page = admin_client.get(reverse("framework-detail", args=[framework.pk])).content.decode()
    assert "cannot change" in page
    assert "Copy to new draft" in page
    assert reverse("criterion-edit", args=[framework.criteria.first().pk]) not in page
    assert reverse("gap-edit", args=[framework.gaps.first().pk]) not in page
    assert "Review and publish" not in page


def test_a_draft_shows_every_criterion_with_its_mappings_and_edit_controls(admin_client, draft):
    page = admin_client.get(reverse("framework-detail", args=[draft.pk])).content.decode()
    for criterion in draft.criteria.all():
        assert reverse("criterion-edit", args=[criterion.pk]) in page
        assert reverse("criterion-delete", args=[criterion.pk]) in page
    mapping = RegulatoryMapping.objects.filter(criterion__framework=draft).first()
    assert mapping is not None
    assert f"{mapping.get_scheme_display()} {mapping.reference}" in page


@pytest.mark.parametrize(
    "route",
    ["gap-edit", "criterion-edit", "criterion-new", "criterion-delete", "framework-publish"],
)
def test_a_published_version_refuses_every_edit_and_nothing_changes(admin_client, framework, route):
    gap = framework.gaps.get(key="evals")
    criterion = framework.criteria.get(code="EV-01")
    url, data = {
        "gap-edit": (reverse("gap-edit", args=[gap.pk]), {"name": "Hacked", "weight": 1, "description": ""}),
        "criterion-edit": (
            reverse("criterion-edit", args=[criterion.pk]),
            _criterion_data(criterion, title="Hacked", severity_high="minor"),
        ),
        "criterion-new": (reverse("criterion-new", args=[gap.pk]), _criterion_data(criterion, code="EV-99")),
        "criterion-delete": (reverse("criterion-delete", args=[criterion.pk]), {}),
        "framework-publish": (reverse("framework-publish", args=[framework.pk]), {}),
    }[route]
    before, events = _snapshot(framework), AuditEvent.objects.count()

    response = admin_client.post(url, data)

    # Delete answers with a redirect and the refusal as a message; the edit forms are never shown
    # for a published version (a post is a 409; asking for the page leads to the read-only one);
    # publishing again answers 422 in place.
    if route == "criterion-delete":
        assert response.status_code == 302
    elif route in {"gap-edit", "criterion-edit", "criterion-new"}:
        assert response.status_code == 409
        assert "copy it to a new draft" in response.content.decode()
        shown = admin_client.get(url)
        read_only = "criterion-detail" if route == "criterion-edit" else "framework-detail"
        target = criterion.pk if route == "criterion-edit" else framework.pk
        assert (shown.status_code, shown["Location"]) == (302, reverse(read_only, args=[target]))
        page = admin_client.get(shown["Location"]).content.decode()
        assert "copy it to a new draft to change it" in page
        assert 'name="title"' not in page and 'name="weight"' not in page
    else:
        assert response.status_code == 422
        assert "copy it to a new draft" in response.content.decode()
    framework.refresh_from_db()
    assert framework.status == FrameworkStatus.PUBLISHED
    assert _snapshot(framework) == before
    assert AuditEvent.objects.count() == events


def test_refusing_a_delete_on_a_published_version_tells_the_admin_why(admin_client, framework):
    criterion = framework.criteria.get(code="EV-01")
    response = admin_client.post(reverse("criterion-delete", args=[criterion.pk]), follow=True)
    assert "copy it to a new draft" in response.content.decode()
    assert Criterion.objects.filter(pk=criterion.pk).exists()


# case: (what is edited, the out-of-range values, the field the error belongs beside)
OUT_OF_RANGE: dict[str, tuple[str, dict[str, Any], str]] = {
    "gap weight 0": ("gap", {"weight": 0}, "weight"),
    "gap weight 101": ("gap", {"weight": 101}, "weight"),
    "evidence age 0 days": ("criterion", {"max_evidence_age_days": 0}, "max_evidence_age_days"),
    "evidence age 5000 days": ("criterion", {"max_evidence_age_days": 5000}, "max_evidence_age_days"),
    "no risk tier": (
        "criterion",
        {"severity_minimal": "", "severity_limited": "", "severity_high": ""},
        "severity_high",
    ),
}


def _post_out_of_range(client: Any, draft: Framework, case: str) -> Any:
    kind, overrides, _ = OUT_OF_RANGE[case]
    if kind == "gap":
        gap = draft.gaps.get(key="evals")
        data = {"name": gap.name, "weight": gap.weight, "description": gap.description, **overrides}
        return client.post(reverse("gap-edit", args=[gap.pk]), data)
    criterion = draft.criteria.get(code="EV-01")
    return client.post(reverse("criterion-edit", args=[criterion.pk]), _criterion_data(criterion, **overrides))


@pytest.mark.parametrize("case", OUT_OF_RANGE)
def test_out_of_range_values_are_refused_with_an_alert_and_nothing_changes(admin_client, draft, case):
    before, events = _snapshot(draft), AuditEvent.objects.count()
    response = _post_out_of_range(admin_client, draft, case)
    assert response.status_code == 422
    assert 'class="error' in response.content.decode() and 'role="alert"' in response.content.decode()
    assert (_snapshot(draft), AuditEvent.objects.count()) == (before, events)


@pytest.mark.parametrize("case", ["gap weight 0", "evidence age 5000 days", "no risk tier"])
def test_out_of_range_values_are_explained_in_words_beside_the_field(admin_client, draft, case):
    _, _, field = OUT_OF_RANGE[case]
    body = _post_out_of_range(admin_client, draft, case).content.decode()
    assert "Constraint" not in body
    widget_end = r"(.*?</select>)" if field.startswith("severity_") else r"([^<]*</label>)?"
    assert re.search(rf'name="{field}"[^>]*>{widget_end}\s*<p class="error"', body, re.S)


def test_a_duplicate_code_in_a_draft_is_refused_with_a_message(admin_client, draft):
    gap = draft.gaps.get(key="evals")
    existing = draft.criteria.get(code="EV-01")
    count = draft.criteria.count()
    response = admin_client.post(reverse("criterion-new", args=[gap.pk]), _criterion_data(existing))
    assert response.status_code == 422
    assert "already exists" in response.content.decode()
    assert draft.criteria.count() == count


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_non_admins_get_403_on_every_editor_page_and_nothing_changes(client, users, framework, draft, role):
    routes = _editing_routes(framework, draft)
    before = (Framework.objects.count(), Criterion.objects.count(), _snapshot(draft), AuditEvent.objects.count())
    client.force_login(users[role])
    for method, url in routes:
        assert getattr(client, method)(url).status_code == 403, (method, url)
    draft.refresh_from_db()
    assert draft.status == FrameworkStatus.DRAFT
    after = (Framework.objects.count(), Criterion.objects.count(), _snapshot(draft), AuditEvent.objects.count())
    assert after == before


def test_signed_out_visitors_are_sent_to_sign_in(client, framework, draft):
    for method, url in _routes(framework, draft):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert "/accounts/login/" in response["Location"]


def test_another_organisations_frameworks_are_not_found(admin_client, org, other_org, default_spec):
    system = Actor.system("tests")
    foreign = framework_load(organisation=other_org, spec=default_spec, actor=system)
    foreign_draft = framework_copy(framework=foreign, actor=system)
    before = (Criterion.objects.count(), _snapshot(foreign_draft))
    for method, url in _routes(foreign, foreign_draft):
        if url == reverse("framework-list"):
            continue
        assert getattr(admin_client, method)(url).status_code == 404, (method, url)
    assert (Criterion.objects.count(), _snapshot(foreign_draft)) == before
    listing = admin_client.get(reverse("framework-list")).content.decode()
    assert reverse("framework-detail", args=[foreign.pk]) not in listing


def test_reading_pages_refuse_posts_and_actions_refuse_gets(admin_client, framework):
    assert admin_client.post(reverse("framework-list")).status_code == 405
    assert admin_client.post(reverse("framework-detail", args=[framework.pk])).status_code == 405
    assert admin_client.post(reverse("criterion-detail", args=[framework.criteria.first().pk])).status_code == 405
    assert admin_client.get(reverse("framework-copy", args=[framework.pk])).status_code == 405
    assert Framework.objects.count() == 1


class _Controls(HTMLParser):
    """Collects form controls, label targets, inline styles, inline handlers and scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str] = []
        self.labelled: set[str] = set()
        self.inline: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in {"input", "select", "textarea"} and attributes.get("type") not in {"hidden", "submit"}:
            self.controls.append(attributes.get("id") or f"<{tag} name={attributes.get('name')}> without id")
        if tag == "label" and attributes.get("for"):
            self.labelled.add(attributes["for"] or "")
        if tag == "script" and not attributes.get("src"):
            self.inline_scripts += 1
        self.inline.extend(f"{tag}[{name}]" for name in attributes if name == "style" or name.startswith("on"))


@pytest.mark.parametrize(
    "page", ["list", "detail", "criterion", "publish", "gap-edit", "criterion-edit", "criterion-new"]
)
def test_every_control_is_labelled_and_nothing_is_inline(admin_client, framework, draft, page):
    gap = draft.gaps.get(key="evals")
    url = {
        "list": reverse("framework-list"),
        "detail": reverse("framework-detail", args=[draft.pk]),
        "criterion": reverse("criterion-detail", args=[draft.criteria.get(code="EV-01").pk]),
        "publish": reverse("framework-publish", args=[draft.pk]),
        "gap-edit": reverse("gap-edit", args=[gap.pk]),
        "criterion-edit": reverse("criterion-edit", args=[draft.criteria.get(code="EV-01").pk]),
        "criterion-new": reverse("criterion-new", args=[gap.pk]),
    }[page]
    response = admin_client.get(url)
    assert response.status_code == 200
    parser = _Controls()
    parser.feed(response.content.decode())
    assert [c for c in parser.controls if c not in parser.labelled] == []
    assert parser.inline == []
    assert parser.inline_scripts == 0


def test_the_criterion_form_offers_every_editable_field(admin_client, draft):
    page = admin_client.get(reverse("criterion-edit", args=[draft.criteria.get(code="EV-03").pk])).content.decode()
    for name in (
        "code",
        "title",
        "severity_minimal",
        "severity_limited",
        "severity_high",
        "guidance",
        "cost_if_missing",
        "evidence_expected",
        "check_kind",
        "preflight_evidence",
        "max_evidence_age_days",
    ):
        assert f'name="{name}"' in page, name


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_detail_page_query_count_does_not_grow_with_criteria(
    admin_client, framework, draft, users, django_assert_max_num_queries
):
    small = _queries(admin_client, reverse("framework-detail", args=[draft.pk]))
    admin = Actor.for_user(users["admin"])
    for gap in Gap.objects.filter(framework=draft):
        for n in range(5):
            criterion = criterion_create(
                gap=gap, actor=admin, code=f"{gap.key[:2].upper()}-X{n}", title="More", guidance="g",
                cost_if_missing="c", severity_minimal="minor", severity_limited="minor", severity_high="minor",
                evidence_expected="e",
            )  # fmt: skip
            RegulatoryMapping.objects.create(
                criterion=criterion, scheme="nist_ai_rmf", reference="MEASURE 2.3", title="t"
            )
    assert draft.criteria.count() == framework.criteria.count() + 30
    assert _queries(admin_client, reverse("framework-detail", args=[draft.pk])) == small
    with django_assert_max_num_queries(12):
        admin_client.get(reverse("framework-detail", args=[draft.pk]))


def test_the_list_page_query_count_does_not_grow_with_versions(
    admin_client, framework, users, django_assert_max_num_queries
):
    one = _queries(admin_client, reverse("framework-list"))
    admin = Actor.for_user(users["admin"])
    for _ in range(3):
        framework = framework_publish(framework=framework_copy(framework=framework, actor=admin), actor=admin)
    assert _queries(admin_client, reverse("framework-list")) == one
    with django_assert_max_num_queries(9):
        admin_client.get(reverse("framework-list"))


# --- reading: every member -----------------------------------------------------------------


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_every_member_reads_every_framework_page_without_edit_controls(client, users, framework, draft, role):
    client.force_login(users[role])
    for _, url in _reading_routes(framework, draft):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        for control in ("Copy to new draft", "Review and publish", "Edit gap", "Add criterion", "/edit/", "/delete/"):
            assert control not in page, (url, control)


def test_the_framework_page_shows_each_criterion_in_full_and_links_to_its_own_page(client, users, framework):
    client.force_login(users["viewer"])
    page = client.get(reverse("framework-detail", args=[framework.pk])).content.decode()
    for criterion in framework.criteria.prefetch_related("mappings"):
        assert reverse("criterion-detail", args=[criterion.pk]) in page
        for text in (criterion.guidance, criterion.evidence_expected, criterion.cost_if_missing):
            assert escape(text) in page
        for tier in criterion.risk_tiers:
            assert criterion.severity_label_for(tier) in page
        if criterion.check_kind:
            assert criterion.get_check_kind_display() in page
        for mapping in criterion.mappings.all():
            assert f"{mapping.get_scheme_display()} {mapping.reference}" in page


def test_a_criterion_page_shows_everything_about_it_read_only(client, users, framework):
    criterion = framework.criteria.exclude(check_kind="").prefetch_related("mappings").first()
    assert criterion is not None and criterion.mappings.exists()
    client.force_login(users["viewer"])
    response = client.get(reverse("criterion-detail", args=[criterion.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    for text in (
        criterion.code,
        criterion.title,
        criterion.gap.name,
        *(f"{tier.label}: " for tier in RiskTier),
        *(criterion.severity_label_for(tier) for tier in criterion.risk_tiers),
        criterion.get_check_kind_display(),
        "Maximum evidence age (days)",
        str(criterion.max_evidence_age_days),
        "cannot change",
    ):
        assert escape(text) in page, text
    for text in (criterion.guidance, criterion.evidence_expected, criterion.cost_if_missing):
        assert escape(text).replace("\n", "<br>") in page
    for mapping in criterion.mappings.all():
        assert escape(mapping.reference) in page and escape(mapping.title) in page
    assert "<form" not in page.split('id="main"')[1]


def test_an_admin_on_a_draft_criterion_page_may_edit_or_delete_it(admin_client, framework, draft):
    criterion = draft.criteria.get(code="EV-01")
    page = admin_client.get(reverse("criterion-detail", args=[criterion.pk])).content.decode()
    assert reverse("criterion-edit", args=[criterion.pk]) in page
    assert reverse("criterion-delete", args=[criterion.pk]) in page
    published = admin_client.get(reverse("criterion-detail", args=[framework.criteria.get(code="EV-01").pk]))
    assert "/edit/" not in published.content.decode() and "/delete/" not in published.content.decode()


def test_the_criterion_page_query_count_is_small(client, users, framework, django_assert_max_num_queries):
    url = reverse("criterion-detail", args=[framework.criteria.first().pk])
    client.force_login(users["viewer"])
    with django_assert_max_num_queries(10):
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("role", [*NON_ADMIN_ROLES, Role.ADMIN])
def test_frameworks_are_in_the_top_navigation_for_every_member(client, users, role):
    client.force_login(users[role])
    page = client.get(reverse("home")).content.decode()
    assert f'<a href="{reverse("framework-list")}">Frameworks</a>' in page
    assert (f'<a href="{reverse("members")}">Members</a>' in page) is (role == Role.ADMIN)


def test_a_criterion_form_with_bad_input_explains_itself(admin_client, draft):
    gap = draft.gaps.get(key="cost")
    count = draft.criteria.count()
    response = admin_client.post(
        reverse("criterion-new", args=[gap.pk]), {"code": "CO-01", "title": "", "severity_high": "urgent"}
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "This field is required." in body and "Select a valid choice" in body
    assert draft.criteria.count() == count
