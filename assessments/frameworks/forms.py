from __future__ import annotations

from typing import Any

from django import forms

from assessments.frameworks.models import Criterion, Gap, RiskTier, Severity
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
            "severity_minimal",
            "severity_limited",
            "severity_high",
            "guidance",
            "cost_if_missing",
            "evidence_expected",
            "check_kind",
            "preflight_evidence",
            "max_evidence_age_days",
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
        # One choice per tier: its severity, or "Does not apply" (which is what takes the tier out).
        for tier in RiskTier.values:
            field = self.fields[f"severity_{tier}"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [("", "Does not apply"), *Severity.choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # The tiers it applies to follow from the severities chosen; set on the instance too, so
        # the model's validation (which runs after this) sees each tier's pair together.
        for tier in RiskTier.values:
            data[f"applies_to_{tier}"] = bool(data.get(f"severity_{tier}"))
            setattr(self.instance, f"applies_to_{tier}", data[f"applies_to_{tier}"])
        if not any(data[f"applies_to_{tier}"] for tier in RiskTier.values):
            self.add_error("severity_high", "Give the criterion a severity for at least one risk tier.")
        return data
