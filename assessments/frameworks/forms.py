from __future__ import annotations

from typing import Any

from django import forms

from assessments.frameworks.models import Criterion, Gap
from assessments.text import text_rules_apply


class GapForm(forms.ModelForm):
    class Meta:
        model = Gap
        fields = ["name", "weight", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        text_rules_apply(self.fields, one_line=("name",), prose=("description",))


class CriterionForm(forms.ModelForm):
    class Meta:
        model = Criterion
        fields = [
            "code",
            "title",
            "severity",
            "guidance",
            "cost_if_missing",
            "evidence_expected",
            "check_kind",
            "max_evidence_age_days",
            "applies_to_minimal",
            "applies_to_limited",
            "applies_to_high",
        ]
        widgets = {
            "guidance": forms.Textarea(attrs={"rows": 4}),
            "cost_if_missing": forms.Textarea(attrs={"rows": 2}),
            "evidence_expected": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        text_rules_apply(
            self.fields, one_line=("code", "title"), prose=("guidance", "cost_if_missing", "evidence_expected")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tiers = ("applies_to_minimal", "applies_to_limited", "applies_to_high")
        if not any(data.get(name) for name in tiers):
            self.add_error("applies_to_high", "Choose at least one risk tier the criterion applies to.")
        return data
