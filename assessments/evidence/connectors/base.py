"""The one small interface every connector implements, and the registry of connectors by kind.

A connector turns what a linked system says into ``Facts``: named numbers that a check
rule compares against a threshold, plus details a person reads. It never touches the
database: the evidence services hand it a ``Source`` (settings, decrypted secrets, an
uploaded file's bytes) and store what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True)
class Facts:
    """What a linked system said, normalised.

    ``metrics``: named numbers a rule can compare (``pass_rate``, ``total``, ``oncall_people``…).
    ``details``: JSON-serialisable context for people (the format, tool version, dataset identity,
    a series for a chart). ``summary``: one sentence, e.g. "383 of 412 cases passed (0.93)".
    """

    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


@dataclass(frozen=True)
class Fetched:
    """Facts and the raw bytes they were read from (hashed and sized for the record, not kept)."""

    facts: Facts
    payload: bytes


class ConnectorError(Exception):
    """A fetch or a parse that gave no facts. The message is for a person ("GitHub answered
    404 for repos/acme/claims: check the repository name"); ``transient`` errors (timeouts,
    5xx, connection refused) are retried with backoff, the rest fail the run at once."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Source:
    """What a connector is given for one run.

    ``configuration``: the linked system's kind-specific settings (a URL, a repository, a
    schedule id…). ``secrets``: decrypted credentials (a token), never logged or stored in
    facts. ``file``: an uploaded (or demo fixture) file's bytes for file-backed systems.
    ``context``: what the pilot says that a connector may need (``expected_monthly_volume``,
    ``cost_envelope_per_task``).
    """

    configuration: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    file: bytes | None = None
    context: dict[str, Any] = field(default_factory=dict)


class Connector(Protocol):
    kind: ClassVar[str]
    label: ClassVar[str]

    def test_connection(self, source: Source) -> str:
        """A sentence saying what was reached, or ConnectorError."""
        ...

    def fetch(self, source: Source) -> Fetched:
        """Facts, or ConnectorError with a readable message."""
        ...


REGISTRY: dict[str, Connector] = {}


def register[C](cls: type[C]) -> type[C]:
    """Class decorator: one connector instance per kind."""
    instance: Any = cls()
    REGISTRY[instance.kind] = instance
    return cls


def connector_for(kind: str) -> Connector:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ConnectorError(f"No connector handles linked systems of kind {kind!r}.") from None
