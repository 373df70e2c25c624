"""Readers for what AI teams' evaluation and usage tools write, turned into ``Facts``.

``eval_parse(data)`` recognises the format from the content alone (a file name proves
nothing: people rename files, URLs have none) and reads it:

==================  ===========================================================
format              what it is
==================  ===========================================================
``promptfoo``       ``promptfoo eval -o out.json`` (results version 3, and 2)
``junit``           JUnit XML: pytest, jest-junit, TestNG, Surefire
``lm_eval``         lm-evaluation-harness results JSON (v0.4 and the old minimal format)
``garak``           garak ``*.report.jsonl``
``inspect_ai``      Inspect AI JSON log, or the ``.eval`` zip archive
``deepeval``        DeepEval test-run JSON
``openai_evals``    OpenAI evals ``--record_path`` JSONL
``langfuse``        Langfuse trace export (one trace, a trace page, or a list)
``aiverify``        AI Verify test result(s)
==================  ===========================================================

Metric keys (``Facts.metrics``), present when the tool reports them:

- ``passed``, ``failed``, ``errors``, ``skipped``, ``total``: the tool's own counts, never
  re-derived. ``pass_rate`` = passed / total (0..1); skipped and errored cases did not pass.
- ``score:<name>``: a named score as the tool names it, e.g. lm-eval
  ``score:gsm8k/exact_match,strict-match``, promptfoo ``score:Correctness`` (namedScores),
  Inspect ``score:match/accuracy``, DeepEval ``score:Answer Relevancy``.
- ``cost_total`` (the application's model cost, in the tool's currency, usually USD),
  ``latency_ms_mean``; DeepEval's judge cost is ``evaluation_cost``.
- garak: ``probes`` (distinct probes run) and ``probe:<name>`` (that probe's pass rate).
- AI Verify: ``tests`` (test results in the file) when fairness conclusions give counts.

Details (``Facts.details``): ``format`` (the machine name above), ``format_label``,
``tool_version``, ``run_at`` (ISO 8601), ``dataset`` (``name`` plus a ``fingerprint``: a
hash of the case identities, so a changed golden set shows as a changed fingerprint), and
format-specific context (failing cases, model, status…). ``Facts.summary`` is one sentence.

``usage_parse(data, ...)`` reads usage and cost exports; see ``usage``.

Anything else — an unknown format, truncated JSON or XML, an HTML error page, binary data,
XML with entity tricks — raises ``FormatError`` (a non-transient ``ConnectorError``) whose
message names what the content looked like and what is wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from assessments.evidence.connectors.base import Facts
from assessments.evidence.formats import (
    aiverify,
    deepeval,
    garak,
    inspect_ai,
    junit,
    langfuse,
    lm_eval,
    openai_evals,
    promptfoo,
)
from assessments.evidence.formats._common import FormatError, check_size, decode_text, json_error_message
from assessments.evidence.formats.usage import usage_parse

__all__ = ["EVAL_FORMATS", "FormatError", "eval_parse", "usage_parse"]

# Order matters only where shapes could overlap: the most specific checks come first.
_JSON_DOCUMENTS: list[tuple[str, str, Callable[[Any], bool], Callable[[Any], Facts]]] = [
    (promptfoo.NAME, promptfoo.LABEL, promptfoo.sniff, promptfoo.parse),
    (inspect_ai.NAME, inspect_ai.LABEL, inspect_ai.sniff, inspect_ai.parse),
    (deepeval.NAME, deepeval.LABEL, deepeval.sniff, deepeval.parse),
    (lm_eval.NAME, lm_eval.LABEL, lm_eval.sniff, lm_eval.parse),
    (langfuse.NAME, langfuse.LABEL, langfuse.sniff, langfuse.parse),
    (aiverify.NAME, aiverify.LABEL, aiverify.sniff, aiverify.parse),
]
_JSON_LINES: list[tuple[str, str, Callable[[Any], bool], Callable[[list[str]], Facts]]] = [
    (garak.NAME, garak.LABEL, garak.sniff, garak.parse),
    (openai_evals.NAME, openai_evals.LABEL, openai_evals.sniff, openai_evals.parse),
]
_HINTS: list[tuple[str, tuple[str, ...]]] = [
    (promptfoo.LABEL, promptfoo.HINTS),
    (inspect_ai.LABEL, inspect_ai.HINTS),
    (deepeval.LABEL, deepeval.HINTS),
    (lm_eval.LABEL, lm_eval.HINTS),
    (garak.LABEL, garak.HINTS),
    (openai_evals.LABEL, openai_evals.HINTS),
    (langfuse.LABEL, langfuse.HINTS),
    (aiverify.LABEL, aiverify.HINTS),
]

EVAL_FORMATS: dict[str, str] = {
    **{name: label for name, label, _, _ in _JSON_DOCUMENTS},
    **{name: label for name, label, _, _ in _JSON_LINES},
    junit.NAME: junit.LABEL,
}
_TRIED = (
    "promptfoo JSON, JUnit XML, lm-evaluation-harness JSON, garak JSONL, Inspect AI log, "
    "DeepEval test run, OpenAI evals JSONL, Langfuse trace export, AI Verify result"
)
_HTML = re.compile(r"^\s*(<!doctype\s+html|<html|<head|<body)", re.I)


def _guess(text: str) -> str:
    """What a document that did not parse most resembles, from telltale keys in its start."""
    head = text[:8192]
    best = max(_HINTS, key=lambda item: sum(hint in head for hint in item[1]))
    return best[0] if any(hint in head for hint in best[1]) else "JSON"


def _first_line(text: str) -> Any:
    line = text.lstrip().split("\n", 1)[0]
    try:
        return json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None


def eval_parse(data: bytes) -> Facts:
    """Facts from an evaluation results file, whatever tool wrote it."""
    check_size(data)
    if data[:4] == b"PK\x03\x04":
        return inspect_ai.parse_archive(data)
    text = decode_text(data)
    stripped = text.lstrip()
    if _HTML.match(stripped):
        title = re.search(r"<title[^>]*>(.*?)</title>", stripped[:4096], re.I | re.S)
        said = f" titled {title.group(1).strip()[:80]!r}" if title else ""
        raise FormatError(
            f"This is an HTML web page{said}, not a results file: the URL probably needs signing in "
            "or points at a viewer page rather than the raw file."
        )
    if stripped.startswith("<"):
        # Any other XML reaches the JUnit reader too, so a malformed or hostile document gets
        # the XML parser's own message and a non-JUnit root is named.
        return junit.parse(stripped)
    if not stripped.startswith(("{", "[")):
        raise FormatError(f"This is not a recognised results format (tried {_TRIED}): it is neither JSON nor XML.")
    try:
        doc = json.loads(stripped)
    except json.JSONDecodeError as exc:
        first = _first_line(stripped)
        if first is not None and "\n" in stripped.strip():
            return _parse_lines(stripped)
        raise FormatError(json_error_message(_guess(stripped), stripped, exc)) from None
    except RecursionError:
        raise FormatError("This JSON is nested too deeply to be a results file.") from None
    for _, _, sniff, parse in _JSON_DOCUMENTS:
        if sniff(doc):
            return parse(doc)
    if isinstance(doc, dict) and any(sniff(doc) for _, _, sniff, _ in _JSON_LINES):
        return _parse_lines(stripped)
    keys = ", ".join(list(doc)[:8]) if isinstance(doc, dict) else f"a list of {len(doc)} items"
    raise FormatError(
        f"This JSON is not a recognised results format (tried {_TRIED}); its top level has {keys or 'nothing'}."
    )


def _parse_lines(text: str) -> Facts:
    lines = text.splitlines()
    first = _first_line(text)
    for _, _, sniff, parse in _JSON_LINES:
        if sniff(first):
            return parse(lines)
    raise FormatError(
        f"This is JSON lines but not a recognised results log (tried garak report JSONL, OpenAI evals JSONL); "
        f"the first line has keys {', '.join(list(first)[:8]) if isinstance(first, dict) else type(first).__name__}."
    )
