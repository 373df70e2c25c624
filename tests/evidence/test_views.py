"""The linked-systems pages over HTTP: editing a system and a rule, switching a system off,
refusing a save over someone else's change, who may do what, and hostile text kept inert."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.evidence.credentials import credentials_decrypt
from assessments.evidence.models import Check, CheckRun, LinkedSystem, RunStatus
from assessments.evidence.services import check_create, check_update, linked_system_create, linked_system_update
from assessments.organisations.services import membership_grant, user_create
from assessments.pilots.models import Pilot, Response
from assessments.pilots.services import pilot_create
from readiness.settings import BASE_DIR

FIXTURES = BASE_DIR / "fixtures" / "evidence"
SYSTEM = Actor.system("tests")


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )


@pytest.fixture
def system(pilot, owner_actor) -> LinkedSystem:
    return linked_system_create(
        pilot=pilot,
        actor=owner_actor,
        kind="http_json",
        name="Scores endpoint",
        configuration={"url": "https://evals.example.com/latest", "json_path": "data.pass_rate"},
        secrets={"token": "s3cret-token"},
    )


@pytest.fixture
def check(system, pilot, owner_actor) -> Check:
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion
    return check_create(
        system=system,
        criterion=criterion,
        actor=owner_actor,
        name="Pass rate",
        metric="value",
        comparator="gte",
        threshold=0.9,
    )


def _system_post(system: LinkedSystem, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": system.name,
        "url": system.configuration.get("url", ""),
        "json_path": system.configuration.get("json_path", ""),
        "check_interval_minutes": system.check_interval_minutes,
        "edit_token": system.edit_token(),
        "token": "",
    }
    if system.enabled:
        data["enabled"] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def _rule_post(check: Check, **changes: Any) -> dict[str, Any]:
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


def test_the_owner_renames_reschedules_and_switches_off_a_system_and_the_trail_says_so(client, users, system) -> None:
    client.force_login(users["owner"])
    url = reverse("linked-system-edit", args=[system.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "s3cret" not in page.content.decode()
    assert "Set — type a new one to replace it." in page.content.decode()

    response = client.post(url, _system_post(system, name="Scores (prod)", check_interval_minutes=30, enabled=None))

    assert response.status_code == 302
    system.refresh_from_db()
    assert (system.name, system.check_interval_minutes, system.enabled) == ("Scores (prod)", 30, False)
    assert credentials_decrypt(row_id=system.pk, ciphertext=system.credentials) == {"token": "s3cret-token"}
    event = AuditEvent.objects.filter(action="linked_system.changed").get()
    assert event.changes == {
        "name": ["Scores endpoint", "Scores (prod)"],
        "check_interval_minutes": [60, 30],
        "enabled": [True, False],
    }
    listing = client.get(reverse("linked-systems", args=[system.pilot_id])).content.decode()
    assert "Disabled" in listing
    assert reverse("linked-system-edit", args=[system.pk]) in listing


def test_credentials_are_replaced_or_removed_but_never_shown(client, users, system) -> None:
    client.force_login(users["owner"])
    url = reverse("linked-system-edit", args=[system.pk])

    client.post(url, _system_post(system, token="new-token"))
    system.refresh_from_db()
    assert credentials_decrypt(row_id=system.pk, ciphertext=system.credentials) == {"token": "new-token"}

    both = client.post(url, _system_post(system, token="x", remove_credentials="on"))
    assert both.status_code == 422
    assert "Either type a new token or remove the stored one, not both." in both.content.decode()

    client.post(url, _system_post(system, remove_credentials="on"))
    system.refresh_from_db()
    assert system.credentials == ""
    changes = [e.changes.get("credentials") for e in AuditEvent.objects.filter(action="linked_system.changed")]
    assert changes == [["set", "replaced"], ["set", "removed"]]


def test_a_file_backed_system_gets_a_new_file_and_keeps_its_other_settings(client, users, pilot, owner_actor) -> None:
    upload = SimpleUploadedFile("results.xml", (FIXTURES / "junit-goldenset-pass.xml").read_bytes())
    system = linked_system_create(pilot=pilot, actor=owner_actor, kind="eval_results", name="Golden set", upload=upload)
    old_file = system.upload.name
    new_bytes = (FIXTURES / "junit-goldenset-regression.xml").read_bytes()
    client.force_login(users["owner"])

    response = client.post(
        reverse("linked-system-edit", args=[system.pk]),
        _system_post(system, url="", json_path=None, upload=SimpleUploadedFile("new.xml", new_bytes)),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    system.refresh_from_db()
    assert system.upload_sha256 == hashlib.sha256(new_bytes).hexdigest()
    assert system.upload.name != old_file
    assert system.upload.read() == new_bytes


def test_a_save_over_someone_elses_change_is_refused_and_changes_nothing(client, users, system, owner_actor) -> None:
    client.force_login(users["owner"])
    stale = _system_post(system, name="My name")
    linked_system_update(system=system, actor=owner_actor, check_interval_minutes=15)
    events = AuditEvent.objects.count()

    response = client.post(reverse("linked-system-edit", args=[system.pk]), stale)

    assert response.status_code == 409
    body = response.content.decode()
    assert "changed “Scores endpoint” while you were editing it" in body
    assert 'value="15"' in body  # the form now shows the current settings
    system.refresh_from_db()
    assert (system.name, system.check_interval_minutes) == ("Scores endpoint", 15)
    assert AuditEvent.objects.count() == events


def test_a_rule_edit_is_audited_old_to_new_and_queues_a_run_with_it(client, users, check) -> None:
    client.force_login(users["owner"])
    url = reverse("check-edit", args=[check.pk])
    assert client.get(url).status_code == 200

    response = client.post(url, _rule_post(check, threshold=0.95, tolerance=0.02))

    assert response.status_code == 302
    check.refresh_from_db()
    assert (check.threshold, check.tolerance, check.rule_version) == (0.95, 0.02, 2)
    event = AuditEvent.objects.filter(action="check.rule_changed").get()
    assert event.changes == {"threshold": ["0.9", "0.95"], "tolerance": [None, "0.02"]}
    assert CheckRun.objects.filter(check_rule=check, status=RunStatus.QUEUED).count() == 1


def test_a_rule_saved_over_a_newer_rule_is_refused_naming_the_current_rule(client, users, check, owner_actor) -> None:
    client.force_login(users["owner"])
    stale = _rule_post(check, threshold=0.5)
    check_update(check=check, actor=owner_actor, threshold=0.97)

    response = client.post(reverse("check-edit", args=[check.pk]), stale)

    assert response.status_code == 409
    assert "changed this rule to “value ≥ 0.97” while you were editing it" in response.content.decode()
    check.refresh_from_db()
    assert (check.threshold, check.rule_version) == (0.97, 2)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threshold": "lots"}, "Enter a number."),
        ({"threshold": "inf"}, "Enter a number."),
        ({"tolerance": "-1"}, "greater than or equal to 0"),
        ({"comparator": "~="}, "Select a valid choice."),
        ({"name": ""}, "This field is required."),
        ({"rule_version": "x"}, "Enter a whole number."),
    ],
)
def test_a_bad_rule_gets_its_message_and_keeps_the_old_rule(client, users, check, changes, message) -> None:
    client.force_login(users["owner"])
    response = client.post(reverse("check-edit", args=[check.pk]), _rule_post(check, **changes))
    assert response.status_code == 422
    assert message in response.content.decode()
    check.refresh_from_db()
    assert (check.threshold, check.rule_version) == (0.9, 1)


@pytest.mark.parametrize("interval", ["0", "99999999", "soon"])
def test_a_bad_system_edit_gets_its_message_and_keeps_the_system(client, users, system, interval) -> None:
    client.force_login(users["owner"])
    response = client.post(
        reverse("linked-system-edit", args=[system.pk]), _system_post(system, check_interval_minutes=interval)
    )
    assert response.status_code == 422
    system.refresh_from_db()
    assert system.check_interval_minutes == 60


@pytest.mark.parametrize("role", ["viewer", "security", "risk", "product", "delivery"])
def test_people_who_cannot_edit_the_pilot_cannot_change_its_systems_or_rules(client, users, system, check, role):
    client.force_login(users[role])
    events = AuditEvent.objects.count()
    for url, data in [
        (reverse("linked-system-edit", args=[system.pk]), _system_post(system, name="Mine now")),
        (reverse("check-edit", args=[check.pk]), _rule_post(check, threshold=0.1)),
    ]:
        assert client.get(url).status_code == 403
        assert client.post(url, data).status_code == 403
    assert AuditEvent.objects.count() == events
    listing = client.get(reverse("linked-systems", args=[system.pilot_id])).content.decode()
    assert "Edit rule" not in listing


def test_another_organisations_systems_and_rules_are_not_found(client, other_org, system, check) -> None:
    outsider = user_create(
        organisation=other_org, username="outsider", email="o@globex.test", password="pw-x-1234!", actor=SYSTEM
    )
    membership_grant(organisation=other_org, user=outsider, role="admin", actor=SYSTEM)
    client.force_login(outsider)
    assert client.get(reverse("linked-system-edit", args=[system.pk])).status_code == 404
    assert client.post(reverse("check-edit", args=[check.pk]), _rule_post(check)).status_code == 404


HOSTILE_NAME = '<img src=x onerror="alert(1)">{{ 7|add:1 }}'


def test_hostile_names_and_settings_come_out_as_text(client, users, pilot, owner_actor) -> None:
    system = linked_system_create(
        pilot=pilot,
        actor=owner_actor,
        kind="http_json",
        name=HOSTILE_NAME,
        configuration={"url": "https://x.example/a?b=<script>", "json_path": '"><svg onload=alert(1)>'},
    )
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion
    check = check_create(
        system=system,
        criterion=criterion,
        actor=owner_actor,
        name=HOSTILE_NAME,
        metric="<b>m</b>",
        comparator="gte",
        threshold=1,
    )
    client.force_login(users["owner"])
    pages = [
        client.get(reverse("linked-systems", args=[pilot.pk])).content.decode(),
        client.get(reverse("linked-system-edit", args=[system.pk])).content.decode(),
        client.get(reverse("check-edit", args=[check.pk])).content.decode(),
        client.get(reverse("check-status", args=[check.pk])).content.decode(),
    ]
    for body in pages:
        assert "<img src=x" not in body
        assert "<svg onload" not in body
        assert "<script>" not in body
        assert "<b>m</b>" not in body
    assert "{{ 7|add:1 }}" in pages[0]  # template syntax in a name is shown, not run
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in pages[0]


def test_the_systems_page_draws_each_checks_recent_runs(client, users, pilot, owner_actor) -> None:
    from assessments.evidence.services import check_run_execute, check_run_request

    system = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="eval_results", name="Golden set",
        configuration={"fixture": "junit-goldenset-pass.xml"},
    )  # fmt: skip
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion
    check = check_create(
        system=system, criterion=criterion, actor=owner_actor, name="Pass rate", metric="pass_rate",
        comparator="gte", threshold=0.5,
    )  # fmt: skip
    for _ in range(3):
        check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    client.force_login(users["viewer"])
    for url in (reverse("linked-systems", args=[pilot.pk]), reverse("check-status", args=[check.pk])):
        body = client.get(url).content.decode()
        assert '<svg class="sparkline"' in body
        assert body.count('class="spark-pass"') == 3
        assert 'class="spark-threshold"' in body


def test_a_recheck_while_the_queue_is_down_is_kept_for_the_dispatcher_not_a_500(
    client, users, check, django_capture_on_commit_callbacks
) -> None:
    from unittest import mock

    from kombu.exceptions import OperationalError as BrokerUnavailable

    from assessments.evidence.models import CheckRun

    client.force_login(users["owner"])
    refused = BrokerUnavailable("Error 111 connecting to redis:6379. Connection refused.")
    with (
        mock.patch("assessments.evidence.tasks.check_run.delay", side_effect=refused) as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(reverse("check-status", args=[check.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    run = CheckRun.objects.get(check_rule=check, status="queued")
    delay.assert_called_once_with(run.pk)
