"""The evidence room attacked from outside over HTTP: other organisations' and other pilots'
ids, hostile text, numbers, URLs and files in every field, two saves or two re-checks at
once, and rows changed behind the application's back.

A passing test is a defence that holds (the exact refusal, and nothing changed); an
``xfail(strict=True)`` is a hole, written as the behaviour it should have.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.evidence import services
from assessments.evidence.models import AlertWebhook, Check, CheckRun, LinkedSystem, RunStatus, Verdict
from assessments.evidence.services import (
    check_create,
    check_run_execute,
    check_run_request,
    linked_system_create,
)
from assessments.frameworks.services import framework_load
from assessments.organisations.services import membership_grant, user_create
from assessments.pilots.models import Pilot, Response
from assessments.pilots.selectors import scorecard
from assessments.pilots.services import pilot_create, response_update
from readiness.settings import BASE_DIR

FIXTURES = BASE_DIR / "fixtures" / "evidence"
SYSTEM = Actor.system("tests")


# --- the world: two pilots here, one pilot in another organisation ----------------------------


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )


@pytest.fixture
def pilot_b(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Fraud alerts", technical_owner=users["owner"]
    )


@pytest.fixture
def outsider(other_org, default_spec) -> Any:
    """An administrator of another organisation, which has its own framework and pilot."""
    person = user_create(
        organisation=other_org, username="outsider", email="o@globex.test", password="pw-x-1234!", actor=SYSTEM
    )
    membership_grant(organisation=other_org, user=person, role="admin", actor=SYSTEM)
    framework_load(organisation=other_org, spec=default_spec, actor=SYSTEM)
    return person


@pytest.fixture
def foreign(outsider, other_org) -> dict[str, Any]:
    """The other organisation's pilot, linked system, criterion and check."""
    actor = Actor.for_user(outsider)
    pilot = pilot_create(organisation=other_org, actor=actor, name="Globex bot", technical_owner=outsider)
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion
    system = _eval_system(pilot, actor, name="Globex evals")
    check = _check(system, criterion, actor)
    return {"pilot": pilot, "system": system, "criterion": criterion, "check": check}


def _criterion(pilot: Pilot) -> Any:
    return Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion


def _eval_system(
    pilot: Pilot, actor: Actor, *, name: str = "Golden set", fixture: str = "junit-goldenset-pass.xml"
) -> LinkedSystem:
    return linked_system_create(
        pilot=pilot, actor=actor, kind="eval_results", name=name, configuration={"fixture": fixture}
    )


def _check(system: LinkedSystem, criterion: Any, actor: Actor, **rule: Any) -> Check:
    values: dict[str, Any] = {"name": "Pass rate", "metric": "pass_rate", "comparator": "gte", "threshold": 0.5}
    return check_create(system=system, criterion=criterion, actor=actor, **(values | rule))


@pytest.fixture
def system(pilot, owner_actor) -> LinkedSystem:
    return _eval_system(pilot, owner_actor)


@pytest.fixture
def check(system, pilot, owner_actor) -> Check:
    return _check(system, _criterion(pilot), owner_actor)


