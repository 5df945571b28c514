import django.contrib.postgres.indexes
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("consumers", "0001_initial")]

    operations = [
        migrations.RemoveIndex(model_name="inboxmessage", name="inbox_processed_idx"),
        migrations.AddIndex(
            model_name="inboxmessage",
            index=django.contrib.postgres.indexes.BrinIndex(fields=["processed_at"], name="inbox_processed_brin"),
        ),
    ]
