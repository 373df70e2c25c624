"""The organisation's chat webhook for regressions: only administrators set it, it is stored
encrypted and shown by host only, a regression posts once in Slack's documented format
(escaped), and a webhook that fails or points inside the network is reported, not chased."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.urls import reverse

from assessments.audit.models import AuditEvent
from assessments.evidence.credentials import CredentialsError, credentials_decrypt
from assessments.evidence.models import AlertWebhook, Verdict
from assessments.evidence.services import (
    WEBHOOK,
    alert_webhook_set,
    check_create,
    check_run_execute,
    check_run_request,
    linked_system_create,
    linked_system_update,
)
from assessments.pilots.models import Response
from assessments.pilots.services import pilot_create


class Hook:
    """A local incoming-webhook endpoint that records each POST and answers like Slack ("ok")."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.posts.append((self.path, json.loads(body)))
                self.send_response(hook.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if hook.status == 200 else b"invalid_token")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/s3cretPath"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook(settings) -> Iterator[Hook]:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    server = Hook()
    yield server
    server.server.shutdown()


def test_an_administrator_sets_a_webhook_that_is_stored_encrypted_and_shown_by_host(client, users, org, hook) -> None:
    client.force_login(users["admin"])
    response = client.post(reverse("alerts"), {"action": "set", "url": hook.url})
    assert response.status_code == 302
    webhook = AlertWebhook.objects.get(organisation=org)
    assert "s3cretPath" not in webhook.url_ciphertext
    assert credentials_decrypt(row_id=org.pk, ciphertext=webhook.url_ciphertext, scope=WEBHOOK) == {"url": hook.url}
    page = client.get(reverse("alerts")).content.decode()
    assert "127.0.0.1" in page and "s3cretPath" not in page
    event = AuditEvent.objects.get(action="alert_webhook.set")
    assert event.changes == {"webhook_host": [None, "127.0.0.1"]}
    assert "s3cret" not in json.dumps(event.changes)

    client.post(reverse("alerts"), {"action": "test"})
    assert [post["text"] for _, post in hook.posts] == [
        "Test message from Preflight for Acme Bank: regression alerts arrive here."
    ]
    assert hook.posts[0][0] == "/services/T000/B000/s3cretPath"


def test_a_ciphertext_moved_to_another_organisation_or_read_as_a_system_does_not_decrypt(
    users, org, other_org, hook, owner_actor
) -> None:
    from assessments.audit.context import Actor

    webhook = alert_webhook_set(organisation=org, actor=Actor.for_user(users["admin"]), url=hook.url)
    with pytest.raises(CredentialsError, match="belong to another alert webhook"):
        credentials_decrypt(row_id=other_org.pk, ciphertext=webhook.url_ciphertext, scope=WEBHOOK)
    with pytest.raises(CredentialsError, match="belong to another linked system"):
        credentials_decrypt(row_id=org.pk, ciphertext=webhook.url_ciphertext)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/x", "Enter the webhook&#x27;s full http(s) URL"),
        ("not a url", "Enter the webhook&#x27;s full http(s) URL"),
        ("https://user:pw@hooks.example.com/x", "not as a user name"),
        ("https://[::1/x", "Enter the webhook&#x27;s full http(s) URL"),
    ],
)
def test_a_bad_webhook_url_is_refused_with_its_reason_and_keeps_the_old_one(client, users, org, url, message):
    from assessments.audit.context import Actor

    alert_webhook_set(organisation=org, actor=Actor.for_user(users["admin"]), url="https://hooks.example.com/a")
    client.force_login(users["admin"])
    response = client.post(reverse("alerts"), {"action": "set", "url": url})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert AlertWebhook.objects.get(organisation=org).host == "hooks.example.com"


@pytest.mark.parametrize("role", ["owner", "viewer", "security", "risk", "product", "delivery"])
def test_only_administrators_see_or_change_the_webhook(client, users, org, role) -> None:
    client.force_login(users[role])
    assert client.get(reverse("alerts")).status_code == 403
    assert client.post(reverse("alerts"), {"action": "set", "url": "https://hooks.example.com/x"}).status_code == 403
    assert client.post(reverse("alerts"), {"action": "remove"}).status_code == 403
    assert not AlertWebhook.objects.exists()