def _snapshot() -> tuple[Any, ...]:
    """Everything the evidence room holds, to show a refusal changed nothing."""
    return (
        list(LinkedSystem.objects.order_by("pk").values()),
        list(Check.objects.order_by("pk").values()),
        list(CheckRun.objects.order_by("pk").values("pk", "status", "verdict", "check_rule_id")),
        list(AlertWebhook.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
    )


def _system_form(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "http_json",
        "name": "Scores endpoint",
        "url": "https://evals.example.com/latest",
        "json_path": "data.pass_rate",
        "check_interval_minutes": "60",
    }
    return {key: value for key, value in (data | changes).items() if value is not None}


def _edit_form(system: LinkedSystem, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": system.name,
        "url": system.configuration.get("url", ""),
        "check_interval_minutes": system.check_interval_minutes,
        "edit_token": system.edit_token(),
        "enabled": "on" if system.enabled else None,
    }
    return {key: value for key, value in (data | changes).items() if value is not None}


def _check_form(system: LinkedSystem, criterion: Any, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "linked_system": system.pk,
        "criterion": criterion.pk,
        "name": "New check",
        "metric": "pass_rate",
        "comparator": "gte",
        "threshold": "0.9",
        "tolerance": "",
        "dataset_fingerprint": "",
    }
    return data | changes


def _rule_form(check: Check, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": check.name,
        "metric": check.metric,
        "comparator": check.comparator,
        "threshold": check.threshold,
        "tolerance": "" if check.tolerance is None else check.tolerance,
        "baseline": "" if check.baseline is None else check.baseline,
        "dataset_fingerprint": check.dataset_fingerprint,
        "rule_version": check.rule_version,
    }
    return data | changes


# --- IDOR: ids that are not yours -----------------------------------------------------------


def test_another_organisations_ids_are_not_found_on_any_route_or_method(client, users, foreign) -> None:
    client.force_login(users["admin"])
    before = _snapshot()
    system, check, pilot = foreign["system"], foreign["check"], foreign["pilot"]
    attempts = [
        ("get", reverse("linked-systems", args=[pilot.pk]), {}),
        ("post", reverse("linked-system-new", args=[pilot.pk]), _system_form()),
        ("post", reverse("check-new", args=[pilot.pk]), _check_form(system, foreign["criterion"])),
        ("get", reverse("check-status", args=[check.pk]), {}),
        ("post", reverse("check-status", args=[check.pk]), {}),
        ("get", reverse("linked-system-edit", args=[system.pk]), {}),
        ("post", reverse("linked-system-edit", args=[system.pk]), _edit_form(system, name="Ours now")),
        ("get", reverse("check-edit", args=[check.pk]), {}),
        ("post", reverse("check-edit", args=[check.pk]), _rule_form(check, threshold="0")),
    ]
    for method, url, data in attempts:
        response = getattr(client, method)(url, data)
        assert response.status_code == 404, (method, url)
        assert b"Globex" not in response.content
    assert _snapshot() == before


def test_a_check_cannot_name_another_pilots_or_organisations_system_or_criterion(
    client, users, pilot, pilot_b, owner_actor, foreign
) -> None:
    here = _eval_system(pilot, owner_actor)
    there = _eval_system(pilot_b, owner_actor, name="Fraud evals")
    client.force_login(users["owner"])
    before = _snapshot()
    url = reverse("check-new", args=[pilot.pk])
    cases = [
        _check_form(there, _criterion(pilot)),  # a sibling pilot's system
        _check_form(foreign["system"], _criterion(pilot)),  # another organisation's system
        _check_form(here, foreign["criterion"]),  # another organisation's framework
        _check_form(here, _criterion(pilot)) | {"linked_system": "1 OR 1=1"},
        _check_form(here, _criterion(pilot)) | {"criterion": "-1"},
    ]
    for data in cases:
        response = client.post(url, data)
        assert response.status_code == 422
        assert "Select a valid choice. That choice is not one of the available choices." in response.content.decode()
    assert _snapshot() == before


def test_a_rule_edit_cannot_move_the_check_to_another_system_or_criterion(
    client, users, check, pilot_b, owner_actor, foreign
) -> None:
    there = _eval_system(pilot_b, owner_actor, name="Fraud evals")
    client.force_login(users["owner"])
    data = _rule_form(check, threshold="0.6") | {
        "linked_system": there.pk,
        "criterion": foreign["criterion"].pk,
        "linked_system_id": foreign["system"].pk,
        "rule_changed_by": users["viewer"].pk,
    }
    assert client.post(reverse("check-edit", args=[check.pk]), data).status_code == 302
    moved = Check.objects.get(pk=check.pk)
    assert (moved.linked_system_id, moved.criterion_id, moved.threshold) == (
        check.linked_system_id,
        check.criterion_id,
        0.6,
    )
    assert moved.rule_changed_by_id == users["owner"].pk


def test_a_system_form_cannot_be_posted_to_another_pilot_through_its_own_url(
    client, users, pilot, pilot_b, owner_actor
) -> None:
    client.force_login(users["owner"])
    response = client.post(reverse("linked-system-new", args=[pilot.pk]), _system_form(pilot=pilot_b.pk))
    assert response.status_code == 302
    assert list(LinkedSystem.objects.values_list("pilot_id", flat=True)) == [pilot.pk]


# --- hostile input: the link form -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "x" * 100_000}, "Ensure this value has at most 120 characters (it has 100000)."),
        ({"name": "Golden\x00set"}, "Null characters are not allowed."),
        ({"name": "Golden\u202eset"}, "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ({"name": "Golden\x1bset"}, "control character U+001B"),
        ({"name": "Golden\u200bset"}, "U+200B ZERO WIDTH SPACE"),
        ({"name": "   "}, "This field is required."),
        ({"kind": "shell"}, "Select a valid choice. shell is not one of the available choices."),
        ({"url": "javascript:alert(1)"}, "Enter a valid URL."),
        ({"url": "file:///etc/passwd"}, "Enter a valid URL."),
        ({"url": "data:text/html,<script>alert(1)</script>"}, "Enter a valid URL."),
        ({"url": "gopher://evals.example.com/"}, "Enter a valid URL."),
        ({"url": "https://evals.example.com/" + "a" * 2000}, "Ensure this value has at most 2000 characters"),
        ({"url": ""}, "A URL is required for this kind of system."),
        ({"json_path": "data.\x00pass"}, "Null characters are not allowed."),
        ({"json_path": "data.\u202epass"}, "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ({"check_interval_minutes": "-5"}, "Ensure this value is greater than or equal to 5."),
        ({"check_interval_minutes": "0"}, "Ensure this value is greater than or equal to 5."),
        ({"check_interval_minutes": "10081"}, "Ensure this value is less than or equal to 10080."),
        ({"check_interval_minutes": "1e309"}, "Enter a whole number."),
        ({"check_interval_minutes": "nan"}, "Enter a whole number."),
        ({"check_interval_minutes": "9" * 400}, "Ensure this value is less than or equal to 10080."),
        ({"kind": "github", "repository": "no-slash"}, "Name the repository as owner/name."),
        ({"kind": "pagerduty", "schedule_id": ""}, "A PagerDuty schedule id is required."),
        ({"token": "t" * 2001}, "Ensure this value has at most 2000 characters (it has 2001)."),
    ],
)
def test_hostile_link_form_input_is_refused_with_its_reason_and_stores_nothing(
    client, users, pilot, changes, message
) -> None:
    client.force_login(users["owner"])
    before = _snapshot()
    response = client.post(reverse("linked-system-new", args=[pilot.pk]), _system_form(**changes))
    assert response.status_code == 422
    assert message in response.content.decode()
    assert _snapshot() == before


def test_extra_keys_cannot_smuggle_a_fixture_or_configuration_into_a_system(client, users, pilot) -> None:
    client.force_login(users["owner"])
    data = _system_form(
        fixture="../../../../etc/passwd",
        configuration='{"fixture": "../../etc/passwd", "url": "http://169.254.169.254/"}',
        credentials="gAAAA-forged",
        upload_sha256="0" * 64,
        enabled="",
        created_by=users["viewer"].pk,
    )
    assert client.post(reverse("linked-system-new", args=[pilot.pk]), data).status_code == 302
    system = LinkedSystem.objects.get()
    assert system.configuration == {"url": "https://evals.example.com/latest", "json_path": "data.pass_rate"}
    assert (system.credentials, system.upload_sha256, system.enabled) == ("", "", True)
    assert system.created_by_id == users["owner"].pk


def test_an_edit_cannot_add_a_fixture_or_change_the_kind(client, users, pilot, owner_actor) -> None:
    system = linked_system_create(
        pilot=pilot,
        actor=owner_actor,
        kind="http_json",
        name="Scores",
        configuration={"url": "https://evals.example.com/latest"},
    )
    client.force_login(users["owner"])
    data = _edit_form(system, fixture="../../etc/passwd", kind="eval_results", configuration="{}")
    assert client.post(reverse("linked-system-edit", args=[system.pk]), data).status_code == 302
    system.refresh_from_db()
    assert (system.kind, system.configuration) == ("http_json", {"url": "https://evals.example.com/latest"})


def test_a_password_in_a_system_url_is_refused_not_shown_to_viewers(client, users, pilot) -> None:
    client.force_login(users["owner"])
    data = _system_form(url="https://svc:hunter2-secret@evals.example.com/latest")
    response = client.post(reverse("linked-system-new", args=[pilot.pk]), data)
    client.force_login(users["viewer"])
    page = client.get(reverse("linked-systems", args=[pilot.pk])).content.decode()
    trail = " ".join(str(e.changes) for e in AuditEvent.objects.filter(action="linked_system.added"))
    assert "hunter2-secret" not in page
    assert "hunter2-secret" not in trail
    assert response.status_code == 422


# --- hostile input: files ---------------------------------------------------------------------


def _file_form(upload: Any, **changes: Any) -> dict[str, Any]:
    return _system_form(kind="eval_results", url="", json_path=None, upload=upload, **changes)


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("empty.xml", b""), "The submitted file is empty."),
        (
            SimpleUploadedFile("huge.xml", b"<" * (50 * 1024 * 1024)),
            "Upload too large",
        ),
        (SimpleUploadedFile("just-over.json", b" " * (10 * 1024 * 1024 + 1)), "Files up to 10 MB are accepted."),
    ],
    ids=["empty", "50MB", "10MB+1"],
)
def test_an_empty_or_oversized_file_is_refused_and_nothing_is_stored(client, users, pilot, upload, message) -> None:
    client.force_login(users["owner"])
    before = _snapshot()
    response = client.post(reverse("linked-system-new", args=[pilot.pk]), _file_form(upload))
    # Past the request cap the body is refused before it is read (413); under it, by the form (422).
    assert response.status_code == (413 if upload.size > 20 * 1024 * 1024 else 422)
    assert message in response.content.decode()
    assert _snapshot() == before
    assert not default_storage.exists("linked")


