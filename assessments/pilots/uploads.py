"""Checks an uploaded evidence file before anything is stored.

The type is decided by the file's first bytes, not by its name or the browser's
claim; the name's extension must agree with what the content is. HTML, SVG and
executables are never accepted. The name itself is reduced to a plain base name
(``text.filename_safe``) before it is shown, stored or sent back in a download.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat

from assessments.pilots.services import UploadedEvidenceFile
from assessments.text import filename_safe


@dataclass(frozen=True)
class FileType:
    label: str
    content_type: str
    extensions: frozenset[str]


PDF = FileType("PDF", "application/pdf", frozenset({".pdf"}))
PNG = FileType("PNG image", "image/png", frozenset({".png"}))
JPEG = FileType("JPEG image", "image/jpeg", frozenset({".jpg", ".jpeg"}))
OFFICE = {
    ".docx": FileType(
        "Word document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", frozenset({".docx"})
    ),
    ".xlsx": FileType(
        "Excel workbook", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", frozenset({".xlsx"})
    ),
    ".pptx": FileType(
        "PowerPoint deck",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        frozenset({".pptx"}),
    ),
}
TEXT_EXTENSIONS = {
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".xml": "application/xml",
    ".md": "text/markdown",
    ".log": "text/plain",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}
ALLOWED_DESCRIPTION = (
    "PDF, PNG, JPEG, Word, Excel, PowerPoint, or text (TXT, CSV, JSON, JSONL, XML, Markdown, YAML, log)"
)
_MARKUP_PREFIXES = (b"<!doctype html", b"<html", b"<svg", b"<script", b"<?xml-stylesheet")


def _sniff(head: bytes, content: bytes, suffix: str) -> FileType | None:
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return None
        if "[Content_Types].xml" in names and suffix in OFFICE:
            return OFFICE[suffix]
        return None
    if suffix in TEXT_EXTENSIONS:
        if b"\x00" in content:
            return None
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
        lowered = text.lstrip()[:200].lower().encode()
        if suffix != ".xml" and lowered.startswith(_MARKUP_PREFIXES):
            return None
        if suffix == ".xml" and (b"<svg" in text[:2000].lower().encode() or b"<html" in text[:2000].lower().encode()):
            return None
        return FileType(f"{suffix[1:].upper()} text", TEXT_EXTENSIONS[suffix], frozenset({suffix}))
    return None


def upload_check(upload: UploadedFile) -> UploadedEvidenceFile:
    """Return the checked file, or raise ValidationError saying exactly what is wrong."""
    limit = int(settings.FILE_UPLOAD_MAX_BYTES)
    name = filename_safe(upload.name or "", fallback="upload")
    size = upload.size or 0
    if size > limit:
        raise ValidationError(
            f"{name} is {size:,} bytes; the limit is {limit:,} bytes ({filesizeformat(limit)}).",
            code="too_large",
        )
    if size == 0:
        raise ValidationError(f"{name} is empty.", code="empty")
    content = upload.read(limit + 1)
    if len(content) > limit:
        raise ValidationError(f"{name} is larger than the {filesizeformat(limit)} limit.", code="too_large")
    suffix = PurePath(name).suffix.lower()
    detected = _sniff(content[:16], content, suffix)
    if detected is None:
        raise ValidationError(
            f"{name} is not an accepted file type. Accepted: {ALLOWED_DESCRIPTION}. "
            "The type is checked from the file's content, not its name.",
            code="type",
        )
    if suffix not in detected.extensions:
        raise ValidationError(
            f"{name} is named like a {suffix or 'file without extension'} but its content is a {detected.label}. "
            "Rename it to match its content.",
            code="disguised",
        )
    return UploadedEvidenceFile(name=name, content=content, content_type=detected.content_type)
