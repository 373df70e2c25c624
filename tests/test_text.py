"""The shared rules for user text: what is refused, what counts as the same name, safe file names."""

from __future__ import annotations

import unicodedata

import pytest
from django import forms
from django.core.exceptions import ValidationError

from assessments.text import (
    BIDI_CONTROLS,
    ONE_LINE,
    PROSE,
    cell_text,
    char_label,
    filename_safe,
    name_clash,
    name_distinct_check,
    name_key,
    text_check,
    text_problem,
    text_rules_apply,
)

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\U000e0041"]


def test_a_control_character_is_named_by_its_code_point():
    assert text_problem("Claims\x01triage") == "contains the control character U+0001 (character 7)"
    assert char_label("\x01") == "U+0001"
    assert char_label("\u202e") == "U+202E RIGHT-TO-LEFT OVERRIDE"


@pytest.mark.parametrize("char", sorted(BIDI_CONTROLS))
def test_every_bidi_control_is_refused_in_one_line_text_with_its_name(char):
    problem = text_problem(f"a{char}b")
    assert problem is not None
    assert problem.startswith(f"contains {char_label(char)}, which can make text display reversed")
    assert unicodedata.name(char) in problem


@pytest.mark.parametrize("char", INVISIBLE)
def test_invisible_format_characters_are_refused_in_one_line_text(char):
    problem = text_problem(f"a{char}b")
    assert problem is not None
    assert f"contains {char_label(char)}, an invisible character" in problem


@pytest.mark.parametrize("char", ["\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9f"])
def test_one_line_text_refuses_every_control_including_tab_and_newline(char):
    assert text_problem(f"a{char}b") == f"contains the control character {char_label(char)} (character 2)"


def test_line_and_paragraph_separators_are_refused_in_one_line_text():
    assert "U+2028 LINE SEPARATOR, a line break" in (text_problem("a\u2028b") or "")
    assert "U+2029 PARAGRAPH SEPARATOR, a line break" in (text_problem("a\u2029b") or "")


def test_prose_keeps_tabs_newlines_and_format_characters_but_not_other_controls():
    assert text_problem("Line one\r\n\tLine two", multiline=True) is None
    assert text_problem("שלום\u200f world \u200d", multiline=True) is None
    assert text_problem("a\x01b", multiline=True) == "contains the control character U+0001 (character 2)"
    assert text_problem("a\x85b", multiline=True) == "contains the control character U+0085 (character 2)"


def test_ordinary_text_in_any_script_passes():
    for text in ("Claims triage", "Prüfung \u2013 Ärzte", "تقييم المخاطر", "評価 (v2)", "Zoë O'Brien", "naïve café"):
        assert text_problem(text) is None


def test_text_check_raises_with_the_subject_and_keys_the_field():
    with pytest.raises(ValidationError) as caught:
        text_check("x\u202ey", subject="The name", field="name")
    assert caught.value.message_dict == {
        "name": [
            "The name contains U+202E RIGHT-TO-LEFT OVERRIDE, which can make text display reversed "
            "(character 2). Remove it and save again."
        ]
    }
    text_check("fine")


def test_the_validators_work_on_declared_fields_and_on_fields_given_rules_per_form():
    class Form(forms.Form):
        title = forms.CharField(validators=[ONE_LINE])
        body = forms.CharField(validators=[PROSE])
        later = forms.CharField()

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            text_rules_apply(self.fields, one_line=("later",))

    form = Form({"title": "a\u200bb", "body": "ok\nfine", "later": "a\x07"})
    assert not form.is_valid()
    assert "U+200B ZERO WIDTH SPACE" in form.errors["title"][0]
    assert "body" not in form.errors
    assert "control character U+0007" in form.errors["later"][0]
    assert ONE_LINE not in Form.base_fields["later"].validators  # added per form instance, never to the class


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Claims triage", "CLAIMS TRIAGE"),
        ("Claims triage", "  Claims   triage "),
        ("Claims triage", "\uff23\uff4c\uff41\uff49\uff4d\uff53\u3000\uff54\uff52\uff49\uff41\uff47\uff45"),
        ("Claims triage", "Claims\u00a0triage"),
        ("Claims triage", "Clai\u200bms tri\u00adage"),
        ("Claims triage", "\u202eClaims triage\u202c"),
        ("Straße", "STRASSE"),
        ("ﬁnance", "Finance"),
        ("Café", "Cafe\u0301"),
    ],
)
def test_names_differing_only_by_case_width_spacing_or_invisibles_are_the_same(a, b):
    assert name_key(a) == name_key(b)
    assert name_clash(b, ["Other", a]) == a


def test_different_names_stay_different():
    assert name_clash("Claims triage 2", ["Claims triage"]) is None
    assert name_clash("Cafe", ["Café"]) is None
    assert name_clash("", [""]) is None


def test_name_distinct_check_says_which_name_it_clashes_with():
    with pytest.raises(ValidationError) as caught:
        name_distinct_check("CLAIMS triage", ["Claims triage"], kind="pilot", where="Acme Bank")
    (message,) = caught.value.message_dict["name"]
    assert message.startswith("Acme Bank already has a pilot named “Claims triage”.")


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("..%2F..%2F..%2Ftmp%2Fx.pdf", "x.pdf"),
        ("..%252F..%252Fx.pdf", "x.pdf"),
        ("..\uff0f..\uff0fx.pdf", "x.pdf"),
        ("..\uff3c..\uff3cx.pdf", "x.pdf"),
        ("..\\..\\windows\\x.pdf", "x.pdf"),
        ("a\u2215b\u2044c.pdf", "c.pdf"),
        ("report\u202efdp.exe", "reportfdp.exe"),
        ("re\x00po\x1frt.pdf", "report.pdf"),
        ("...bashrc", "bashrc"),
        ("notes.txt. . ", "notes.txt"),
        ("Q3   review\u3000final.pdf", "Q3 review final.pdf"),
        ("\uff52\uff45\uff50\uff4f\uff52\uff54.\uff50\uff44\uff46", "report.pdf"),
        ("évaluation 100%.pdf", "évaluation 100%.pdf"),
        ("../..", "file"),
        ("", "file"),
        ("\u200b", "file"),
    ],
)
def test_upload_names_are_reduced_to_a_safe_base_name(raw, safe):
    assert filename_safe(raw) == safe


def test_a_long_name_is_cut_to_the_limit_and_keeps_its_extension():
    safe = filename_safe("a" * 400 + ".pdf")
    assert len(safe) == 255
    assert safe.endswith("a.pdf")
    assert filename_safe("x" * 300, max_length=10) == "x" * 10


def test_cells_replace_what_a_workbook_cannot_hold():
    assert cell_text("a\x01b\x7f\x85c") == "a\ufffdb\ufffd\ufffdc"
    assert cell_text("tab\tand\r\nnewline") == "tab\tand\r\nnewline"
    assert cell_text("bad\ufffe\uffff") == "bad\ufffd\ufffd"
    assert cell_text("\u202eRTL and 😀 stay") == "\u202eRTL and 😀 stay"
