"""RFC 3161 timestamps on checkpoints, against a real local TSA (`openssl ts -reply` over HTTP)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import socket
import subprocess

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from assessments.audit.anchor import anchor_dir, anchor_stem
from assessments.audit.chain import checkpoint_message
from assessments.audit.checkpoints import checkpoint_create, checkpoint_finish
from assessments.audit.models import AnchorStatus, AuditCheckpoint, TimestampStatus
from assessments.audit.selectors import checkpoints_unfinished, integrity_badge
from assessments.audit.timestamp import (
    TimestampError,
    TimestampInvalid,
    timestamp_fetch,
    timestamp_verify,
    tsa_certificates_load,
)
from assessments.audit.verify import audit_verify


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tsa_settings(settings, local_tsa):
    settings.AUDIT_TSA_URL = local_tsa.url
    settings.AUDIT_TSA_CA_FILE = str(local_tsa.ca_file)
    return local_tsa


def test_a_checkpoint_is_timestamped_by_the_tsa_and_the_token_is_kept_and_anchored(busy_org, signing_key, tsa_settings):
    checkpoint = checkpoint_create(organisation=busy_org)
    assert checkpoint.timestamp_status == TimestampStatus.TIMESTAMPED, checkpoint.timestamp_error
    assert checkpoint.anchor_status == AnchorStatus.ANCHORED
    message = checkpoint_message(checkpoint.payload)
    # The TSA was sent the SHA-256 of the checkpoint's canonical message and nothing else of it.
    assert hashlib.sha256(message).digest() in tsa_settings.requests[-1]
    token = base64.b64decode(checkpoint.tsa_token)
    info = timestamp_verify(token=token, message=message, trusted=tsa_certificates_load(tsa_settings.ca_file))
    assert abs(info.gen_time - checkpoint.signed_at) < dt.timedelta(minutes=1)
    assert checkpoint.timestamped_at == info.gen_time
    anchored = anchor_dir() / f"{anchor_stem(checkpoint.payload)}.tsr"
    assert anchored.read_bytes() == token
    # OpenSSL agrees, without the app: the anchored token covers the message's digest.
    openssl = subprocess.run(
        ["openssl", "ts", "-verify", "-digest", hashlib.sha256(message).hexdigest(), "-in", str(anchored),
         "-token_in", "-CAfile", str(tsa_settings.ca_file)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Verification: OK" in openssl.stdout, openssl.stderr
    result = audit_verify(organisation=busy_org)
    assert result.ok, result.problem


def test_a_token_that_does_not_cover_the_checkpoint_is_reported(busy_org, signing_key, tsa_settings):
    first = checkpoint_create(organisation=busy_org)
    second = checkpoint_create(organisation=busy_org)
    with pytest.raises(TimestampInvalid, match="different message"):
        timestamp_verify(
            token=base64.b64decode(first.tsa_token),
            message=checkpoint_message(second.payload),
            trusted=tsa_certificates_load(tsa_settings.ca_file),
        )
    AuditCheckpoint.objects.filter(pk=second.pk).update(tsa_token=first.tsa_token)
    result = audit_verify(organisation=busy_org)
    assert result.problem.kind == "bad timestamp"
    assert f"checkpoint #{second.sequence}" in result.problem.detail
    assert "different message" in result.problem.detail


def test_a_token_from_a_tsa_we_do_not_trust_is_refused(busy_org, signing_key, tsa_settings, settings, other_ca):
    settings.AUDIT_TSA_CA_FILE = str(other_ca)
    checkpoint = checkpoint_create(organisation=busy_org)
    assert checkpoint.timestamp_status == TimestampStatus.NOT_TIMESTAMPED
    assert "not a trusted TSA" in checkpoint.timestamp_error
    with pytest.raises(TimestampError, match="not a trusted TSA"):
        timestamp_fetch(url=tsa_settings.url, message=b"x", trusted=tsa_certificates_load(other_ca))


def test_verifying_a_stored_token_without_a_trusted_tsa_fails_clearly(busy_org, signing_key, tsa_settings, settings):
    checkpoint_create(organisation=busy_org)
    settings.AUDIT_TSA_CA_FILE = ""
    result = audit_verify(organisation=busy_org)
    assert result.problem.kind == "bad timestamp"
    assert "set AUDIT_TSA_CA_FILE" in result.problem.detail


def test_an_unreachable_tsa_keeps_the_checkpoint_flagged_and_a_later_retry_stamps_it(
    busy_org, signing_key, settings, local_tsa
):
    settings.AUDIT_TSA_URL = f"http://127.0.0.1:{_closed_port()}/tsa"
    settings.AUDIT_TSA_CA_FILE = str(local_tsa.ca_file)
    checkpoint = checkpoint_create(organisation=busy_org)
    assert AuditCheckpoint.objects.filter(pk=checkpoint.pk).exists()  # never lost
    assert checkpoint.timestamp_status == TimestampStatus.NOT_TIMESTAMPED
    assert "unreachable" in checkpoint.timestamp_error
    assert checkpoint.timestamp_attempts == 1
    assert checkpoint.anchor_status == AnchorStatus.ANCHORED  # the anchor does not wait for the TSA
    html = render_to_string("audit/_badge.html", {"badge": integrity_badge(organisation=busy_org)})
    assert "Not timestamped: the TSA at" in html
    assert audit_verify(organisation=busy_org).ok  # not yet timestamped is not tampering

    retry_at = checkpoint.timestamp_retry_at
    assert checkpoints_unfinished(now=retry_at - dt.timedelta(seconds=1)) == []
    assert checkpoints_unfinished(now=retry_at) == [checkpoint.pk]
    assert checkpoint_finish(checkpoint=checkpoint, now=retry_at - dt.timedelta(seconds=1)).timestamp_attempts == 1

    settings.AUDIT_TSA_URL = local_tsa.url  # the TSA is back, and the retry time has come
    AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(timestamp_retry_at=timezone.now())
    from assessments.audit.tasks import audit_checkpoint_finish

    assert audit_checkpoint_finish(checkpoint.pk) is True
    checkpoint.refresh_from_db()
    assert checkpoint.timestamp_status == TimestampStatus.TIMESTAMPED
    assert (checkpoint.timestamp_attempts, checkpoint.timestamp_error, checkpoint.timestamp_retry_at) == (2, "", None)
    assert checkpoint.anchor_status == AnchorStatus.ANCHORED
    assert (anchor_dir() / f"{anchor_stem(checkpoint.payload)}.tsr").is_file()
    assert audit_verify(organisation=busy_org).ok


def test_a_second_retry_waits_longer(busy_org, signing_key, settings):
    settings.AUDIT_TSA_URL = f"http://127.0.0.1:{_closed_port()}/tsa"
    checkpoint = checkpoint_create(organisation=busy_org)
    first_wait = checkpoint.timestamp_retry_at - checkpoint.signed_at
    checkpoint = checkpoint_finish(checkpoint=checkpoint, now=checkpoint.timestamp_retry_at)
    assert checkpoint.timestamp_attempts == 2
    assert checkpoint.timestamp_retry_at - checkpoint.signed_at > first_wait + dt.timedelta(minutes=1)
