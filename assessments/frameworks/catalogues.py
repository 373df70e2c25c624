"""Regulation catalogues: the identifiers a framework may map its criteria to.

One JSON file per scheme under ``fixtures/regulations/`` holds every article, control,
subcategory or risk of a pinned edition, with its official title and, for the EU AI
Act, whom it binds and from which risk tier. The framework loader refuses a mapping
whose identifier is not in its scheme's catalogue, and records for each mapping the
tier from which the cited text is a legal obligation. The regulation-coverage view
reads the same files.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from assessments.frameworks.models import MappingScheme, RiskTier

CATALOGUE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "regulations"
CATALOGUE_FILES = {
    MappingScheme.EU_AI_ACT.value: "eu_ai_act.json",
    MappingScheme.ISO_42001.value: "iso_42001.json",
    MappingScheme.NIST_AI_RMF.value: "nist_ai_rmf.json",
    MappingScheme.OWASP_LLM.value: "owasp_llm_2025.json",
    MappingScheme.GDPR.value: "gdpr.json",
}
# Articles may be cited down to paragraph and point: "Art. 15(4)", "Art. 26(6)", "Art. 14(4)(e)".
_ARTICLE = re.compile(r"^(Art\. \d+[a-z]?)(\([0-9a-z]+\))*$")
_ARTICLE_SCHEMES = {MappingScheme.EU_AI_ACT.value, MappingScheme.GDPR.value}


class CatalogueError(ValueError):
    """A catalogue file that is missing or malformed (a broken installation, not bad input)."""


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    from_tier: str  # a RiskTier value, or "" when the text is not tied to a pilot's tier
    binds: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    scheme: str
    name: str
    edition: str
    entries: dict[str, Entry]
    file: str  # where it lives, for messages: "fixtures/regulations/eu_ai_act.json"

    def base_id(self, reference: str) -> str:
        """The catalogue id a reference cites: "Art. 15(4)" cites "Art. 15"."""
        if self.scheme in _ARTICLE_SCHEMES and (match := _ARTICLE.match(reference)):
            return match.group(1)
        return reference

    def lookup(self, reference: str) -> Entry | None:
        return self.entries.get(self.base_id(reference))


@functools.cache
def catalogue(scheme: str) -> Catalogue:
    """The catalogue of ``scheme`` (read once per process)."""
    name = CATALOGUE_FILES.get(scheme)
    if name is None:
        raise CatalogueError(f"no regulation catalogue is known for scheme {scheme!r}")
    path = CATALOGUE_DIR / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = {
            str(e["id"]): Entry(
                id=str(e["id"]),
                title=str(e["title"]),
                from_tier=str(e.get("from_tier", "")) if e.get("from_tier") in RiskTier.values else "",
                binds=tuple(str(b) for b in e.get("binds", ())),
            )
            for e in data["entries"]
        }
        return Catalogue(
            scheme=scheme,
            name=str(data["name"]),
            edition=str(data["edition"]),
            entries=entries,
            file=f"fixtures/regulations/{name}",
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogueError(f"the regulation catalogue {name} cannot be read: {exc}") from exc


def catalogues() -> list[Catalogue]:
    return [catalogue(scheme) for scheme in CATALOGUE_FILES]
