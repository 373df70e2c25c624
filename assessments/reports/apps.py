from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "assessments.reports"
    label = "reports"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Reports and statement-of-work definitions"
