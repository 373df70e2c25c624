"""WeasyPrint in a box: HTML in, PDF bytes out, nothing fetched that we did not make.

- **Fetching.** The URL fetcher answers only ``data:`` URIs and the project's own
  static files (``{BASE}/static/<path>``, resolved through the staticfiles finders and
  checked to stay inside a static directory). Everything else — ``file://``, ``http(s)``,
  other schemes, traversal — raises, so WeasyPrint fetches nothing and draws nothing.
  There is no network code at all, hence no redirects to follow.
- **Attachments.** No ``attachments`` option is ever passed, and every ``rel`` that
  names ``attachment`` is neutralised before parsing, so a PDF never embeds a file.
- **Limits.** Rendering runs in a forked child process: the parent waits at most
  ``REPORT_RENDER_TIMEOUT`` seconds of wall time and then kills it; the child also
  sets ``RLIMIT_CPU`` as a backstop and ``RLIMIT_AS`` to what it already maps plus
  ``REPORT_RENDER_MAX_MEMORY`` bytes, so a hostile document runs out of memory in
  the child, not in the worker. Fork (not spawn) keeps WeasyPrint imported, and its fonts found, once per
  worker process.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import resource
import select
import signal
import time
import traceback
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders

# The base URL documents are rendered against; it resolves nowhere on the network
# (the .invalid top-level domain is reserved) and the fetcher maps only its /static/.
BASE_URL = "https://preflight.invalid/"
_STATIC_PREFIX = "/static/"
_MAX_DATA_URI = 5 * 1024 * 1024

# A start tag (never text: user text arrives escaped, so it holds no "<"), and within one,
# any rel attribute value containing "attachment", quoted or not.
_START_TAG = re.compile(r"<[a-zA-Z][^<>]*>")
_ATTACHMENT_REL = re.compile(r"""\brel\s*=\s*(["']?)[^"'>]*attachment[^"'>]*\1""", re.IGNORECASE)


class RenderError(Exception):
    """The document could not be rendered; the message is fit to show a person."""


class FetchRefused(ValueError):
    """A URL outside the sandbox was asked for."""


def _static_roots() -> list[Path]:
    roots = [Path(d).resolve() for d in getattr(settings, "STATICFILES_DIRS", [])]
    roots.append(Path(settings.STATIC_ROOT).resolve())
    return roots


def _resolve_static(relative: str, roots: list[Path]) -> Path:
    relative = unquote(relative)
    if not relative or "\x00" in relative or relative.startswith("/") or ".." in Path(relative).parts:
        raise FetchRefused("static path refused")
    found = finders.find(relative)
    candidates = [Path(found)] if isinstance(found, str) else []
    candidates += [root / relative for root in roots]
    for candidate in candidates:
        path = candidate.resolve()
        if path.is_file() and any(path.is_relative_to(root) for root in roots):
            return path
    raise FetchRefused("static file not found")


def _mime_for(path: Path) -> str:
    return {
        ".css": "text/css",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".woff2": "font/woff2",
        ".woff": "font/woff",
        ".ttf": "font/ttf",
    }.get(path.suffix.lower(), "application/octet-stream")


def _decode_data_uri(url: str) -> tuple[str, bytes]:
    header, sep, payload = url[5:].partition(",")
    if not sep or len(payload) > _MAX_DATA_URI:
        raise FetchRefused("malformed or oversized data: URI")
    params = header.split(";")
    mime = params[0] or "text/plain"
    if "base64" in params[1:]:
        try:
            return mime, base64.b64decode(payload, validate=False)
        except binascii.Error as exc:
            raise FetchRefused("bad base64 in data: URI") from exc
    return mime, unquote(payload).encode()


def _make_fetcher(roots: list[Path]) -> Any:
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class SandboxFetcher(URLFetcher):
        """Serves data: URIs and the project's static files; refuses everything else."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            if url[:5].lower() == "data:":
                mime, body = _decode_data_uri(url)
                return URLFetcherResponse(url, body, {"Content-Type": mime})
            parts = urlsplit(url)
            if (
                f"{parts.scheme}://{parts.netloc}/" != BASE_URL
                or not parts.path.startswith(_STATIC_PREFIX)
                or parts.query
                or parts.username
            ):
                raise FetchRefused(f"refused to fetch {url[:80]!r}")
            path = _resolve_static(parts.path[len(_STATIC_PREFIX) :], roots)
            return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": _mime_for(path)})

    return SandboxFetcher(allowed_protocols=("data", "https"), allow_redirects=False)


def neutralise_attachments(html: str) -> str:
    """Turn every ``rel=...attachment...`` inside a tag into an inert data attribute."""
    return _START_TAG.sub(lambda tag: _ATTACHMENT_REL.sub('data-rel-removed=""', tag[0]), html)


def _render_in_process(html: str, base_url: str, roots: list[Path]) -> bytes:
    from weasyprint import HTML

    document = HTML(string=neutralise_attachments(html), base_url=base_url, url_fetcher=_make_fetcher(roots))
    # Fixed identifier and no timestamps beyond what the HTML says: the bytes depend only on the HTML.
    pdf = document.write_pdf(attachments=None, pdf_identifier=b"preflight-report", custom_metadata=False)
    assert isinstance(pdf, bytes)
    return pdf


def _mapped_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * resource.getpagesize()


def _child(out: BinaryIO, html: str, base_url: str, roots: list[Path], seconds: int, memory: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (seconds + 1, seconds + 2))
        if memory:
            limit = _mapped_bytes() + memory
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        out.write(b"K" + _render_in_process(html, base_url, roots))
    except MemoryError:
        out.write(b"Ethe report needed more memory than rendering is allowed")
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"[:500]
        out.write(b"E" + message.encode("utf-8", "replace"))
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            out.close()
        os._exit(0)


def _read_until_eof(fd: int, deadline: float) -> bytes | None:
    """Everything the child writes, or None when the deadline passes first."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


_warm = False


def _warm_up() -> None:
    """Render a constant one-line document once in this process, so fontconfig and Pango have
    found and cached the fonts before any fork: every child then starts warm instead of paying
    font discovery on each report. Nothing is fetched (the document has no URL)."""
    global _warm
    if not _warm:
        from weasyprint import HTML

        HTML(string="<p>Preflight</p>").write_pdf()
        _warm = True


def pdf_render(html: str, *, base_url: str | None = None) -> bytes:
    """Render ``html`` to PDF bytes inside the sandbox, or raise ``RenderError``.

    ``base_url`` defaults to the sandbox's own base; another base is accepted only if it
    is that base too, because relative URLs must resolve to something the fetcher serves.
    """
    base = base_url or BASE_URL
    if base != BASE_URL:
        raise RenderError("reports render only against the sandbox's base URL")
    seconds = int(settings.REPORT_RENDER_TIMEOUT)
    memory = int(settings.REPORT_RENDER_MAX_MEMORY)
    roots = _static_roots()
    _warm_up()

    # A plain fork, not multiprocessing: Celery's prefork workers are daemonic processes,
    # which multiprocessing refuses to let have children.
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: render, write the answer, exit
        os.close(reader)
        _child(os.fdopen(writer, "wb"), html, base, roots, seconds, memory)
    os.close(writer)
    try:
        payload = _read_until_eof(reader, time.monotonic() + seconds)
    finally:
        os.close(reader)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # gone already when it answered; stopped when it did not
        os.waitpid(pid, 0)
    if payload is None:
        raise RenderError(f"rendering took longer than {seconds} seconds and was stopped")
    if not payload:
        raise RenderError("the renderer stopped without an answer (out of memory or killed)")
    if payload[:1] != b"K":
        raise RenderError(f"rendering failed: {payload[1:].decode('utf-8', 'replace')}")
    return payload[1:]
