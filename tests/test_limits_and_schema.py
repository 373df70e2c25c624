"""Oversized requests are refused before their body is read; the API schema is for members only."""

from __future__ import annotations

import io
import socket
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from assessments.pilots.models import Evidence


class Untouchable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise AssertionError("the oversized body was read")


def _oversized_post(client: Client, url: str, size: int, **extra):
    return client.generic(
        "POST",
        url,
        b"",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(size),
        **{"wsgi.input": Untouchable(), **extra},
    )


def test_a_60_mb_upload_is_refused_from_its_header_with_the_upload_message(client, users, framework, settings):
    from assessments.audit.context import Actor
    from assessments.pilots.models import Response
    from assessments.pilots.services import pilot_create

    pilot = pilot_create(
        organisation=framework.organisation,
        actor=Actor.for_user(users["owner"]),
        name="Big files",
        technical_owner=users["owner"],
    )
    response = Response.objects.filter(assessment__pilot=pilot).first()
    client.force_login(users["owner"])
    answer = _oversized_post(client, reverse("evidence-new", args=[response.pk]), 60 * 1024 * 1024)
    assert answer.status_code == 413
    body = answer.content.decode()
    assert "The upload is 62,914,560 bytes; the limit is 10,485,760 bytes (10.0\xa0MB)" in body
    assert not Evidence.objects.exists()


def test_an_htmx_upload_that_is_too_large_gets_its_message_inside_the_form(client, users):
    client.force_login(users["owner"])
    answer = _oversized_post(client, reverse("home"), 30 * 1024 * 1024, HTTP_HX_REQUEST="true")
    assert answer.status_code == 413
    assert answer["HX-Retarget"] == "this"
    assert answer.content.decode().startswith('<p class="error" role="alert">The upload is 31,457,280 bytes')


def test_a_request_at_the_cap_is_let_through(client, users, settings):
    client.force_login(users["owner"])
    settings.REQUEST_MAX_BYTES = 100
    answer = client.post(reverse("home"), {"q": "x" * 10})
    assert answer.status_code == 405  # reached the view, which only answers GET


def test_a_nonsense_content_length_is_a_400(client, users):
    client.force_login(users["owner"])
    answer = client.generic("POST", reverse("home"), b"", CONTENT_LENGTH="lots")
    assert answer.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_real_server_answers_413_without_waiting_for_the_body(live_server, users):
    """Send only the headers of a 60 MB upload over a socket: the answer must come back at once."""
    address = urlparse(live_server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 62914560\r\n\r\n--x\r\n"
        )
        head = conn.recv(200).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head


@pytest.mark.parametrize("who", ["anonymous", "stranger"])
def test_the_openapi_schema_is_not_public(client, db, who):
    if who == "stranger":
        client.force_login(User.objects.create_user("stranger", "s@x.test", "pw"))
    answer = client.get(reverse("api-schema"))
    assert answer.status_code in {401, 403}
    assert b"openapi" not in answer.content


def test_members_read_the_openapi_schema(client, users):
    client.force_login(users["viewer"])
    answer = client.get(reverse("api-schema"))
    assert answer.status_code == 200
    assert b"openapi" in answer.content