def test_a_file_name_with_a_path_lands_inside_the_upload_folder(client, users, pilot, settings) -> None:
    client.force_login(users["owner"])
    data = (FIXTURES / "junit-goldenset-pass.xml").read_bytes()
    upload = SimpleUploadedFile("../../../../tmp/evil.xml", data)
    assert client.post(reverse("linked-system-new", args=[pilot.pk]), _file_form(upload)).status_code == 302
    system = LinkedSystem.objects.get()
    assert system.upload_name == "evil.xml"
    assert str(system.upload.name).startswith("linked/") and ".." not in str(system.upload.name)
    assert system.upload_sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("results\u202elmx.exe", "resultslmx.exe"), ("a\u200bb.xml", "ab.xml"), ("a\\b\\c.xml", "c.xml")],
)
def test_a_file_name_that_would_display_reversed_or_hide_a_path_is_reduced(client, users, pilot, sent, stored) -> None:
    client.force_login(users["owner"])
    data = (FIXTURES / "junit-goldenset-pass.xml").read_bytes()
    response = client.post(reverse("linked-system-new", args=[pilot.pk]), _file_form(SimpleUploadedFile(sent, data)))
    assert response.status_code == 302
    system = LinkedSystem.objects.get()
    assert system.upload_name == stored and str(system.upload.name).endswith("/" + stored)


