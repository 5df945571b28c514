"""The ledger migration 0002: the admin's newest-first index across every user."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('transactions', '0001_initial'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='transaction',
            index=models.Index(fields=['-executed_at', '-id'], name='transactions_time_idx'),
        ),
    ]
