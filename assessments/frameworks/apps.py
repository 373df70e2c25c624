from __future__ import annotations

from django.apps import AppConfig


class FrameworksConfig(AppConfig):
    name = "assessments.frameworks"
    label = "frameworks"
    default_auto_field = "django.db.models.BigAutoField"
