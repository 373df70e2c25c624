"""Which function turns a ``Report`` row into bytes, by kind.

A renderer takes the report row (its ``pilot`` or ``organisation`` says what to render)
and returns ``Rendered``: the bytes, a download file name and a content type. It reads,
never writes: the service stores the file, hashes it and records the audit event.

Renderers register themselves with ``@register(kind)`` when their module is imported.
The pilot and portfolio reports live here; the statement-of-work (``sow``) and dossier
(``dossier``) modules are imported lazily the first time their kind is asked for, and
a kind whose module is absent is simply not offered (``available_kinds``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assessments.reports.models import ReportKind

if TYPE_CHECKING:
    from assessments.reports.models import Report


@dataclass(frozen=True)
class Rendered:
    content: bytes
    filename: str
    content_type: str
    # Optional headline figures kept on the row (``Report.summary``), e.g. {"overall": 72, "ready": false}.
    summary: dict[str, object] = field(default_factory=dict)


Renderer = Callable[["Report"], Rendered]

_REGISTRY: dict[str, Renderer] = {}

# Where each kind's renderer lives; importing the module registers it.
MODULES: dict[str, str] = {
    ReportKind.PILOT: "assessments.reports.pilot_report",
    ReportKind.PORTFOLIO: "assessments.reports.portfolio",
    ReportKind.SOW_MD: "assessments.reports.sow",
    ReportKind.SOW_DOCX: "assessments.reports.sow",
    ReportKind.SOW_PDF: "assessments.reports.sow",
    ReportKind.DOSSIER: "assessments.reports.dossier",
}


class RendererMissing(LookupError):
    """No renderer is installed for this kind."""


class ReportUnavailable(Exception):
    """What the report is about cannot be reported on as things stand (no open assessment,
    no signed checkpoint); the message says why in words fit to show the person who asked."""


def register(kind: str) -> Callable[[Renderer], Renderer]:
    def decorator(function: Renderer) -> Renderer:
        _REGISTRY[kind] = function
        return function

    return decorator


def _load(kind: str) -> None:
    module = MODULES.get(kind)
    if module is None or kind in _REGISTRY:
        return
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # the module exists but something it imports is missing: a real error
            raise


def renderer_for(kind: str) -> Renderer:
    _load(kind)
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise RendererMissing(f"no renderer is installed for {kind!r} reports") from None


def available_kinds() -> list[str]:
    """The kinds that can be rendered here, in the order ``ReportKind`` lists them."""
    kinds = []
    for kind in ReportKind.values:
        try:
            renderer_for(kind)
        except RendererMissing:
            continue
        kinds.append(kind)
    return kinds