def test_binary_junk_or_a_zip_bomb_links_but_its_run_fails_in_words(client, users, pilot, owner_actor) -> None:
    import io
    import zipfile

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("results.json", b"0" * (50 * 1024 * 1024))
    client.force_login(users["owner"])
    criterion = _criterion(pilot)
    for name, payload in [("junk.json", bytes(range(256)) * 64), ("bomb.zip", bomb.getvalue())]:
        response = client.post(
            reverse("linked-system-new", args=[pilot.pk]), _file_form(SimpleUploadedFile(name, payload), name=name)
        )
        assert response.status_code == 302
        system = LinkedSystem.objects.get(name=name)
        check = _check(system, criterion, owner_actor)
        run = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
        assert run is not None and run.status == RunStatus.FAILED and run.verdict == ""
        assert run.message
        page = client.get(reverse("check-status", args=[check.pk]))
        assert page.status_code == 200


# --- hostile input: rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threshold": "nan"}, "Enter a number."),
        ({"threshold": "-inf"}, "Enter a number."),
        ({"threshold": "1e309"}, "Enter a number."),
        ({"threshold": "0x10"}, "Enter a number."),
        ({"threshold": ""}, "This field is required."),
        ({"threshold": "1" * 5000}, "Enter a number."),
        ({"tolerance": "nan"}, "Enter a number."),
        ({"tolerance": "-0.01"}, "Ensure this value is greater than or equal to 0."),
        ({"name": "n" * 121}, "Ensure this value has at most 120 characters (it has 121)."),
        ({"name": "a\x00b"}, "Null characters are not allowed."),
        ({"metric": "pass_rate\u2066"}, "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ({"metric": "pass\nrate"}, "control character U+000A"),
        ({"dataset_fingerprint": "golden\u202e"}, "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ({"comparator": "__import__('os')"}, "Select a valid choice."),
    ],
)
def test_hostile_rule_input_is_refused_with_its_reason_and_stores_nothing(
    client, users, pilot, system, changes, message
) -> None:
    client.force_login(users["owner"])
    before = _snapshot()
    response = client.post(reverse("check-new", args=[pilot.pk]), _check_form(system, _criterion(pilot), **changes))
    assert response.status_code == 422
    assert message in response.content.decode()
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"baseline": "inf"}, "Enter a number."),
        ({"baseline": "1e309"}, "Enter a number."),
        ({"rule_version": "0"}, "Ensure this value is greater than or equal to 1."),
        ({"rule_version": "9" * 30}, "while you were editing it"),
        ({"rule_version": "-1"}, "Ensure this value is greater than or equal to 1."),
        ({"metric": "x\u0085y"}, "control character U+0085"),
    ],
)
def test_hostile_rule_edits_are_refused_and_keep_the_rule(client, users, check, changes, message) -> None:
    client.force_login(users["owner"])
    before = _snapshot()
    response = client.post(reverse("check-edit", args=[check.pk]), _rule_form(check, **changes))
    assert response.status_code in (409, 422)
    assert message in response.content.decode()
    assert _snapshot() == before


