"""Every form and edit link a person is shown can be used by them; nobody is shown one that is refused.

The test reads the pilot page as each role sees it, submits every POST form with the
values it was rendered with, and follows every link to an editing page.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from assessments.audit.context import Actor
from assessments.organisations.models import Role
from assessments.organisations.services import membership_grant, user_create
from assessments.pilots.models import Pilot, Response
from assessments.pilots.services import pilot_create, response_update, stop_condition_add

EDIT_LINK_PREFIXES = ("/pilots/", "/responses/")
NOT_EDITING = ("/export.", "/download/")


class Forms(HTMLParser):
    """Collects POST forms (action and default field values) and links from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.links: list[str] = []
        self._form: tuple[str, dict[str, str]] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._form = (a.get("action", ""), {})
        elif tag == "a" and a.get("href", "").startswith(EDIT_LINK_PREFIXES):
            self.links.append(a["href"])
        elif self._form is not None and tag in {"input", "textarea"} and a.get("name"):
            if a.get("type") not in {"checkbox", "radio", "file"} or "checked" in a:
                self._form[1][a["name"]] = a.get("value", "")
        elif self._form is not None and tag == "select":
            self._select = a.get("name")
        elif self._form is not None and tag == "option" and self._select:
            fields = self._form[1]
            if "selected" in a or self._select not in fields:
                fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None
        elif tag == "select":
            self._select = None


@pytest.fixture
def world(framework, users, owner_actor):
    """Olivia's pilot, where Omar (another pilot owner) and Sam (security) are each named owner of one criterion."""
    org = framework.organisation
    system = Actor.system("tests")
    omar = user_create(organisation=org, username="omar", email="omar@acme.test", password="pw", actor=system)
    membership_grant(organisation=org, user=omar, role=Role.OWNER, actor=system)
    pilot = pilot_create(organisation=org, actor=owner_actor, name="Olivia's pilot", technical_owner=users["owner"])
    stop_condition_add(
        pilot=pilot,
        actor=owner_actor,
        condition="Pause on complaints",
        metric="complaints",
        comparator="gt",
        threshold=3,
    )
    responses = list(Response.objects.filter(assessment__pilot=pilot).order_by("pk")[:2])
    response_update(response=responses[0], actor=owner_actor, expected_version=1, owner=omar)
    response_update(response=responses[1], actor=owner_actor, expected_version=1, owner=users["security"])
    return {"pilot": pilot, "omar": omar, "omar_row": responses[0], "sam_row": responses[1], **users}


def test_a_pilot_owner_named_on_someone_elses_pilot_cannot_edit_it(client, world):
    from assessments.pilots.services import evidence_add

    row = Response.objects.get(pk=world["omar_row"].pk)
    omar = Actor.for_user(world["omar"])
    with pytest.raises(PermissionDenied):
        response_update(response=row, actor=omar, expected_version=row.version, status="met")
    with pytest.raises(PermissionDenied):
        evidence_add(response=row, actor=omar, kind="note", title="t", note="n", effective_date=row.updated_at.date())
    client.force_login(world["omar"])
    page = client.get(reverse("pilot", args=[world["pilot"].pk])).content.decode()
    assert f'action="{reverse("response-save", args=[row.pk])}"' not in page
    assert client.get(reverse("evidence-new", args=[row.pk])).status_code == 403


def test_a_reviewer_named_owner_of_a_criterion_edits_it(client, world):
    row = Response.objects.get(pk=world["sam_row"].pk)
    client.force_login(world["security"])
    page = client.get(reverse("pilot", args=[world["pilot"].pk])).content.decode()
    assert f'action="{reverse("response-save", args=[row.pk])}"' in page


@pytest.mark.parametrize("who", ["owner", "omar", "delivery", "security", "risk", "product", "viewer", "admin"])
def test_every_form_and_edit_link_shown_is_one_the_person_may_use(client, world, who):
    client.force_login(world[who])
    pilot: Pilot = world["pilot"]
    page = client.get(reverse("pilot", args=[pilot.pk]))
    assert page.status_code == 200
    parsed = Forms()
    parsed.feed(page.content.decode())
    refused = []
    for action, fields in parsed.forms:
        if action in {reverse("logout")} or action.startswith("/org/"):
            continue
        answer = client.post(action, fields)
        if answer.status_code in {403, 404, 405} or answer.status_code >= 500:
            refused.append(f"POST {action} -> {answer.status_code}")
    for href in parsed.links:
        if any(part in href for part in NOT_EDITING) or href == reverse("pilot", args=[pilot.pk]):
            continue
        answer = client.get(href)
        if answer.status_code in {403, 404, 405} or answer.status_code >= 500:
            refused.append(f"GET {href} -> {answer.status_code}")
    assert not refused, f"{who} was shown forms or links that then refused them: {refused}"
    if who in {"viewer", "delivery", "risk", "product", "omar"}:
        assert not [a for a, _ in parsed.forms if "/responses/" in a or "/stage/" in a], who


@pytest.mark.parametrize("route", ["pilot-edit", "assessment-migrate"])
@pytest.mark.parametrize("who", ["omar", "viewer", "security"])
def test_editing_pages_are_refused_on_get_to_people_who_cannot_submit_them(client, world, route, who):
    client.force_login(world[who])
    answer = client.get(reverse(route, args=[world["pilot"].pk]))
    assert answer.status_code == 403
    body = answer.content.decode()
    assert "Only the owners of Olivia" in body and "administrators change it" in body
