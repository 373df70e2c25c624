"""The auditor's dossier: it verifies offline with one command, and every kind of tampering is named.

The shipped verifier runs in a subprocess from the unpacked zip, isolated (``python -I``)
and with Django made unimportable, as an auditor with only Python and cryptography runs it.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from assessments.audit import chain
from assessments.audit.checkpoints import checkpoint_sign
from assessments.audit.models import AuditEvent
from assessments.audit.signing import key_id, public_key_b64, signing_key_ensure
from assessments.evidence.services import linked_system_create
from assessments.pilots.models import Evidence, Pilot, Response
from assessments.pilots.services import UploadedEvidenceFile, evidence_add, pilot_create, response_update
from assessments.reports.dossier import DossierError, dossier_build

EVAL_RESULTS = Path(__file__).resolve().parents[2] / "fixtures" / "evidence" / "promptfoo-goldenset-pass.json"
SIZE_LIMIT = 40_000
BIG = b"case,ok\n" + b"1,true\n" * 10_000  # above SIZE_LIMIT: listed, not included
RUN = (
    "import runpy, sys; sys.modules['django'] = None; "  # an `import django` anywhere now fails
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.fixture
def pilot(framework, users, owner_actor, settings) -> Pilot:
    """A pilot with answered criteria, a small and a large evidence upload, and a linked eval file."""
    signing_key_ensure()
    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )
    responses = list(Response.objects.filter(assessment__pilot=pilot)[:4])
    for response in responses:
        response_update(response=response, actor=owner_actor, expected_version=1, status="met")
    for name, content in (("run.csv", b"case,ok\n1,true\n"), ("big.csv", BIG)):
        evidence_add(
            response=responses[0],
            actor=owner_actor,
            kind="file",
            title=f"Eval {name}",
            effective_date=dt.date(2026, 11, 1),
            upload=UploadedEvidenceFile(name=name, content=content, content_type="text/csv"),
        )
    linked_system_create(
        pilot=pilot,
        actor=owner_actor,
        kind="eval_results",
        name="Golden set",
        upload=SimpleUploadedFile("results.json", EVAL_RESULTS.read_bytes()),
    )
    assert checkpoint_sign(organisation=pilot.organisation).checkpoint is not None
    return pilot


@pytest.fixture
def dossier(pilot, tmp_path) -> Path:
    target = tmp_path / "dossier.zip"
    with target.open("wb") as out:
        dossier_build(pilot=pilot, pdf=b"%PDF-1.7 the readiness report\n%%EOF\n", out=out, size_limit=SIZE_LIMIT)
    return target


@pytest.fixture
def unpacked(dossier, tmp_path) -> Path:
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(dossier) as archive:
        archive.extractall(folder)
    return folder


def verify(folder: Path, target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The auditor's one command, run with the verifier shipped in ``folder``."""
    return subprocess.run(
        [sys.executable, "-I", "-c", RUN, str(folder / "verify_audit_export.py"), "--dossier", str(target), *extra],
        capture_output=True,
        text=True,
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        timeout=60,
        check=False,
    )


def test_the_dossier_verifies_offline_with_one_command(pilot, dossier, unpacked):
    names = set(zipfile.ZipFile(dossier).namelist())
    assert {"manifest.json", "manifest.sig", "events.jsonl", "checkpoint.json", "public_key.pem", "report.pdf"} <= names
    assert {"README.txt", "verify_audit_export.py"} <= names
    manifest = json.loads((unpacked / "manifest.json").read_bytes())
    evidence = {entry["title"]: entry for entry in manifest["evidence"]}
    assert evidence["Eval run.csv"]["path"] in names
    assert evidence["Golden set"]["path"] in names  # the linked system's upload
    assert evidence["Eval big.csv"]["path"] is None and evidence["Eval big.csv"]["size"] == len(BIG)
    assert evidence["Eval big.csv"]["sha256"] == Evidence.objects.get(title="Eval big.csv").sha256
    events = AuditEvent.objects.filter(organisation=pilot.organisation).count()
    assert manifest["events"]["head_sequence"] == events

    for target in (dossier, unpacked):
        result = verify(unpacked, target)
        assert result.returncode == 0, result.stderr
        assert f"{events} events" in result.stdout and "taken from the dossier" in result.stdout
    pinned = verify(unpacked, dossier, "--trusted-key", manifest["checkpoint"]["key_id"])
    assert pinned.returncode == 0, pinned.stderr
    assert "given with --trusted-key" in pinned.stdout


def _lines(folder: Path) -> list[bytes]:
    return (folder / "events.jsonl").read_bytes().splitlines(keepends=True)


def _edit_event(folder: Path) -> None:
    lines = _lines(folder)
    lines[3] = lines[3].replace(b'"actor_label":"', b'"actor_label":"X', 1)  # line 3 is event 3
    (folder / "events.jsonl").write_bytes(b"".join(lines))