def test_a_rule_renamed_onto_a_sibling_checks_name_is_refused_not_a_server_error(
    client, users, system, check, pilot, owner_actor
) -> None:
    sibling = _check(system, _criterion(pilot), owner_actor, name="Sibling")
    client.force_login(users["owner"])
    before = _snapshot()
    response = client.post(reverse("check-edit", args=[sibling.pk]), _rule_form(sibling, name="Pass rate"))
    assert response.status_code == 422
    assert "Check with this Linked system and Name already exists." in response.content.decode()
    response = client.post(
        reverse("check-new", args=[pilot.pk]), _check_form(system, _criterion(pilot), name="Pass rate")
    )
    assert response.status_code == 422
    assert "Check with this Linked system and Name already exists." in response.content.decode()
    assert _snapshot() == before


def test_a_system_renamed_onto_a_sibling_systems_name_is_refused_not_a_server_error(
    client, users, pilot, system, owner_actor
) -> None:
    sibling = _eval_system(pilot, owner_actor, name="Sibling")
    client.force_login(users["owner"])
    before = _snapshot()
    response = client.post(reverse("linked-system-edit", args=[sibling.pk]), _edit_form(sibling, name="Golden set"))
    assert response.status_code == 422
    assert "Linked system with this Pilot and Name already exists." in response.content.decode()
    response = client.post(reverse("linked-system-new", args=[pilot.pk]), _system_form(name="Golden set"))
    assert response.status_code == 422
    assert "Linked system with this Pilot and Name already exists." in response.content.decode()
    assert _snapshot() == before


