"""Existing checkpoints: the head records what they signed, and each is marked for anchoring
(the minute job then writes it once to the anchor directory)."""

from django.db import migrations
from django.db.models import Max


def forwards(apps, schema_editor):
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    AuditCheckpoint = apps.get_model("audit", "AuditCheckpoint")
    AuditCheckpoint.objects.filter(anchor_error="").update(
        anchor_status="not_anchored", anchor_error="signed before anchoring existed; not written yet"
    )
    newest = AuditCheckpoint.objects.values("organisation_id").annotate(top=Max("sequence"))
    for row in newest:
        AuditChainHead.objects.filter(organisation_id=row["organisation_id"]).update(checkpoint_sequence=row["top"])


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_checkpoint_cadence_timestamp_anchor")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
