"""The pilot pages over HTTP: access rules, inline saves, evidence, hostile input, query budgets."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assessments.audit.context import Actor
from assessments.pilots.models import Evidence, Pilot, Response
from assessments.pilots.services import pilot_create, response_update

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage",
        technical_owner=users["owner"],
        risk_tier="high",
    )


def _first_response(pilot: Pilot, code: str = "EV-01") -> Response:
    return Response.objects.select_related("criterion").get(assessment__pilot=pilot, criterion__code=code)


def _post_response(client, response: Response, **fields):
    data = {f"r{response.pk}-{k}": v for k, v in fields.items()}
    data.setdefault(f"r{response.pk}-version", response.version)
    data.setdefault(f"r{response.pk}-status", response.status)
    return client.post(reverse("response-save", args=[response.pk]), data, **HTMX)


def test_pages_need_sign_in(client, pilot):
    for url in (reverse("home"), reverse("pilot", args=[pilot.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def test_another_organisations_pilot_is_not_found(client, pilot, other_org, framework):
    from assessments.organisations.services import membership_grant, user_create

    outsider = user_create(
        organisation=other_org, username="mallory", email="m@x.test", password="pw", actor=Actor.system("t")
    )
    membership_grant(organisation=other_org, user=outsider, role="admin", actor=Actor.system("t"))
    client.force_login(outsider)
    assert client.get(reverse("pilot", args=[pilot.pk])).status_code == 404
    response = _first_response(pilot)
    assert _post_response(client, response, status="met").status_code == 404
    assert "Claims triage" not in client.get(reverse("home")).content.decode()


def test_an_owner_saves_a_row_inline_and_gets_the_new_scores(client, users, pilot):
    client.force_login(users["owner"])
    response = _first_response(pilot)
    result = _post_response(client, response, status="met", justification="Golden set of 400 cases")
    assert result.status_code == 200
    body = result.content.decode()
    assert f'id="row-{response.pk}"' in body
    assert 'id="scores" class="scores card" hx-swap-oob="true"' in body
    response.refresh_from_db()
    assert (response.status, response.version) == ("met", 2)


def test_not_applicable_without_reason_is_a_422_with_the_message_and_nothing_saved(client, users, pilot):
    client.force_login(users["owner"])
    response = _first_response(pilot)
    result = _post_response(client, response, status="not_applicable", justification="  ")
    assert result.status_code == 422
    assert "Say why this criterion does not apply." in result.content.decode()
    response.refresh_from_db()
    assert (response.status, response.version) == ("not_started", 1)


def test_a_viewer_sees_no_form_and_a_forged_save_is_refused(client, users, pilot):
    client.force_login(users["viewer"])
    page = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert "crit-form" not in page
    response = _first_response(pilot)
    assert _post_response(client, response, status="met").status_code == 403
    response.refresh_from_db()
    assert response.status == "not_started"


def test_the_second_of_two_concurrent_saves_gets_a_conflict_showing_the_first(client, users, pilot, owner_actor):
    client.force_login(users["owner"])
    response = _first_response(pilot)
    response_update(
        response=response, actor=owner_actor, expected_version=1, status="not_met", justification="No set yet"
    )
    result = _post_response(client, response, status="met", version=1)
    assert result.status_code == 409
    body = result.content.decode()
    assert "edit conflict" in body
    assert "Not met" in body
    response.refresh_from_db()
    assert (response.status, response.version) == ("not_met", 2)


def test_hostile_notes_render_inert(client, users, pilot):
    client.force_login(users["owner"])
    response = _first_response(pilot)
    note = '<script>alert(1)</script> [click](javascript:alert(2)) <img src=x onerror="alert(3)"> **bold**'
    result = client.post(
        reverse("evidence-new", args=[response.pk]),
        {"kind": "note", "title": "Review notes", "note": note, "effective_date": "2026-11-01"},
        **HTMX,
    )
    assert result.status_code == 200
    body = result.content.decode()
    assert "<script>alert(1)" not in body
    assert "javascript:" not in body
    assert "onerror" not in body
    assert "<strong>bold</strong>" in body


def test_a_javascript_link_is_refused(client, users, pilot):
    client.force_login(users["owner"])
    response = _first_response(pilot)
    result = client.post(
        reverse("evidence-new", args=[response.pk]),
        {"kind": "link", "title": "x", "url": "javascript:alert(1)", "effective_date": "2026-11-01"},
        **HTMX,
    )
    assert result.status_code == 422
    assert Evidence.objects.count() == 0


def test_an_upload_one_byte_over_the_limit_is_refused_clearly(client, users, pilot, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.FILE_UPLOAD_MAX_BYTES = 1000
    client.force_login(users["owner"])
    response = _first_response(pilot)
    ok = SimpleUploadedFile("limit.pdf", b"%PDF-1.7\n" + b"x" * 991, content_type="application/pdf")
    over = SimpleUploadedFile("over.pdf", b"%PDF-1.7\n" + b"x" * 992, content_type="application/pdf")
    url = reverse("evidence-new", args=[response.pk])
    result = client.post(url, {"kind": "file", "title": "over", "file": over, "effective_date": "2026-11-01"}, **HTMX)
    assert result.status_code == 422
    assert "over.pdf is 1,001 bytes; the limit is 1,000 bytes" in result.content.decode()
    assert Evidence.objects.count() == 0
    result = client.post(url, {"kind": "file", "title": "ok", "file": ok, "effective_date": "2026-11-01"}, **HTMX)
    assert result.status_code == 200
    assert Evidence.objects.count() == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("report.pdf", b"<html><script>alert(1)</script></html>", "not an accepted file type"),
        ("invoice.pdf", b"MZ\x90\x00\x03\x00\x00\x00", "not an accepted file type"),
        ("chart.png", b"%PDF-1.4 pretending", "its content is a PDF"),
        ("notes.txt", b"<!DOCTYPE html><html><body onload=alert(1)>", "not an accepted file type"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "not an accepted file type"),
        ("empty.pdf", b"", "is empty"),
    ],
)
def test_disguised_or_dangerous_files_are_refused(client, users, pilot, name, content, message):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(users["owner"])
    response = _first_response(pilot)
    upload = SimpleUploadedFile(name, content, content_type="application/pdf")
    result = client.post(
        reverse("evidence-new", args=[response.pk]),
        {"kind": "file", "title": "t", "file": upload, "effective_date": "2026-11-01"},
        **HTMX,
    )
    assert result.status_code == 422
    assert message in result.content.decode()
    assert Evidence.objects.count() == 0


def test_files_are_served_only_to_members_as_attachments(client, users, pilot, other_org):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(users["owner"])
    response = _first_response(pilot)
    upload = SimpleUploadedFile("eval.csv", b"case,passed\n1,true\n", content_type="text/csv")
    client.post(
        reverse("evidence-new", args=[response.pk]),
        {"kind": "file", "title": "Eval", "file": upload, "effective_date": "2026-11-01"},
        **HTMX,
    )
    evidence = Evidence.objects.get()
    assert "eval" not in evidence.file.name
    download = client.get(reverse("evidence-download", args=[evidence.pk]))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Cache-Control"] == "private, no-store"
    assert b"".join(download.streaming_content) == b"case,passed\n1,true\n"
    client.force_login(users["viewer"])
    assert client.get(reverse("evidence-download", args=[evidence.pk])).status_code == 200
    client.logout()
    assert client.get(reverse("evidence-download", args=[evidence.pk])).status_code == 302


def _make_pilots(org, owner_actor, users, count: int, first: int = 0) -> None:
    for i in range(first, first + count):
        pilot_create(organisation=org, actor=owner_actor, name=f"Pilot {i:04d}", technical_owner=users["owner"])


def test_dashboard_query_count_does_not_grow_with_pilots(
    client, users, framework, owner_actor, django_assert_max_num_queries
):
    client.force_login(users["viewer"])
    _make_pilots(framework.organisation, owner_actor, users, 3)
    with django_assert_max_num_queries(12) as small:
        assert client.get(reverse("home")).status_code == 200
    _make_pilots(framework.organisation, owner_actor, users, 30, first=3)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(reverse("home"), {"sort": "-score", "stage": "pilot"}).status_code == 200


def test_pilot_page_query_count_does_not_grow_with_evidence(
    client, users, pilot, owner_actor, django_assert_max_num_queries
):
    from assessments.pilots.services import evidence_add

    client.force_login(users["owner"])
    responses = list(Response.objects.filter(assessment__pilot=pilot).select_related("criterion"))
    evidence_add(
        response=responses[0],
        actor=owner_actor,
        kind="link",
        title="a",
        url="https://x.test",
        effective_date=dt.date(2026, 11, 1),
    )
    with django_assert_max_num_queries(20) as small:
        assert client.get(reverse("pilot", args=[pilot.pk])).status_code == 200
    for response in responses[:10]:
        for n in range(10):
            evidence_add(
                response=response,
                actor=owner_actor,
                kind="link",
                title=f"e{n}",
                url="https://x.test",
                effective_date=dt.date(2026, 11, 1),
            )
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(reverse("pilot", args=[pilot.pk])).status_code == 200


def test_dashboard_filters_by_gap_score_and_sorts(client, users, framework, owner_actor):
    client.force_login(users["viewer"])
    _make_pilots(framework.organisation, owner_actor, users, 2)
    pilot = Pilot.objects.get(name="Pilot 0001")
    for response in Response.objects.filter(assessment__pilot=pilot, criterion__gap__key="evals"):
        response_update(response=response, actor=owner_actor, expected_version=response.version, status="met")
    page = client.get(reverse("home"), {"gap": "evals", "below": 50}).content.decode()
    assert "Pilot 0000" in page and "Pilot 0001" not in page
    page = client.get(reverse("home"), {"sort": "-score"}, **HTMX).content.decode()
    assert page.index("Pilot 0001") < page.index("Pilot 0000")
    assert "<html" not in page  # htmx gets only the results partial


def test_the_evidence_form_loads_on_demand_for_editors_only(client, users, pilot):
    response = _first_response(pilot)
    url = reverse("evidence-new", args=[response.pk])
    client.force_login(users["owner"])
    fragment = client.get(url, **HTMX)
    assert fragment.status_code == 200
    assert 'name="effective_date"' in fragment.content.decode() and "<html" not in fragment.content.decode()
    assert "<html" in client.get(url).content.decode()  # without htmx it is a page of its own
    client.force_login(users["viewer"])
    assert client.get(url, **HTMX).status_code == 403


def test_owners_trigger_a_stop_condition_and_viewers_cannot(client, users, pilot, owner_actor):
    from decimal import Decimal

    from assessments.pilots.services import stop_condition_add

    stop = stop_condition_add(
        pilot=pilot,
        actor=owner_actor,
        condition="Pause below 95%",
        metric="pass rate",
        comparator="lt",
        threshold=Decimal("0.95"),
    )
    url = reverse("stop-condition-status", args=[stop.pk])
    client.force_login(users["viewer"])
    assert client.post(url, {"status": "triggered"}).status_code == 403
    client.force_login(users["owner"])
    assert client.post(url, {"status": "exploded"}).status_code == 422
    assert client.post(url, {"status": "triggered"}).status_code == 302
    stop.refresh_from_db()
    assert stop.status == "triggered"


def test_people_holding_several_roles_reach_every_pilot_page(client, users, org, pilot, owner_actor):
    from assessments.organisations.services import membership_grant

    # Membership has one row per role: a lookup joined through it must not see the pilot twice.
    membership_grant(organisation=org, user=users["owner"], role="product", actor=Actor.system("t"))
    client.force_login(users["owner"])
    assert client.get(reverse("pilot", args=[pilot.pk])).status_code == 200
    assert client.get(reverse("pilot-export", args=[pilot.pk, "csv"])).status_code == 200
    assert _post_response(client, _first_response(pilot), status="met").status_code == 200


@pytest.mark.parametrize("mode", ["line", "card"])
def test_an_inline_save_is_one_pass_of_at_most_15_queries(
    client, users, pilot, owner_actor, mode, django_assert_max_num_queries
):
    from assessments.pilots.services import evidence_add

    client.force_login(users["owner"])
    response = _first_response(pilot)
    for n in range(5):
        evidence_add(
            response=response,
            actor=owner_actor,
            kind="link",
            title=f"run {n}",
            url="https://ci.example.com/run",
            effective_date=dt.date(2026, 11, 1),
        )
    fields = (
        {"status": "met"}
        if mode == "line"
        else {"status": "met", "justification": "Golden set v3", "owner": "", "due_date": ""}
    )
    if mode == "line":
        fields["mode"] = "line"
    # The test runs inside a transaction, so the service's own transaction is a savepoint
    # here (two statements a request never sends): those are not counted.
    with CaptureQueriesContext(connection) as captured:
        result = _post_response(client, response, **fields)
    statements = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= 15, "\n".join(statements)
    assert result.status_code == 200
    body = result.content.decode()
    assert 'id="scores" class="scores card" hx-swap-oob="true"' in body
    assert ("is-expanded" in body) == (mode == "card")
    response.refresh_from_db()
    assert response.status == "met"


def test_a_line_save_changes_only_the_status(client, users, pilot, owner_actor):
    response = _first_response(pilot)
    response_update(
        response=response, actor=owner_actor, expected_version=1, owner=users["owner"], justification="Kept as written"
    )
    response.refresh_from_db()
    client.force_login(users["owner"])
    assert _post_response(client, response, status="partly_met", mode="line").status_code == 200
    response.refresh_from_db()
    assert (response.status, response.justification, response.owner_id) == (
        "partly_met",
        "Kept as written",
        users["owner"].pk,
    )


def test_the_cached_checklist_shows_a_change_made_elsewhere_at_once(client, users, pilot, owner_actor):
    from assessments.organisations.models import Membership

    client.force_login(users["owner"])
    response = _first_response(pilot)
    page = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert f'id="line-{response.pk}-status"' in page
    # Someone else answers it (a service call, no page involved): the next view shows it.
    response_update(response=response, actor=owner_actor, expected_version=1, status="partly_met")
    again = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    line = again.split(f'id="row-{response.pk}"')[1].split("</article>")[0]
    assert '<option value="partly_met" selected>' in line
    # Losing the right to edit takes the status control away at once, too.
    Membership.objects.filter(user=users["owner"], role="owner").update(role="viewer")
    after = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert f'id="line-{response.pk}-status"' not in after


def test_two_people_never_share_a_cached_checklist(client, users, pilot):
    client.force_login(users["owner"])
    assert "line-status" in client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    client.force_login(users["viewer"])
    assert "line-status" not in client.get(reverse("pilot", args=[pilot.pk])).content.decode()


def test_a_refused_upload_keeps_what_was_typed(client, users, pilot):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(users["owner"])
    response = _first_response(pilot)
    answer = client.post(
        reverse("evidence-new", args=[response.pk]),
        {
            "kind": "file",
            "title": "Golden set v3 — 412 cases",
            "effective_date": "2026-11-02",
            "expires_on": "2027-01-31",
            "file": SimpleUploadedFile("report.pdf", b"<html>not a pdf</html>", content_type="application/pdf"),
        },
        **HTMX,
    )
    assert answer.status_code == 422
    body = answer.content.decode()
    assert "not an accepted file type" in body
    assert 'value="Golden set v3 — 412 cases"' in body
    assert '<option value="file" selected>' in body
    assert 'value="2027-01-31"' in body