# --- concurrency --------------------------------------------------------------------------------


def test_two_saves_from_the_same_system_form_keep_the_first_and_refuse_the_second(client, users, system) -> None:
    client.force_login(users["owner"])
    url = reverse("linked-system-edit", args=[system.pk])
    first, second = _edit_form(system, name="First"), _edit_form(system, name="Second", check_interval_minutes=5)
    assert client.post(url, first).status_code == 302
    response = client.post(url, second)
    assert response.status_code == 409
    assert "changed “First” while you were editing it" in response.content.decode()
    system.refresh_from_db()
    assert (system.name, system.check_interval_minutes) == ("First", 60)
    assert AuditEvent.objects.filter(action="linked_system.changed").count() == 1


def test_two_saves_from_the_same_rule_form_keep_the_first_and_refuse_the_second(client, users, check) -> None:
    client.force_login(users["owner"])
    url = reverse("check-edit", args=[check.pk])
    assert client.post(url, _rule_form(check, threshold="0.7")).status_code == 302
    response = client.post(url, _rule_form(check, threshold="0.1"))
    assert response.status_code == 409
    assert "changed this rule to “pass_rate ≥ 0.7” while you were editing it" in response.content.decode()
    check.refresh_from_db()
    assert (check.threshold, check.rule_version) == (0.7, 2)


def test_re_check_pressed_twice_queues_one_run_and_one_audit_event(client, users, check) -> None:
    client.force_login(users["viewer"])
    url = reverse("check-status", args=[check.pk])
    for _ in range(3):
        assert client.post(url).status_code == 302
        assert client.post(url, HTTP_HX_REQUEST="true").status_code == 200
    assert CheckRun.objects.filter(check_rule=check, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).count() == 1
    assert AuditEvent.objects.filter(action="check.run_requested").count() == 1


def test_the_database_refuses_a_second_open_run_for_a_check(check, owner_actor) -> None:
    check_run_request(check=check, actor=owner_actor)
    with pytest.raises(IntegrityError), transaction.atomic():
        CheckRun.objects.create(check_rule=check)
    run = CheckRun.objects.get()
    CheckRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        CheckRun.objects.create(check_rule=check)


def test_a_rule_edited_while_its_run_is_queued_is_the_rule_the_run_uses(client, users, check, owner_actor) -> None:
    queued = check_run_request(check=check, actor=owner_actor)
    client.force_login(users["owner"])
    assert client.post(reverse("check-edit", args=[check.pk]), _rule_form(check, threshold="1.5")).status_code == 302
    run = check_run_execute(run_id=queued.pk)
    assert run is not None and run.verdict == Verdict.FAIL
    assert run.rule["version"] == 2 and run.rule["threshold"] == 1.5


def test_a_rule_edited_while_its_run_is_running_gets_a_run_with_the_new_rule(
    client, users, check, owner_actor, monkeypatch
) -> None:
    client.force_login(users["owner"])
    real = services.connector_for

    class EditsMidRun:
        def __init__(self, kind: str) -> None:
            self.inner = real(kind)

        def fetch(self, source: Any) -> Any:
            response = client.post(reverse("check-edit", args=[check.pk]), _rule_form(check, threshold="1.5"))
            assert response.status_code == 302
            return self.inner.fetch(source)

    monkeypatch.setattr(services, "connector_for", EditsMidRun)
    stale = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert stale is not None and stale.verdict == Verdict.PASS and stale.rule["version"] == 1
    check.refresh_from_db()
    assert check.rule_version == 2
    # The pass was judged by a rule no longer in force: a run with version 2 must follow.
    assert CheckRun.objects.filter(check_rule=check, status=RunStatus.QUEUED).exists()


