from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

from assessments.audit.signing import signing_key_ensure
from assessments.pilots.models import Response
from assessments.pilots.services import evidence_add, pilot_create, response_update

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _hermetic_audit_settings(settings):
    """Checkpoint settings from the developer's environment must not leak into these tests."""
    settings.AUDIT_ANCHOR_DIR = ""
    settings.AUDIT_TRUSTED_KEY_IDS = []
    settings.AUDIT_TSA_URL = ""
    settings.AUDIT_TSA_CA_FILE = ""
    settings.AUDIT_CHECKPOINT_EVERY_EVENTS = 100
    settings.AUDIT_CHECKPOINT_EVERY_MINUTES = 15


@pytest.fixture
def raw_sql():
    """Run SQL as an attacker with database access would: with the append-only trigger off
    (what a superuser can do; ALTER TABLE … DISABLE TRIGGER would wait for the test's own transaction)."""

    def run(sql: str, params: list | tuple = ()) -> int:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = replica")
            try:
                cursor.execute(sql, params)
                return cursor.rowcount
            finally:
                if connection.vendor == "postgresql":
                    cursor.execute("SET session_replication_role = origin")

    return run


@pytest.fixture
def signing_key(settings):
    return signing_key_ensure()


@pytest.fixture
def busy_org(framework, users, owner_actor):
    """An organisation with a pilot, a dozen answered criteria and one uploaded file."""
    from assessments.pilots.services import UploadedEvidenceFile

    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Audited", technical_owner=users["owner"]
    )
    responses = list(Response.objects.filter(assessment__pilot=pilot).select_related("criterion")[:12])
    for response in responses:
        response_update(response=response, actor=owner_actor, expected_version=1, status="met")
    evidence_add(
        response=responses[0],
        actor=owner_actor,
        kind="file",
        title="Eval run",
        effective_date=dt.date(2026, 11, 1),
        upload=UploadedEvidenceFile(name="run.csv", content=b"case,ok\n1,true\n", content_type="text/csv"),
    )
    return framework.organisation


# --- a real RFC 3161 time-stamping authority: `openssl ts -reply` behind HTTP on 127.0.0.1 ---

TSA_CONFIG = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = {dir}/serial
crypto_device = builtin
signer_cert = {dir}/tsa.crt
certs = {dir}/ca.crt
signer_key = {dir}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@dataclass(frozen=True)
class LocalTsa:
    url: str
    ca_file: Path
    directory: Path
    requests: list[bytes]


def _openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=True)


def _throwaway_ca(directory: Path, name: str) -> None:
    """A CA and a TSA certificate it issued, with extendedKeyUsage critical,timeStamping."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", f"/CN={name} test CA", cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", f"/CN={name} TSA",
        cwd=directory,
    )  # fmt: skip
    (directory / "tsa.ext").write_text("extendedKeyUsage = critical,timeStamping\nbasicConstraints = CA:FALSE\n")
    _openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tsa.crt",
        "-days", "2", "-extfile", "tsa.ext", cwd=directory,
    )  # fmt: skip
    (directory / "serial").write_text("01\n")
    (directory / "tsa.cnf").write_text(TSA_CONFIG.format(dir=directory))


@pytest.fixture(scope="session")
def local_tsa(tmp_path_factory) -> Iterator[LocalTsa]:
    """A time-stamping authority on 127.0.0.1 answering application/timestamp-query with openssl."""
    if shutil.which("openssl") is None:
        if IN_CI:
            pytest.fail("the openssl command is needed for the local time-stamping authority")
        pytest.skip("no openssl command for the local time-stamping authority")
    directory = tmp_path_factory.mktemp("tsa")
    _throwaway_ca(directory, "Preflight")
    lock = threading.Lock()
    seen: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Type") != "application/timestamp-query":
                self.send_error(415)
                return
            with lock:  # openssl ts keeps its serial number in one file
                seen.append(body)
                (directory / "query.tsq").write_bytes(body)
                _openssl(
                    "ts", "-reply", "-config", "tsa.cnf", "-queryfile", "query.tsq", "-out", "reply.tsr", cwd=directory
                )
                reply = (directory / "reply.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LocalTsa(f"http://127.0.0.1:{server.server_address[1]}/tsa", directory / "ca.crt", directory, seen)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory) -> Path:
    """A CA that did not issue the local TSA's certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    directory = tmp_path_factory.mktemp("other-ca")
    _throwaway_ca(directory, "Stranger")
    return directory / "ca.crt"
