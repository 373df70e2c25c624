"""Rules for text that one person types and other people read.

Names and titles are shown next to other text (table rows, headings, the
activity feed, spreadsheets), and three kinds of character let such text lie
about itself:

* **control characters** (C0, DEL, C1): invisible, meaningless in a name, and
  most C0 controls cannot be stored in an XLSX file at all;
* **bidirectional controls** (embeddings, overrides, isolates and marks): they
  reorder the text around them, so a name can display reversed or an
  ``exe.pdf`` can read as ``fdp.exe`` ("Trojan Source");
* **other invisible format characters** (zero-width space and joiners, word
  joiner, soft hyphen, byte-order mark, tag characters): two names look the
  same but compare different.

The policy, one place for forms, services and exports:

* One-line text (names, titles, usernames, metrics) refuses every character of
  the Unicode categories Cc (controls), Cf (format: covers all bidi controls
  and invisible formatters), Zl and Zp (line and paragraph separators). The
  cost: emoji built with a zero-width joiner and the zero-width non-joiner of
  Persian or Indic spelling are refused in names; prose keeps them.
* Multi-line prose (descriptions, justification, notes, guidance) keeps tab,
  line feed and carriage return (browsers send CRLF) and refuses every other
  control character. Format characters stay allowed there, because right-to-left
  and Indic prose needs marks and joiners; templates isolate user text
  (``<bdi>``) so it cannot reorder anything outside its own element.
* Two names are the same name when they differ only by invisible characters,
  case, spacing or compatibility forms (NFKC): see ``name_key``.
* Exports replace what XML 1.0 cannot hold, and other controls, with U+FFFD.
* Upload names are reduced to a plain base name: see ``filename_safe``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import PurePosixPath
from urllib.parse import unquote

from django import forms
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# The characters Unicode defines to change display order (UAX #9): the Arabic
# letter mark, LRM and RLM, the embeddings and overrides, and the isolates.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_PROSE_CONTROLS_ALLOWED = frozenset("\t\n\r")
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_SEPARATORS = frozenset("/\\")
REPLACEMENT = "\ufffd"
FILENAME_MAX_LENGTH = 255


def char_label(char: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``; controls have no name, only their code point."""
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    return f"{code} {name}" if name else code


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """What is wrong with ``value`` as user text, as a clause after "This text", or None."""
    for position, char in enumerate(value, start=1):
        category = unicodedata.category(char)
        if category == "Cc":
            if multiline and char in _PROSE_CONTROLS_ALLOWED:
                continue
            return f"contains the control character {char_label(char)} (character {position})"
        if multiline:
            continue
        if char in BIDI_CONTROLS:
            return f"contains {char_label(char)}, which can make text display reversed (character {position})"
        if category == "Cf":
            return (
                f"contains {char_label(char)}, an invisible character that can make two names look the same "
                f"(character {position})"
            )
        if category in {"Zl", "Zp"}:
            return f"contains {char_label(char)}, a line break in one-line text (character {position})"
    return None


def text_check(value: str, *, multiline: bool = False, subject: str = "This text", field: str | None = None) -> None:
    """Raise ValidationError naming the first refused character, keyed by ``field`` when given."""
    problem = text_problem(value, multiline=multiline)
    if problem is None:
        return
    error = ValidationError(f"{subject} {problem}. Remove it and save again.", code="hostile_character")
    if field:
        raise ValidationError({field: [error]})
    raise error


@deconstructible
class PlainTextValidator:
    """Form and model validator: ``PlainTextValidator()`` for one-line text, ``multiline=True`` for prose."""

    def __init__(self, *, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, value: object) -> None:
        if isinstance(value, str):
            text_check(value, multiline=self.multiline)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlainTextValidator) and other.multiline == self.multiline

    def __hash__(self) -> int:
        return hash((PlainTextValidator, self.multiline))


ONE_LINE = PlainTextValidator()
PROSE = PlainTextValidator(multiline=True)


def text_rules_apply(
    fields: dict[str, forms.Field], *, one_line: Iterable[str] = (), prose: Iterable[str] = ()
) -> None:
    """Add the rules to a form's (per-instance) fields, for forms whose fields come from a model."""
    for name in one_line:
        fields[name].validators.append(ONE_LINE)
    for name in prose:
        fields[name].validators.append(PROSE)


def name_key(value: str) -> str:
    """The form of a name used to decide whether two names are the same name.

    NFKC folds compatibility forms (full-width letters, ligatures, superscripts),
    invisible characters are dropped, case is folded (then NFKC again, as case
    folding can un-normalise) and runs of spacing become one space.
    """
    text = unicodedata.normalize("NFKC", value)
    text = "".join(c for c in text if unicodedata.category(c) not in _HIDDEN_CATEGORIES)
    text = unicodedata.normalize("NFKC", text.casefold())
    return " ".join(text.split())


def name_clash(value: str, existing: Iterable[str]) -> str | None:
    """The first of ``existing`` that is the same name as ``value`` (see ``name_key``), or None."""
    key = name_key(value)
    if not key:
        return None
    return next((name for name in existing if name_key(name) == key), None)


def name_distinct_check(value: str, existing: Iterable[str], *, kind: str, where: str, field: str = "name") -> None:
    """Refuse ``value`` if it is the same name as one of ``existing`` (see ``name_key``)."""
    clash = name_clash(value, existing)
    if clash is not None:
        raise ValidationError(
            {
                field: ValidationError(
                    f"{where} already has a {kind} named “{clash}”. Names that differ only in case, spacing, "
                    "character width or invisible characters count as the same name; choose a different one.",
                    code="name_taken",
                )
            }
        )


def _is_separator(char: str) -> bool:
    # After NFKC the full-width and small solidus forms are ASCII; what remains
    # (division slash, fraction slash, big solidus...) is found by name.
    if char in _SEPARATORS:
        return True
    category = unicodedata.category(char)
    name = unicodedata.name(char, "")
    return category[0] in {"P", "S"} and ("SOLIDUS" in name or "SLASH" in name)


def filename_safe(name: str, *, fallback: str = "file", max_length: int = FILENAME_MAX_LENGTH) -> str:
    """A base name safe to show and to send in Content-Disposition.

    Percent-encoding is undone until stable (``%252F`` is ``/`` twice hidden),
    the result NFKC-normalised (a full-width solidus becomes ``/``), every slash-like
    character treated as a separator and only the last part kept. Hidden
    characters, leading dots and trailing dots or spaces are dropped; a long
    name keeps its extension.
    """
    text = name
    for _ in range(len(name)):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) not in _HIDDEN_CATEGORIES)
    text = "".join("/" if _is_separator(c) else c for c in text)
    parts = [part for part in text.split("/") if part.strip(" .")]
    base = " ".join(parts[-1].split()).lstrip(". ").rstrip(". ") if parts else ""
    if not base:
        return fallback
    if len(base) > max_length:
        suffix = PurePosixPath(base).suffix
        suffix = suffix if len(suffix) <= 16 else ""
        base = base[: max_length - len(suffix)] + suffix
    return base


def cell_text(value: str) -> str:
    """Text a spreadsheet can hold: controls other than tab and newlines become U+FFFD.

    XML 1.0, the format inside an XLSX file, cannot hold C0 controls, surrogates
    or U+FFFE/U+FFFF; C1 controls and DEL are allowed there but only ever junk.
    """
    return "".join(
        REPLACEMENT
        if (unicodedata.category(c) in {"Cc", "Cs"} and c not in _PROSE_CONTROLS_ALLOWED) or c in "\ufffe\uffff"
        else c
        for c in value
    )