def test_re_check_of_a_switched_off_system_is_refused(client, users, system, check) -> None:
    client.force_login(users["owner"])
    client.post(reverse("linked-system-edit", args=[system.pk]), _edit_form(system, enabled=None))
    assert not LinkedSystem.objects.get(pk=system.pk).enabled
    client.force_login(users["viewer"])
    client.post(reverse("check-status", args=[check.pk]))
    assert not CheckRun.objects.filter(check_rule=check).exists()


# --- tampering ----------------------------------------------------------------------------------


def _sql(statement: str, *params: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        ("UPDATE evidence_checkrun SET verdict = 'pass' WHERE status <> 'ok'", ()),
        ("UPDATE evidence_checkrun SET verdict = 'win'", ()),
        ("UPDATE evidence_checkrun SET status = 'done'", ()),
        ("UPDATE evidence_check SET comparator = 'ne'", ()),
        ("UPDATE evidence_check SET tolerance = -1", ()),
        ("UPDATE evidence_linkedsystem SET check_interval_minutes = 0", ()),
        ("UPDATE evidence_linkedsystem SET kind = 'ssh'", ()),
        ("UPDATE evidence_linkedsystem SET upload = 'x.xml', upload_sha256 = ''", ()),
    ],
)
def test_the_database_refuses_rows_no_service_could_write(check, owner_actor, statement, params) -> None:
    check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    check_run_request(check=check, actor=owner_actor)  # one open run too
    with pytest.raises(IntegrityError), transaction.atomic():
        _sql(statement, *params)


def _met_assessment(pilot: Pilot, owner_actor: Actor) -> Any:
    response = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03")
    response_update(response=response, actor=owner_actor, expected_version=response.version, status="met")
    return response.assessment


def _blocked(assessment: Any) -> bool:
    card = scorecard(assessment=assessment, today=timezone.localdate())
    return any(b.code == "EV-03" for b in card.blockers)


def test_a_verdict_flipped_in_the_database_does_not_silently_clear_a_blocker(client, users, pilot, owner_actor) -> None:
    from assessments.audit.verify import audit_verify

    assessment = _met_assessment(pilot, owner_actor)
    system = _eval_system(pilot, owner_actor, fixture="junit-goldenset-regression.xml")
    check = _check(system, _criterion(pilot), owner_actor, threshold=0.99)
    run = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert run is not None and run.verdict == Verdict.FAIL and _blocked(assessment)

    _sql("UPDATE evidence_checkrun SET verdict = 'pass' WHERE id = %s", run.pk)

    noticed = not audit_verify(organisation=pilot.organisation, record_result=False).ok
    assert _blocked(assessment) or noticed


def test_a_threshold_lowered_in_the_database_is_not_used_silently(pilot, owner_actor) -> None:
    from assessments.audit.verify import audit_verify

    system = _eval_system(pilot, owner_actor, fixture="junit-goldenset-regression.xml")
    check = _check(system, _criterion(pilot), owner_actor, threshold=0.99)
    _sql("UPDATE evidence_check SET threshold = 0 WHERE id = %s", check.pk)
    run = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert run is not None
    noticed = not audit_verify(organisation=pilot.organisation, record_result=False).ok
    assert run.verdict != Verdict.PASS or noticed


def test_an_uploaded_file_swapped_in_storage_is_not_judged(client, users, pilot, owner_actor) -> None:
    passing = (FIXTURES / "junit-goldenset-pass.xml").read_bytes()
    client.force_login(users["owner"])
    upload = SimpleUploadedFile("results.xml", (FIXTURES / "junit-goldenset-regression.xml").read_bytes())
    assert client.post(reverse("linked-system-new", args=[pilot.pk]), _file_form(upload)).status_code == 302
    system = LinkedSystem.objects.get()
    check = _check(system, _criterion(pilot), owner_actor, threshold=0.99)
    with default_storage.open(str(system.upload.name), "wb") as handle:
        handle.write(passing)
    run = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert run is not None and run.status != RunStatus.OK
    assert "SHA-256" in run.message


