"""Every outbound HTTP request Preflight makes goes through ``outbound_get`` (SSRF-safe).

(Being written: see the module's final version for the rules.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from assessments.evidence.connectors.base import ConnectorError


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str


class OutboundError(ConnectorError):
    """A request refused or failed; the message says why in words."""


def outbound_get(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
    max_redirects: int = 3,
) -> OutboundResponse:
    raise NotImplementedError
