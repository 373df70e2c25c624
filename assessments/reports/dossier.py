"""The auditor's dossier: one zip per pilot that an outsider verifies offline.

The zip holds the organisation's audit events (export format 2) up to the newest
signed checkpoint, that checkpoint and its public key, the pilot report (when one
is given), every evidence file of the pilot up to a size limit (the rest listed),
a manifest with the SHA-256 of every file, the manifest's Ed25519 signature (by the
key that signed the checkpoint), the standalone verifier and a README. Then

    python verify_audit_export.py --dossier dossier.zip [--trusted-key KEY_ID]

checks all of it with Python and ``cryptography`` only, and names whatever changed.

Building reads and signs; it writes nothing to the database. The events stop at the
newest checkpoint so that every event in the zip is covered by a signature (the
command signs a fresh checkpoint first, see ``dossier_build`` the command).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.files.storage import default_storage
from django.utils import timezone

from assessments.audit import chain
from assessments.audit.checkpoints import checkpoint_sign
from assessments.audit.models import AuditCheckpoint
from assessments.audit.signing import SigningKeyMissing, key_id, signing_key_load
from assessments.audit.verify import audit_export
from assessments.evidence.models import LinkedSystem
from assessments.pilots.models import Evidence, EvidenceKind, Pilot
from assessments.reports.models import Report, ReportKind, ReportStatus
from assessments.reports.renderers import Rendered, ReportUnavailable, register

SIZE_LIMIT = 25 * 1024 * 1024  # evidence files above this are listed with their SHA-256, not copied
# The fixed date-time given to every zip member, so two builds of the same content are the same bytes.
ZIP_TIME = (2000, 1, 1, 0, 0, 0)
README = """Auditor's dossier: {pilot} ({organisation})
{rule}

Built {built_at} by Preflight. Everything here can be checked offline with Python 3.12
and the `cryptography` package (pip install cryptography); nothing needs the server.

    python verify_audit_export.py --dossier {zip_name} --trusted-key {key_id}

({zip_name} standing for this zip, under whatever name it reached you; the same works
on the folder it was unpacked into). It prints OK and exits 0 when everything holds,
or names each file, event or entry that changed and exits 1.

What it checks:
- events.jsonl: the organisation's audit trail, events 1 to {head}. Each line after the
  header is an event's canonical bytes, hashed as stored; each event holds the hash of
  the one before, so an edited, dropped, inserted or reordered event breaks the chain at
  that event.
