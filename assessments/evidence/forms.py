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


def kinds_by_field() -> list[tuple[str, str]]:
    """Each kind-specific field and the kinds it belongs to ("github pagerduty"), for the page's
    script that shows only the chosen kind's fields."""
    kinds: dict[str, list[str]] = {"upload": [SystemKind.EVAL_RESULTS, SystemKind.USAGE_COST]}
    for kind, names in CONFIG_FIELDS.items():
        for name in names:
            kinds.setdefault(name, []).append(kind)
    return [(name, " ".join(values)) for name, values in kinds.items()]


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


class RuleForm(forms.Form):
    """The fields of a check rule, shared by writing a new check and editing one."""

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        text_rules_apply(self.fields, one_line=("name", "metric", "dataset_fingerprint"))

    def rule(self) -> dict[str, Any]:
        """The rule as the services take it: every rule field this form shows."""
        data = self.cleaned_data
        return {name: data.get(name) for name in RULE_FIELD_NAMES if name in self.fields} | {
            "dataset_fingerprint": data.get("dataset_fingerprint") or ""
        }


class CheckForm(RuleForm):
    linked_system = forms.ModelChoiceField(queryset=LinkedSystem.objects.none(), label="Linked system")
    criterion = forms.ModelChoiceField(queryset=Criterion.objects.none())
    field_order = ["linked_system", "criterion"]

    def __init__(self, *args: Any, systems: Any, criteria: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["linked_system"].queryset = systems  # type: ignore[attr-defined]
        self.fields["criterion"].queryset = criteria  # type: ignore[attr-defined]
        self.fields["criterion"].label_from_instance = lambda c: f"{c.code} {c.title}"  # type: ignore[attr-defined]


class LinkedSystemEditForm(LinkedSystemForm):
    """Change a linked system: the fields of its kind, a new file, new or no credentials, on/off.

    The kind is fixed (a different kind is a different system). ``token`` left empty keeps
    the stored credentials; ``remove_credentials`` deletes them.
    """

    enabled = forms.BooleanField(
        required=False, label="Run its checks", help_text="Off: no runs, and its checks no longer count."
    )
    remove_credentials = forms.BooleanField(required=False, label="Remove the stored credentials")
    edit_token = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, system: LinkedSystem, **kwargs: Any) -> None:
        initial: dict[str, Any] = {
            "name": system.name,
            "check_interval_minutes": system.check_interval_minutes,
            "enabled": system.enabled,
            "edit_token": system.edit_token(),
        }
        for key, value in system.configuration.items():
            initial[key] = ", ".join(map(str, value)) if isinstance(value, list) else value
        kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        self.system = system
        del self.fields["kind"]
        shown = set(CONFIG_FIELDS.get(system.kind, ()))
        for name in [n for n in self.fields if n in _ALL_CONFIG_FIELDS and n not in shown]:
            del self.fields[name]
        if system.kind not in FILE_KINDS:
            del self.fields["upload"]
        else:
            self.fields["upload"].label = "Replace the file"
        self.fields["token"].help_text = (
            "Set — type a new one to replace it." if system.credentials else "None stored."
        ) + " Stored encrypted; never shown again."
        if not system.credentials:
            del self.fields["remove_credentials"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["kind"] = self.system.kind
        if data.get("token") and data.get("remove_credentials"):
            self.add_error("remove_credentials", "Either type a new token or remove the stored one, not both.")
        return data

    def configuration(self) -> dict[str, Any]:
        """The kind's fields from the form; keys the form does not show (a demo file) are kept."""
        shown = set(CONFIG_FIELDS.get(self.system.kind, ()))
        kept = {key: value for key, value in self.system.configuration.items() if key not in shown}
        return kept | super().configuration()

    def secrets(self) -> dict[str, str] | None:
        if self.cleaned_data.get("remove_credentials"):
            return {}
        return super().secrets()


class CheckEditForm(RuleForm):
    """Change a check's rule; ``rule_version`` refuses a save over someone else's change."""

    baseline = forms.FloatField(
        required=False, help_text="Empty: the next passing value becomes the baseline (only used with a tolerance)."
    )
    rule_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    field_order = ["name", "metric", "comparator", "threshold", "tolerance", "baseline", "dataset_fingerprint"]

    def __init__(self, *args: Any, check: Any, **kwargs: Any) -> None:
        kwargs["initial"] = {name: getattr(check, name) for name in (*RULE_FIELD_NAMES, "rule_version")}
        super().__init__(*args, **kwargs)


RULE_FIELD_NAMES = ("name", "metric", "comparator", "threshold", "tolerance", "baseline", "dataset_fingerprint")
FILE_KINDS = {SystemKind.EVAL_RESULTS, SystemKind.USAGE_COST}
_ALL_CONFIG_FIELDS = {name for names in CONFIG_FIELDS.values() for name in names}


class AlertWebhookForm(forms.Form):
    url = forms.CharField(
        max_length=2000,
        label="Incoming webhook URL",
        widget=forms.PasswordInput(render_value=False),
        help_text='A Slack incoming webhook, or any chat service that accepts Slack\'s {"text": …} JSON. '
        "Stored encrypted; only its host is shown again.",
    )
