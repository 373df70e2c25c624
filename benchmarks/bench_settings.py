"""Settings for benchmarks/pages.py: the app plus a floor view, on a throwaway database."""

from __future__ import annotations

from readiness.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bench_urls"
DEBUG = False
LOGGING = {"version": 1, "disable_existing_loggers": True}
