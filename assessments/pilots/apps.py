from __future__ import annotations

from django.apps import AppConfig


class PilotsConfig(AppConfig):
    name = "assessments.pilots"
    label = "pilots"
    default_auto_field = "django.db.models.BigAutoField"
