"""Eval results from an uploaded file or a URL: whatever tool wrote them, read by content.

The file wins over the URL: an uploaded (or demo fixture) file is what the person chose to
show; the URL is fetched only when there is no file, always through ``outbound_get``.
"""

from __future__ import annotations

from typing import ClassVar

from assessments.evidence.connectors.base import ConnectorError, Fetched, Source, register
from assessments.evidence.formats import eval_parse
from assessments.evidence.formats._common import MAX_INPUT_BYTES
from assessments.evidence.outbound import outbound_get


def source_bytes(source: Source) -> tuple[bytes, str]:
    """The bytes to read and a phrase saying where they came from."""
    if source.file is not None:
        return source.file, f"the uploaded file ({_size(len(source.file))})"
    url = str(source.configuration.get("url") or "").strip()
    if not url:
        raise ConnectorError("Neither a file nor a URL is set: upload the results file or give its URL.")
    token = source.secrets.get("token")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    response = outbound_get(url, headers=headers, max_bytes=MAX_INPUT_BYTES)
    if response.status >= 400:
        raise ConnectorError(
            f"{url} answered {response.status}: check the address and that it needs no sign-in.",
            transient=response.status >= 500 or response.status == 429,
        )
    return response.body, f"{response.url} ({response.status}, {_size(len(response.body))})"


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} kB"
    return f"{count / 1_048_576:.1f} MB"


@register
class EvalResultsConnector:
    kind: ClassVar[str] = "eval_results"
    label: ClassVar[str] = "Eval results (file or URL)"

    def test_connection(self, source: Source) -> str:
        data, origin = source_bytes(source)
        facts = eval_parse(data)
        total = facts.metrics.get("total")
        count = f", {int(total)} {'case' if total == 1 else 'cases'}" if total is not None else ""
        return f"Reached {origin}: {facts.details['format_label']}{count}."

    def fetch(self, source: Source) -> Fetched:
        data, _ = source_bytes(source)
        return Fetched(facts=eval_parse(data), payload=data)
