"""The hourly checkpoint job through a real Celery worker and Redis broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from assessments.audit.models import AuditCheckpoint
from assessments.audit.signing import signing_key_ensure

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def test_a_real_worker_signs_the_chain_head(busy_org, redis_url, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share (PostgreSQL)")
    key = signing_key_ensure()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "readiness.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "AUDIT_SIGNING_KEY_PATH": str(key),
        "AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "PREFLIGHT_VAR_DIR": str(tmp_path / "var"),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    queue = f"test-{os.getpid()}-{time.time_ns()}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "readiness", "worker", "-Q", queue, "--pool=solo", "--loglevel=WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        from assessments.audit.tasks import audit_checkpoint_all

        audit_checkpoint_all.apply_async(queue=queue, connection=None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not AuditCheckpoint.objects.filter(organisation=busy_org).exists():
            time.sleep(0.5)
        checkpoint = AuditCheckpoint.objects.filter(organisation=busy_org).first()
        assert checkpoint is not None, "the worker did not sign the chain within 60 s"
        assert list((tmp_path / "checkpoints").glob(f"{busy_org.slug}-*.json"))
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
    assert "Traceback" not in output, output