def test_credentials_copied_to_another_system_fail_its_run_in_words(client, users, pilot, owner_actor) -> None:
    donor = linked_system_create(
        pilot=pilot,
        actor=owner_actor,
        kind="http_json",
        name="Donor",
        configuration={"url": "https://evals.example.com/a"},
        secrets={"token": "donor-secret"},
    )
    thief = _eval_system(pilot, owner_actor, name="Thief")
    _sql("UPDATE evidence_linkedsystem SET credentials = %s WHERE id = %s", donor.credentials, thief.pk)
    check = _check(thief, _criterion(pilot), owner_actor)
    client.force_login(users["viewer"])
    assert client.post(reverse("check-status", args=[check.pk])).status_code == 302
    run = check_run_execute(run_id=CheckRun.objects.get(check_rule=check).pk)
    assert run is not None and run.status == RunStatus.FAILED
    assert run.message == "The stored credentials belong to another linked system; enter them again."
    page = client.get(reverse("linked-systems", args=[pilot.pk])).content.decode()
    assert "belong to another linked system" in page and "donor-secret" not in page


def test_pages_survive_nonsense_numbers_and_facts_written_into_the_database(client, users, check, owner_actor) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite keeps 'NaN' written by hand as text, which no row of PostgreSQL can hold")
    run = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert run is not None
    _sql(
        "UPDATE evidence_check SET threshold = 'NaN', baseline = 'Infinity', tolerance = 'Infinity' WHERE id = %s",
        check.pk,
    )
    _sql("UPDATE evidence_checkrun SET value = '-Infinity', facts = '\"not an object\"' WHERE id = %s", run.pk)
    client.force_login(users["owner"])
    for url in (
        reverse("linked-systems", args=[check.linked_system.pilot_id]),
        reverse("check-status", args=[check.pk]),
        reverse("check-edit", args=[check.pk]),
        reverse("pilot", args=[check.linked_system.pilot_id]),
        reverse("home"),
    ):
        assert client.get(url).status_code == 200, url


# --- the alert webhook ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("javascript:alert(1)//https://hooks.example.com", "Enter the webhook&#x27;s full http(s) URL"),
        ("file:///etc/passwd", "Enter the webhook&#x27;s full http(s) URL"),
        ("data:text/plain,hi", "Enter the webhook&#x27;s full http(s) URL"),
        ("https://hooks.example.com/\x00x", "Null characters are not allowed."),
        ("https://" + "a" * 2000 + ".example.com/", "Ensure this value has at most 2000 characters"),
        ("https:///services/x", "Enter the webhook&#x27;s full http(s) URL"),
        ("https://:pw@hooks.example.com/x", "not as a user name"),
    ],
)
def test_a_hostile_webhook_url_is_refused_and_nothing_changes(client, users, org, url, message) -> None:
    client.force_login(users["admin"])
    before = _snapshot()
    response = client.post(reverse("alerts"), {"action": "set", "url": url})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert _snapshot() == before


def test_a_webhook_host_that_displays_reversed_is_refused(client, users, org) -> None:
    client.force_login(users["admin"])
    response = client.post(reverse("alerts"), {"action": "set", "url": "https://hooks.evil\u202emoc.kcals/x"})
    assert not AlertWebhook.objects.exists()
    assert response.status_code == 422


def test_an_unknown_alerts_action_is_a_set_that_validates(client, users, org) -> None:
    client.force_login(users["admin"])
    response = client.post(reverse("alerts"), {"action": "../../delete"})
    assert response.status_code == 422
    assert "This field is required." in response.content.decode()
    assert not AlertWebhook.objects.exists()


def test_removing_a_webhook_that_is_not_there_says_so(client, users, org) -> None:
    client.force_login(users["admin"])
    before = _snapshot()
    page = client.post(reverse("alerts"), {"action": "remove"}, follow=True)
    assert page.status_code == 200
    assert "There is no alert webhook to remove." in page.content.decode()
    assert _snapshot() == before