def test_a_failing_or_internal_webhook_is_reported_in_words(client, users, org, hook, settings) -> None:
    client.force_login(users["admin"])
    client.post(reverse("alerts"), {"action": "set", "url": hook.url})
    hook.status = 403
    page = client.post(reverse("alerts"), {"action": "test"}, follow=True).content.decode()
    assert "The test message did not arrive: The webhook at http://127.0.0.1 answered 403." in page
    assert "s3cretPath" not in page

    settings.OUTBOUND_ALLOWED_HOSTS = []
    page = client.post(reverse("alerts"), {"action": "test"}, follow=True).content.decode()
    assert "The test message did not arrive" in page and "loopback" in page
    assert len(hook.posts) == 1  # the refused one never reached the listener

    client.post(reverse("alerts"), {"action": "remove"})
    assert not AlertWebhook.objects.exists()
    assert AuditEvent.objects.get(action="alert_webhook.removed").changes == {"webhook_host": ["127.0.0.1", None]}


def test_a_regression_posts_once_with_slack_escaping(
    framework, users, owner_actor, org, hook, django_capture_on_commit_callbacks
) -> None:
    from assessments.audit.context import Actor

    alert_webhook_set(organisation=org, actor=Actor.for_user(users["admin"]), url=hook.url)
    pilot = pilot_create(
        organisation=org, actor=owner_actor, name="Claims <!channel> & co", technical_owner=users["owner"]
    )
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion
    system = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="eval_results", name="Golden set",
        configuration={"fixture": "junit-goldenset-pass.xml"},
    )  # fmt: skip
    check = check_create(
        system=system, criterion=criterion, actor=owner_actor, name="Pass rate", metric="pass_rate",
        comparator="gte", threshold=0.5, tolerance=0.05,
    )  # fmt: skip
    first = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert first is not None and first.verdict == Verdict.PASS
    linked_system_update(system=system, actor=owner_actor, configuration={"fixture": "junit-goldenset-regression.xml"})
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)

    assert len(hook.posts) == 1
    text = hook.posts[0][1]["text"]
    assert "*Claims &lt;!channel&gt; &amp; co*" in text
    assert "<!channel>" not in text
    assert f"<http://127.0.0.1:8000/pilots/{pilot.pk}/|Open the pilot in Preflight>" in text


def test_key_rotation_re_encrypts_the_webhook_too(users, org, settings, capsys) -> None:
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from assessments.audit.context import Actor

    old_key = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [old_key]
    alert_webhook_set(organisation=org, actor=Actor.for_user(users["admin"]), url="https://hooks.example.com/a/b")
    new_key = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [new_key, old_key]
    call_command("credentials_rotate")
    assert "and 1 alert webhook(s)" in capsys.readouterr().out
    settings.CREDENTIALS_KEYS = [new_key]  # the old key is gone: rotation must have re-encrypted
    ciphertext = AlertWebhook.objects.get(organisation=org).url_ciphertext
    assert credentials_decrypt(row_id=org.pk, ciphertext=ciphertext, scope=WEBHOOK) == {
        "url": "https://hooks.example.com/a/b"
    }


def test_a_regression_shows_on_the_dashboard_until_and_after_it_recovers(
    client, framework, users, owner_actor, org
) -> None:
    pilot = pilot_create(organisation=org, actor=owner_actor, name="Claims triage", technical_owner=users["owner"])
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion
    system = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="eval_results", name="Golden set",
        configuration={"fixture": "junit-goldenset-pass.xml"},
    )  # fmt: skip
    check = check_create(
        system=system, criterion=criterion, actor=owner_actor, name="Pass rate", metric="pass_rate",
        comparator="gte", threshold=0.5, tolerance=0.05,
    )  # fmt: skip

    def run_with(fixture: str) -> None:
        linked_system_update(system=system, actor=owner_actor, configuration={"fixture": fixture})
        check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)

    client.force_login(users["viewer"])
    run_with("junit-goldenset-pass.xml")
    assert "Regressions in the last 14 days" not in client.get(reverse("home")).content.decode()
    run_with("junit-goldenset-regression.xml")
    page = client.get(reverse("home")).content.decode()
    assert "Regressions in the last 14 days" in page and "Still failing" in page and "“<bdi>Pass rate</bdi>”" in page
    run_with("junit-goldenset-pass.xml")
    page = client.get(reverse("home")).content.decode()
    assert "Recovered" in page and "Still failing" not in page
