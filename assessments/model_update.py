"""The one generic update every room's services build on (after the HackSoft styleguide's
"Handling updates with a service").

It sets, validates and saves; it records nothing. Each specific service (``gap_update``,
``criterion_update``, …) checks who may write, calls this, and adds its own side effects
— above all the audit event — only when something changed. It lives outside every
room's ``services.py`` because it is not a write of its own: the test that walks the
services and demands one audit event per call must not count it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models


def model_update[M: models.Model](
    *, instance: M, fields: Iterable[str], data: Mapping[str, Any]
) -> tuple[M, list[str]]:
    """Set the ``fields`` given in ``data`` on ``instance``, validate, save; return it and what changed.

    ``fields`` are the ones a caller may change; a key of ``data`` outside them is a
    programming error (TypeError), never silently dropped. A field whose value is
    unchanged is left out, and when nothing changed nothing is validated or saved.
    A ValidationError from ``full_clean`` leaves the row untouched (but ``instance``
    holds the refused values, so callers show forms from a fresh copy).
    """
    allowed = tuple(fields)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise TypeError(f"{type(instance).__name__} cannot be updated through {', '.join(unknown)}.")
    changed = [name for name in allowed if name in data and getattr(instance, name) != data[name]]
    if not changed:
        return instance, []
    for name in changed:
        setattr(instance, name, data[name])
    instance.full_clean()
    # auto_now fields (updated_at) move on every save, but only if they are written.
    stamped = [
        f.name for f in instance._meta.concrete_fields if getattr(f, "auto_now", False) and f.name not in changed
    ]
    instance.save(update_fields=[*changed, *stamped])
    return instance, changed
