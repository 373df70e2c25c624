"""Severity per risk tier, evidence Preflight holds, and regulation catalogues.

Each criterion's single severity becomes one severity per tier it applies to (blank
where it does not apply); existing rows keep exactly the severity they had at every
tier, so no score changes. Mappings gain the tier from which the cited text is a
legal obligation; existing EU AI Act mappings are filled in from the catalogue.
"""

import json
from pathlib import Path

from django.db import migrations, models

TIERS = ("minimal", "limited", "high")
SEVERITIES = [("blocking", "Blocking"), ("major", "Major"), ("minor", "Minor")]
CATALOGUE = Path(__file__).resolve().parents[3] / "fixtures" / "regulations" / "eu_ai_act.json"


def severity_per_tier(apps, schema_editor):
    Criterion = apps.get_model("frameworks", "Criterion")
    for criterion in Criterion.objects.all().only("pk", "severity", *(f"applies_to_{t}" for t in TIERS)):
        Criterion.objects.filter(pk=criterion.pk).update(
            **{f"severity_{t}": criterion.severity if getattr(criterion, f"applies_to_{t}") else "" for t in TIERS}
        )


def severity_single(apps, schema_editor):
    """Backwards: the highest severity at any tier (the old single value)."""
    Criterion = apps.get_model("frameworks", "Criterion")
    rank = {"minor": 0, "major": 1, "blocking": 2}
    for criterion in Criterion.objects.all():
        values = [getattr(criterion, f"severity_{t}") for t in TIERS if getattr(criterion, f"severity_{t}")]
        criterion.severity = max(values, key=rank.__getitem__, default="minor")
        criterion.save(update_fields=["severity"])


def obligation_tiers(apps, schema_editor):
    RegulatoryMapping = apps.get_model("frameworks", "RegulatoryMapping")
    if not CATALOGUE.exists():
        return
    entries = json.loads(CATALOGUE.read_text(encoding="utf-8"))["entries"]
    from_tier = {e["id"]: e["from_tier"] for e in entries if e.get("from_tier") in TIERS}
    for mapping in RegulatoryMapping.objects.filter(scheme="eu_ai_act"):
        article = mapping.reference.split("(")[0].strip()
        tier = from_tier.get(article, "")
        if tier:
            RegulatoryMapping.objects.filter(pk=mapping.pk).update(obligation_from=tier)


class Migration(migrations.Migration):
    dependencies = [
        ("frameworks", "0003_field_labels"),
    ]

    operations = [
        migrations.AddField(
            model_name="criterion",
            name="severity_minimal",
            field=models.CharField(
                blank=True, choices=SEVERITIES, max_length=10, verbose_name="severity for minimal-risk pilots"
            ),
        ),
        migrations.AddField(
            model_name="criterion",
            name="severity_limited",
            field=models.CharField(
                blank=True, choices=SEVERITIES, max_length=10, verbose_name="severity for limited-risk pilots"
            ),
        ),
        migrations.AddField(
            model_name="criterion",
            name="severity_high",
            field=models.CharField(
                blank=True, choices=SEVERITIES, max_length=10, verbose_name="severity for high-risk pilots"
            ),
        ),
        migrations.RunPython(severity_per_tier, severity_single),
        # A default only so that going backwards can re-add the column to a populated table
        # (the backwards RunPython above then writes each criterion's real severity).
        migrations.AlterField(
            model_name="criterion",
            name="severity",
            field=models.CharField(choices=SEVERITIES, default="major", max_length=10),
        ),
        migrations.RemoveConstraint(model_name="criterion", name="criterion_severity_valid"),
        migrations.RemoveField(model_name="criterion", name="severity"),
        migrations.AddField(
            model_name="criterion",
            name="preflight_evidence",
            field=models.CharField(
                blank=True,
                choices=[
                    ("review_signoff", "Signed joint review in Preflight"),
                    ("sow_definition", "Statement-of-work readiness definition in Preflight"),
                    ("audit_trail", "Preflight's hash-chained audit trail"),
                ],
                max_length=20,
                verbose_name="evidence Preflight holds",
            ),
        ),
        migrations.AddField(
            model_name="regulatorymapping",
            name="obligation_from",
            field=models.CharField(
                blank=True,
                choices=[("minimal", "Minimal"), ("limited", "Limited"), ("high", "High")],
                max_length=10,
                verbose_name="an obligation from tier",
            ),
        ),
        migrations.RunPython(obligation_tiers, migrations.RunPython.noop),
    ]
