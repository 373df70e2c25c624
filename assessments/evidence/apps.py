from __future__ import annotations

import importlib
import pkgutil

from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    name = "assessments.evidence"
    label = "evidence"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Evidence from linked systems"

    def ready(self) -> None:
        # Each connector module registers itself by kind when imported.
        from assessments.evidence import connectors

        for module in pkgutil.iter_modules(connectors.__path__):
            if module.name != "base":
                importlib.import_module(f"{connectors.__name__}.{module.name}")