def _drop_event(folder: Path) -> None:
    lines = _lines(folder)
    del lines[5]
    (folder / "events.jsonl").write_bytes(b"".join(lines))


def _edit_manifest(folder: Path) -> None:
    path = folder / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"Claims triage"', b'"Claims triagE"', 1))


def _edit_manifest_hash(folder: Path) -> None:
    """The manifest's record of an uploaded file rewritten to match a substituted file."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_bytes())
    entry = next(e for e in manifest["evidence"] if e["title"] == "Eval big.csv")
    entry["sha256"] = entry["recorded_sha256"] = "f" * 64
    path.write_bytes(chain.canonical_json(manifest) + b"\n")


def _edit_file(folder: Path) -> None:
    path = next((folder / "evidence").glob("*run.csv"))
    path.write_bytes(path.read_bytes().replace(b"true", b"fals"))


def _edit_report(folder: Path) -> None:
    path = folder / "report.pdf"
    path.write_bytes(path.read_bytes().replace(b"readiness", b"Readiness"))


def _edit_signature(folder: Path) -> None:
    path = folder / "checkpoint.json"
    checkpoint = json.loads(path.read_bytes())
    raw = bytearray(base64.b64decode(checkpoint["signature"]))
    raw[0] ^= 1
    checkpoint["signature"] = base64.b64encode(bytes(raw)).decode()
    path.write_bytes(chain.canonical_json(checkpoint) + b"\n")


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _swap_key(folder: Path) -> None:
    (folder / "public_key.pem").write_bytes(_pem(Ed25519PrivateKey.generate()))


def _add_file(folder: Path) -> None:
    (folder / "evidence" / "extra.csv").write_bytes(b"case,ok\n")


TAMPERING: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "an event byte": (_edit_event, ["events.jsonl: sequence 3: hash mismatch", "signed checkpoint"]),
    "a dropped event": (_drop_event, ["events.jsonl: sequence 5: gap in sequence: event 5 is missing"]),
    "the manifest": (_edit_manifest, ["manifest.json: altered: its signature (manifest.sig) does not verify"]),
    "an evidence hash in the manifest": (
        _edit_manifest_hash,
        ["manifest.json: altered", "evidence 'Eval big.csv'", "recorded"],
    ),
    "an included file": (_edit_file, ["run.csv (evidence 'Eval run.csv' (pilot evidence #", "): altered: its SHA-256"]),
    "the report": (_edit_report, ["report.pdf: altered"]),
    "the checkpoint signature": (_edit_signature, ["checkpoint.json: bad checkpoint signature"]),
    "a swapped public key": (_swap_key, ["public_key.pem: swapped"]),
    "an added file": (_add_file, ["evidence/extra.csv: not listed in the manifest"]),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_each_kind_of_tampering_is_caught_and_named(unpacked, kind):
    tamper, expected = TAMPERING[kind]
    tamper(unpacked)
    result = verify(unpacked, unpacked)
    assert result.returncode == 1, result.stdout
    for text in expected:
        assert text in result.stderr, result.stderr


def test_a_dossier_re_signed_with_another_key_fails_against_the_published_key(pilot, unpacked):
    """Swapping the key and re-signing the checkpoint and manifest holds together, but not against a pinned key."""
    manifest = json.loads((unpacked / "manifest.json").read_bytes())
    published = manifest["checkpoint"]["key_id"]
    forger = Ed25519PrivateKey.generate()
    checkpoint = json.loads((unpacked / "checkpoint.json").read_bytes())
    checkpoint |= {"key_id": key_id(forger.public_key()), "public_key": public_key_b64(forger.public_key())}
    checkpoint["signature"] = base64.b64encode(forger.sign(chain.checkpoint_message(checkpoint))).decode()
    (unpacked / "checkpoint.json").write_bytes(chain.canonical_json(checkpoint) + b"\n")
    (unpacked / "public_key.pem").write_bytes(_pem(forger))
    manifest["checkpoint"]["key_id"] = checkpoint["key_id"]
    for name in ("checkpoint.json", "public_key.pem"):
        manifest["files"][name] = chain.sha256_file(unpacked / name)
    manifest_bytes = chain.canonical_json(manifest) + b"\n"
    (unpacked / "manifest.json").write_bytes(manifest_bytes)
    (unpacked / "manifest.sig").write_bytes(base64.b64encode(forger.sign(chain.DOSSIER_SIGNED_PREFIX + manifest_bytes)))
    assert verify(unpacked, unpacked).returncode == 0  # self-consistent: why the README says to pin the key
    result = verify(unpacked, unpacked, "--trusted-key", published)
    assert result.returncode == 1
    assert "checkpoint.json: untrusted checkpoint key" in result.stderr
    assert "manifest.sig: signed by key" in result.stderr


def test_a_stored_file_changed_on_the_server_is_named(pilot, tmp_path):
    evidence = Evidence.objects.get(title="Eval run.csv")
    with default_storage.open(evidence.file.name, "wb") as handle:
        handle.write(b"case,ok\n1,false\n")
    folder = tmp_path / "server"
    buffer = io.BytesIO()
    dossier_build(pilot=pilot, pdf=None, out=buffer, size_limit=SIZE_LIMIT)
    zipfile.ZipFile(buffer).extractall(folder)
    result = verify(folder, folder)
    assert result.returncode == 1
    assert "no longer matches the SHA-256 recorded when it was added" in result.stderr
    assert "report.pdf" not in result.stderr  # built without a report, and says so in its README
    assert "without the pilot's PDF report" in (folder / "README.txt").read_text()


def test_it_refuses_without_a_signed_checkpoint(framework, users, owner_actor):
    signing_key_ensure()
    pilot = pilot_create(organisation=framework.organisation, actor=owner_actor, name="Unsigned")
    with pytest.raises(DossierError, match="no signed checkpoint"):
        dossier_build(pilot=pilot, pdf=None, out=io.BytesIO())


def test_the_command_builds_a_dossier_with_the_report_that_verifies(pilot, tmp_path):
    out = tmp_path / "cmd" / "dossier.zip"
    out.parent.mkdir()
    stdout = io.StringIO()
    call_command("dossier_build", "--pilot", str(pilot.pk), "--out", str(out), stdout=stdout)
    assert "with the PDF report" in stdout.getvalue()
    folder = tmp_path / "cmd" / "unpacked"
    with zipfile.ZipFile(out) as archive:
        archive.extractall(folder)
    assert (folder / "report.pdf").read_bytes().startswith(b"%PDF")
    manifest = json.loads((folder / "manifest.json").read_bytes())
    # The checkpoint was signed after the report, so its audit event is inside the dossier.
    last = json.loads(_lines(folder)[-1])
    assert last["sequence"] == manifest["events"]["head_sequence"]
    assert AuditEvent.objects.filter(organisation=pilot.organisation, action__startswith="report.").exists()
    result = verify(folder, out, "--trusted-key", manifest["checkpoint"]["key_id"])
    assert result.returncode == 0, result.stderr


def test_a_dossier_asked_for_in_the_app_fails_with_what_to_do(framework, users, owner_actor, settings):
    """The reasons a dossier cannot be built reach the page as they are, not as "an internal error"."""
    from assessments.audit.context import Actor
    from assessments.reports.models import ReportKind, ReportStatus
    from assessments.reports.services import report_render_execute, report_request

    pilot = pilot_create(organisation=framework.organisation, actor=owner_actor, name="Unsigned")
    admin = Actor.for_user(users["admin"])
    report = report_request(kind=ReportKind.DOSSIER, pilot=pilot, actor=admin)
    done = report_render_execute(report_id=report.pk)
    assert done is not None and done.status == ReportStatus.FAILED
    assert done.error == "the audit signing key is not on this server; an operator restores it or makes a new one"

    signing_key_ensure()
    assert checkpoint_sign(organisation=pilot.organisation).checkpoint is not None
    Path(settings.AUDIT_SIGNING_KEY_PATH).unlink()
    report = report_request(kind=ReportKind.DOSSIER, pilot=pilot, actor=admin)
    done = report_render_execute(report_id=report.pk)
    assert done is not None and done.status == ReportStatus.FAILED
    assert "signing key is not on this server" in done.error
    assert str(settings.AUDIT_SIGNING_KEY_PATH) not in done.error  # no server path on the page


def test_a_dossier_asked_for_in_the_app_covers_the_events_up_to_the_request(framework, users, owner_actor):
    """It signs a fresh checkpoint first, as the command does, instead of stopping at the last one."""
    from assessments.audit.context import Actor
    from assessments.audit.models import AuditChainHead
    from assessments.pilots.services import pilot_update
    from assessments.reports.models import ReportKind, ReportStatus
    from assessments.reports.services import report_render_execute, report_request

    signing_key_ensure()
    pilot = pilot_create(organisation=framework.organisation, actor=owner_actor, name="Signed")
    earlier = checkpoint_sign(organisation=pilot.organisation).checkpoint
    assert earlier is not None
    pilot_update(pilot=pilot, actor=Actor.for_user(users["admin"]), description="Changed after the last checkpoint.")
    report = report_request(kind=ReportKind.DOSSIER, pilot=pilot, actor=Actor.for_user(users["admin"]))
    done = report_render_execute(report_id=report.pk)
    assert done is not None and done.status == ReportStatus.DONE, done.error if done else None
    head = AuditChainHead.objects.get(organisation=pilot.organisation)
    assert done.summary["checkpoint"] > earlier.sequence
    assert done.summary["checkpoint"] <= head.sequence
