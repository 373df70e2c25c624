from __future__ import annotations

from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    name = "assessments.evidence"
    label = "evidence"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Evidence from linked systems"
