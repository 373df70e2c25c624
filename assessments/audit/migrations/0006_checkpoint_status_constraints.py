from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_checkpoint_backfill")]

    operations = [
        migrations.AddConstraint(
            model_name="auditcheckpoint",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("timestamp_status", "timestamped"),
                        models.Q(("tsa_token", ""), _negated=True),
                        ("timestamped_at__isnull", False),
                        ("timestamp_error", ""),
                        ("timestamp_retry_at__isnull", True),
                    ),
                    models.Q(
                        ("timestamp_status", "not_timestamped"),
                        ("tsa_token", ""),
                        ("timestamped_at__isnull", True),
                        models.Q(("timestamp_error", ""), _negated=True),
                        ("timestamp_retry_at__isnull", False),
                    ),
                    models.Q(
                        ("timestamp_status", "not_requested"),
                        ("tsa_token", ""),
                        ("timestamped_at__isnull", True),
                        ("timestamp_retry_at__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="checkpoint_timestamp_status_consistent",
            ),
        ),
        migrations.AddConstraint(
            model_name="auditcheckpoint",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("anchor_status", "anchored"), ("anchor_error", "")),
                    models.Q(("anchor_status", "not_anchored"), models.Q(("anchor_error", ""), _negated=True)),
                    _connector="OR",
                ),
                name="checkpoint_anchor_error_iff_not_anchored",
            ),
        ),
    ]
