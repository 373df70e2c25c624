"""Forms parse and validate input; the services decide what is allowed.

Text fields carry the rules of ``assessments.text``: names and titles refuse
control, bidirectional and invisible characters; prose refuses control
characters other than tab and newlines.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import User

from assessments.frameworks.models import GapKey, RiskTier
from assessments.pilots.models import EvidenceKind, Pilot, ResponseStatus, Stage, StopCondition
from assessments.pilots.selectors import SORTS, PortfolioFilters
from assessments.pilots.services import PILOT_FIELDS
from assessments.text import ONE_LINE, PROSE, text_rules_apply


def _date_input() -> forms.DateInput:
    # Browsers' date inputs need ISO dates whatever the display locale.
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _person_label(user: User) -> str:
    return user.get_full_name() or user.username


def _blank(choices: list[tuple[str, str]], label: str) -> list[tuple[str, str]]:
    return [("", label), *choices]


class PortfolioFilterForm(forms.Form):
    # dir="auto": a right-to-left query is shown in its own direction, isolated from the label.
    q = forms.CharField(required=False, max_length=100, label="Search", widget=forms.TextInput(attrs={"dir": "auto"}))
    stage = forms.ChoiceField(required=False, choices=_blank(Stage.choices, "Any stage"))
    risk_tier = forms.ChoiceField(required=False, choices=_blank(RiskTier.choices, "Any risk tier"), label="Risk tier")
    gap = forms.ChoiceField(required=False, choices=_blank(GapKey.choices, "Any gap"), label="Gap")
    below = forms.IntegerField(required=False, min_value=1, max_value=101, label="scoring below")
    owner = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Owner")
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("name", "Name"),
            ("-score", "Score, high first"),
            ("score", "Score, low first"),
            ("blockers", "Most blockers"),
            ("stale", "Most stale evidence"),
            ("stage", "Stage"),
            ("review", "Next review"),
        ],
    )

    def __init__(self, *args: Any, owners: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner_field = self.fields["owner"]
        assert isinstance(owner_field, forms.TypedChoiceField)
        owner_field.choices = [("", "Any owner"), *((u.pk, u.get_full_name() or u.username) for u in owners)]

    def filters(self) -> PortfolioFilters:
        data = self.cleaned_data if self.is_valid() else {}
        sort = data.get("sort") or "name"
        return PortfolioFilters(
            q=data.get("q", ""),
            stage=data.get("stage", ""),
            risk_tier=data.get("risk_tier", ""),
            gap=data.get("gap", ""),
            below=data.get("below"),
            owner=data.get("owner"),
            sort=sort if sort in SORTS else "name",
        )


class PilotForm(forms.ModelForm):
    class Meta:
        model = Pilot
        # Stage changes go through their own control (pause, retire), not the profile form.
        fields = [name for name in PILOT_FIELDS if name != "stage"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        labels = {
            "cost_envelope_per_task": "Cost envelope per task (USD)",
            "value_metric_name": "Value metric",
            "oncall_contact": "On-call contact",
        }

    def __init__(self, *args: Any, members: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        text_rules_apply(
            self.fields,
            one_line=("name", "model_providers", "oncall_contact", "value_metric_name", "value_metric_unit"),
            prose=("description",),
        )
        for name in ("business_owner", "technical_owner"):
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = User.objects.filter(pk__in=[m.pk for m in members]).order_by("username")
            field.label_from_instance = _person_label  # type: ignore[assignment,method-assign]


class StageForm(forms.Form):
    stage = forms.ChoiceField(choices=Stage.choices)


class StopConditionForm(forms.ModelForm):
    class Meta:
        model = StopCondition
        fields = ["condition", "metric", "comparator", "threshold"]
        widgets = {"condition": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        text_rules_apply(self.fields, one_line=("metric",), prose=("condition",))


class ResponseForm(forms.Form):
    """One criterion row: status, justification, owner, due date, and the version read."""

    status = forms.ChoiceField(choices=ResponseStatus.choices)
    justification = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}), validators=[PROSE]
    )
    owner = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    due_date = forms.DateField(required=False, widget=_date_input())
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args: Any, members: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner_field = self.fields["owner"]
        assert isinstance(owner_field, forms.TypedChoiceField)
        owner_field.choices = [("", "Unassigned"), *((u.pk, u.get_full_name() or u.username) for u in members)]


class EvidenceForm(forms.Form):
    """Link, file or note. The file itself is checked by uploads.upload_check."""

    kind = forms.ChoiceField(choices=EvidenceKind.choices, initial=EvidenceKind.LINK)
    title = forms.CharField(max_length=200, validators=[ONE_LINE])
    url = forms.URLField(required=False, max_length=2000, assume_scheme="https", label="Link (https)")
    file = forms.FileField(required=False)
    note = forms.CharField(
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Note (Markdown)",
        validators=[PROSE],
    )
    effective_date = forms.DateField(widget=_date_input(), label="Effective date")
    expires_on = forms.DateField(required=False, widget=_date_input(), label="Expires on")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind == EvidenceKind.LINK:
            url = data.get("url") or ""
            if not url:
                self.add_error("url", "Give the link's address.")
            elif not url.lower().startswith(("https://", "http://")):
                self.add_error("url", "Only http and https links are accepted.")
        elif kind == EvidenceKind.FILE and not data.get("file"):
            self.add_error("file", "Choose a file to upload.")
        elif kind == EvidenceKind.NOTE and not (data.get("note") or "").strip():
            self.add_error("note", "Write the note.")
        effective, expires = data.get("effective_date"), data.get("expires_on")
        if effective and expires and expires < effective:
            self.add_error("expires_on", "Expiry must be on or after the effective date.")
        return data
