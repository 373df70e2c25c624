"""Forms for linking a system and writing a check rule; the services decide what is allowed."""

from __future__ import annotations

from typing import Any

from django import forms

from assessments.evidence.models import (
    MAX_INTERVAL_MINUTES,
    MIN_INTERVAL_MINUTES,
    Comparator,
    LinkedSystem,
    SystemKind,
)
from assessments.frameworks.models import Criterion
from assessments.text import text_rules_apply

# Which form fields become which configuration keys, per kind of system.
CONFIG_FIELDS: dict[str, tuple[str, ...]] = {
    SystemKind.EVAL_RESULTS: ("url",),
    SystemKind.USAGE_COST: ("url",),
    SystemKind.GITHUB: ("repository", "api_url", "branch", "workflow", "required_files"),
    SystemKind.PROMETHEUS: ("url", "alerts", "query"),
    SystemKind.PAGERDUTY: ("api_url", "schedule_id", "escalation_policy_id"),
    SystemKind.HTTP_JSON: ("url", "json_path"),
}
LIST_FIELDS = {"required_files", "alerts"}


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]


class LinkedSystemForm(forms.Form):
    kind = forms.ChoiceField(choices=SystemKind.choices, label="Kind of system")
    name = forms.CharField(max_length=120, help_text="How people will recognise it, e.g. “Golden set (promptfoo)”.")
    url = forms.URLField(required=False, max_length=2000, label="URL", assume_scheme="https")
    upload = forms.FileField(required=False, label="Or upload a file", help_text="Eval results or a usage export.")
    repository = forms.CharField(required=False, max_length=200, help_text="owner/name")
    api_url = forms.URLField(
        required=False,
        max_length=500,
        label="API URL",
        assume_scheme="https",
        help_text="Only for GitHub Enterprise or a PagerDuty proxy.",
    )
    branch = forms.CharField(required=False, max_length=200)
    workflow = forms.CharField(required=False, max_length=200, help_text="Workflow file, e.g. evals.yml")
    required_files = forms.CharField(required=False, max_length=1000, help_text="Comma-separated paths.")
    alerts = forms.CharField(required=False, max_length=1000, help_text="Alert rule names, comma-separated.")
    query = forms.CharField(required=False, max_length=1000, label="PromQL query")
    schedule_id = forms.CharField(required=False, max_length=100, label="Schedule id")
    escalation_policy_id = forms.CharField(required=False, max_length=100, label="Escalation policy id")
    json_path = forms.CharField(required=False, max_length=300, label="JSON path", help_text="e.g. data.pass_rate")
    token = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted; never shown again.",
    )
    check_interval_minutes = forms.IntegerField(
        min_value=MIN_INTERVAL_MINUTES, max_value=MAX_INTERVAL_MINUTES, initial=60, label="Check every (minutes)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        one_line = ("name", "repository", "branch", "workflow", "schedule_id", "escalation_policy_id", "json_path")
        text_rules_apply(self.fields, one_line=one_line)

    def configuration(self) -> dict[str, Any]:
        data = self.cleaned_data
        config: dict[str, Any] = {}
        for name in CONFIG_FIELDS.get(data["kind"], ()):
            value = data.get(name)
            if value:
                config[name] = _list(value) if name in LIST_FIELDS else value
        return config

    def secrets(self) -> dict[str, str] | None:
        token = self.cleaned_data.get("token") or ""
        return {"token": token} if token else None


class CheckForm(forms.Form):
    linked_system = forms.ModelChoiceField(queryset=LinkedSystem.objects.none(), label="Linked system")
    criterion = forms.ModelChoiceField(queryset=Criterion.objects.none())
    name = forms.CharField(max_length=120)
    metric = forms.CharField(max_length=120, help_text="A fact the system reports, e.g. pass_rate.")
    comparator = forms.ChoiceField(choices=Comparator.choices)
    threshold = forms.FloatField()
    tolerance = forms.FloatField(
        required=False, min_value=0, help_text="Optional: also fail when the metric drops this far below its baseline."
    )
    dataset_fingerprint = forms.CharField(
        required=False,
        max_length=200,
        label="Pinned dataset",
        help_text="Optional: the dataset name or fingerprint runs must use.",
    )

    def __init__(self, *args: Any, systems: Any, criteria: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["linked_system"].queryset = systems  # type: ignore[attr-defined]
        self.fields["criterion"].queryset = criteria  # type: ignore[attr-defined]
        self.fields["criterion"].label_from_instance = lambda c: f"{c.code} {c.title}"  # type: ignore[attr-defined]
        text_rules_apply(self.fields, one_line=("name", "metric", "dataset_fingerprint"))

    def rule(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "metric": data["metric"],
            "comparator": data["comparator"],
            "threshold": data["threshold"],
            "tolerance": data.get("tolerance"),
            "dataset_fingerprint": data.get("dataset_fingerprint") or "",
        }