- checkpoint.json: the newest signed checkpoint (#{checkpoint_sequence}). Its Ed25519
  signature covers the head and the hash of each event since the previous checkpoint.
- public_key.pem: the key that signed the checkpoint and the manifest. Its key id is
  {key_id}
  Ask the organisation for its published key id and pass it with --trusted-key: without
  it the verifier trusts the key in this zip, which proves only that the zip is
  self-consistent, not who made it.
- manifest.json (signed in manifest.sig): the SHA-256 of every file in this zip and of
  every evidence file of the pilot. Files larger than {size_limit} bytes are listed, not
  included; ask for them and compare their SHA-256 with the manifest. Evidence uploads
  are also compared with the SHA-256 the audit trail recorded when they were added.
- {report_line}

Events after checkpoint #{checkpoint_sequence} are not in this dossier: they are not
signed yet. Verifying the whole history of every checkpoint needs the anchor directory
(see the operator's README, "Audit trail").
"""


class DossierError(ReportUnavailable):
    """The dossier cannot be built (no signed checkpoint, no signing key, a key mismatch)."""


@dataclasses.dataclass(frozen=True)
class DossierManifest:
    """What a built dossier holds: the manifest itself and the figures worth showing."""

    manifest: dict[str, Any]
    manifest_sha256: str
    events: int
    head_sequence: int
    checkpoint_sequence: int
    key_id: str
    files_included: int
    files_listed: int
    report_included: bool


@dataclasses.dataclass(frozen=True)
class _EvidenceFile:
    kind: str
    object_id: int
    title: str
    stored_name: str
    original_name: str
    recorded_sha256: str


class _HashingWriter(io.RawIOBase):
    """Passes bytes on to ``target`` and into ``digest`` on the way."""

    def __init__(self, target: IO[bytes], digest: Any) -> None:
        super().__init__()
        self._target, self._digest = target, digest

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._digest.update(data)
        return self._target.write(data)


class _Archive:
    """The zip being written: each member added once, its SHA-256 kept for the manifest."""

    def __init__(self, out: BinaryIO) -> None:
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.digests: dict[str, str] = {}

    @staticmethod
    def _info(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def add(self, name: str, content: bytes, *, listed: bool = True) -> None:
        self.zip.writestr(self._info(name), content)
        if listed:
            self.digests[name] = hashlib.sha256(content).hexdigest()

    def add_events(self, name: str, *, pilot: Pilot, through: int) -> int:
        """The audit export, streamed into the zip (a large chain is never held in memory)."""
        digest = hashlib.sha256()
        with self.zip.open(self._info(name), "w", force_zip64=True) as member:
            writer = _HashingWriter(member, digest)
            count = audit_export(organisation=pilot.organisation, out=cast(IO[bytes], writer), through=through)
        self.digests[name] = digest.hexdigest()
        return count


def _safe(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "file"


def _evidence_files(pilot: Pilot) -> Iterator[_EvidenceFile]:
    """Every stored file of the pilot: manual evidence uploads, then linked-system uploads."""
    uploads = (
        Evidence.objects.filter(response__assessment__pilot=pilot, kind=EvidenceKind.FILE)
        .exclude(file="")
        .order_by("pk")
        .values_list("pk", "title", "file", "original_filename", "sha256")
    )
    for pk, title, name, original, digest in uploads:
        yield _EvidenceFile("pilot evidence", pk, title, name, original, digest)
    linked = (
        LinkedSystem.objects.filter(pilot=pilot)
        .exclude(upload="")
        .order_by("pk")
        .values_list("pk", "name", "upload", "upload_name", "upload_sha256")
    )
    for pk, title, name, original, digest in linked:
        yield _EvidenceFile("linked system upload", pk, title, name, original, digest)


def _stored(name: str, limit: int) -> tuple[int | None, str | None, bytes | None]:
    """(size, SHA-256, content if within ``limit``) of a stored file, or Nones when it is gone."""
    if not default_storage.exists(name):
        return None, None, None
    digest, size, kept = hashlib.sha256(), 0, io.BytesIO()
    with default_storage.open(name, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
            if size <= limit:
                kept.write(block)
    return size, digest.hexdigest(), kept.getvalue() if size <= limit else None


def _latest_checkpoint(pilot: Pilot) -> AuditCheckpoint:
    checkpoint = (
        AuditCheckpoint.objects.filter(organisation=pilot.organisation, sequence__gt=0)
        .order_by("-sequence", "-signed_at")
        .first()
    )
    if checkpoint is None:
        raise DossierError(
            f"{pilot.organisation.slug} has no signed checkpoint yet: run `manage.py audit_checkpoint` first"
        )
    return checkpoint


def _public_pem(payload: dict[str, Any]) -> bytes:
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(payload["public_key"]))
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def dossier_build(*, pilot: Pilot, pdf: bytes | None, out: BinaryIO, size_limit: int = SIZE_LIMIT) -> DossierManifest:
    """Write the pilot's dossier (a zip) to ``out`` and return its manifest.

    Needs a signed checkpoint and the signing key that made it (the manifest is signed
    with it); raises ``DossierError`` otherwise. Events after that checkpoint are left out.
    """
    checkpoint = _latest_checkpoint(pilot)
    try:
        key = signing_key_load()
    except SigningKeyMissing as exc:
        # Not the key's path: an administrator reads this on the reports page.
        raise DossierError(
            "the manifest is signed with the key that signed the newest checkpoint, and that key is not on "
            "this server: an operator restores it, or makes a new one and signs a new checkpoint"
        ) from exc
    if key_id(key.public_key()) != checkpoint.key_id:
        raise DossierError(
            "the newest checkpoint was signed by another key than this host's: sign a new checkpoint "
            "(`manage.py audit_checkpoint`) and build again"
        )
    organisation = pilot.organisation.slug
    archive = _Archive(out)
    count = archive.add_events("events.jsonl", pilot=pilot, through=checkpoint.sequence)
    archive.add("checkpoint.json", chain.canonical_json(checkpoint.payload) + b"\n")
    archive.add("public_key.pem", _public_pem(checkpoint.payload))
    archive.add("verify_audit_export.py", Path(chain.__file__).read_bytes())
    if pdf is not None:
        archive.add("report.pdf", pdf)

    entries: list[dict[str, Any]] = []
    included = listed = 0
    for item in _evidence_files(pilot):
        size, digest, content = _stored(item.stored_name, size_limit)
        entry: dict[str, Any] = {
            "kind": item.kind,
            "id": item.object_id,
            "title": item.title,
            "stored_name": item.stored_name,
            "original_name": item.original_name,
            "recorded_sha256": item.recorded_sha256,
            "sha256": digest,
            "size": size,
            "path": None,
        }
        if digest is None:
            entry["note"] = "missing from storage"
        elif digest != item.recorded_sha256:
            entry["note"] = "the stored file no longer matches the SHA-256 recorded when it was added"
        if content is not None and digest is not None:
            folder = "evidence" if item.kind == "pilot evidence" else "linked"
            entry["path"] = f"{folder}/{item.object_id}-{_safe(item.original_name or item.stored_name)}"
            archive.add(entry["path"], content)
            included += 1
        else:
            entry.setdefault("note", f"larger than the size limit ({size_limit} bytes): listed, not included")
            listed += 1
        entries.append(entry)

    built_at = chain.format_datetime(timezone.now())
    head_hash = checkpoint.payload["head_hash"]
    archive.add(
        "README.txt",
        README.format(
            pilot=pilot.name,
            organisation=organisation,
            rule="=" * 60,
            built_at=built_at,
            zip_name=f"dossier-{organisation}-{pilot.slug}.zip",
            key_id=checkpoint.key_id,
            head=checkpoint.sequence,
            checkpoint_sequence=checkpoint.sequence,
            size_limit=size_limit,
            report_line=(
                "report.pdf: the pilot's readiness report."
                if pdf is not None
                else "No report.pdf: this dossier was built without the pilot's PDF report."
            ),
        ).encode("utf-8"),
    )
    manifest: dict[str, Any] = {
        "format": chain.DOSSIER_FORMAT,
        "organisation": organisation,
        "pilot": {"id": pilot.pk, "slug": pilot.slug, "name": pilot.name},
        "built_at": built_at,
        "size_limit": size_limit,
        "events": {
            "file": "events.jsonl",
            "count": count,
            "head_sequence": checkpoint.sequence,
            "head_hash": head_hash,
        },
        "checkpoint": {"file": "checkpoint.json", "sequence": checkpoint.sequence, "key_id": checkpoint.key_id},
        "files": dict(sorted(archive.digests.items())),
        "evidence": entries,
    }
    manifest_bytes = chain.canonical_json(manifest) + b"\n"
    archive.add("manifest.json", manifest_bytes, listed=False)
    signature = base64.b64encode(key.sign(chain.DOSSIER_SIGNED_PREFIX + manifest_bytes)) + b"\n"
    archive.add("manifest.sig", signature, listed=False)
    archive.zip.close()
    return DossierManifest(
        manifest=manifest,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        events=count,
        head_sequence=checkpoint.sequence,
        checkpoint_sequence=checkpoint.sequence,
        key_id=checkpoint.key_id,
        files_included=included,
        files_listed=listed,
        report_included=pdf is not None,
    )


def latest_pilot_report_pdf(pilot: Pilot) -> bytes | None:
    """The newest finished PDF report of the pilot, or None."""
    report = (
        Report.objects.filter(pilot=pilot, kind=ReportKind.PILOT, status=ReportStatus.DONE)
        .exclude(file="")
        .order_by("-finished_at", "-pk")
        .first()
    )
    if report is None:
        return None
    with report.file.open("rb") as handle:
        return handle.read()


@register(ReportKind.DOSSIER)
def render_dossier(report: Report) -> Rendered:
    """The dossier as a report artefact: the pilot's newest finished PDF report, if any, inside.

    Unlike the command, which streams the zip to a file, this builds it in memory (a report
    is stored from bytes), within the render's memory limit (``REPORT_RENDER_MAX_MEMORY``):
    an organisation whose trail outgrows it builds its dossier with ``manage.py dossier_build``."""
    if report.pilot is None:
        raise DossierError("a dossier is built for a pilot")
    # As the command does: sign a checkpoint over the chain as it stands now (after verifying
    # it), so the dossier covers the events up to this request, not up to the hourly checkpoint.
    try:
        outcome = checkpoint_sign(organisation=report.pilot.organisation)
    except SigningKeyMissing as exc:
        raise DossierError(
            "the audit signing key is not on this server; an operator restores it or makes a new one"
        ) from exc
    if outcome.checkpoint is None and outcome.verification is not None and not outcome.verification.ok:
        raise DossierError(
            f"the organisation's audit chain does not verify, so no dossier is built over it: {outcome.skipped}"
        )
    out = io.BytesIO()
    built = dossier_build(pilot=report.pilot, pdf=latest_pilot_report_pdf(report.pilot), out=out)
    return Rendered(
        content=out.getvalue(),
        filename=f"dossier-{report.pilot.organisation.slug}-{report.pilot.slug}.zip",
        content_type="application/zip",
        summary={"events": built.events, "checkpoint": built.checkpoint_sequence, "files": built.files_included},
    )
