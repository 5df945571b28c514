"""The ledger: recorded_fills, the month-partitioned transactions table (explicit SQL), transaction_events.

Explicit SQL rather than django-postgres-extra: no new dependency, and the DDL of a partitioned table is
short enough to read. Django's state below matches the DDL column for column; the differences are the
ones Django cannot express: PARTITION BY RANGE, the (id, executed_at) primary key and the composite
foreign key to recorded_fills.
"""

import uuid
from datetime import UTC, datetime

import django.utils.timezone
from django.db import migrations, models


CREATE_LEDGER = """
CREATE TABLE "transactions" (
    "id" uuid NOT NULL,
    "fill_id" varchar(64) NOT NULL,
    "order_id" varchar(64) NOT NULL,
    "user_id" uuid NOT NULL,
    "symbol" varchar(32) NOT NULL,
    "base_asset" varchar(16) NOT NULL,
    "quote_asset" varchar(16) NOT NULL,
    "side" varchar(4) NOT NULL,
    "price" numeric(38, 18) NOT NULL,
    "qty" numeric(38, 18) NOT NULL,
    "quote_qty" numeric(38, 18) NOT NULL,
    "fee" numeric(38, 18) NOT NULL,
    "fee_asset" varchar(16) NOT NULL,
    "order_status" varchar(16) NOT NULL,
    "is_maker" boolean NULL,
    "trade_id" bigint NULL,
    "executed_at" timestamp with time zone NOT NULL,
    "recorded_at" timestamp with time zone NOT NULL,
    -- A partitioned table's unique keys must contain the partition key.
    CONSTRAINT "transactions_pkey" PRIMARY KEY ("id", "executed_at"),
    -- Each row is the one its fill id points at: fill ids stay unique across every partition.
    CONSTRAINT "transactions_recorded_fill_fk" FOREIGN KEY ("fill_id", "id", "executed_at")
        REFERENCES "recorded_fills" ("fill_id", "transaction_id", "executed_at"),
    CONSTRAINT "transactions_side_valid" CHECK ("side" IN ('BUY', 'SELL')),
    CONSTRAINT "transactions_amounts_valid" CHECK (("price" > 0 AND "qty" > 0 AND "quote_qty" > 0 AND "fee" >= 0))
) PARTITION BY RANGE ("executed_at");
CREATE INDEX "transactions_user_time_idx" ON "transactions" ("user_id", "executed_at" DESC, "id" DESC);
-- Catches a row whose month has no partition yet; ensure_partitions reports and re-homes such rows.
CREATE TABLE "transactions_default" PARTITION OF "transactions" DEFAULT;
"""
DROP_LEDGER = 'DROP TABLE "transactions"'

# Frozen here (not imported from the app) so this migration means the same thing forever.
MONTHS_BEFORE, MONTHS_AHEAD = 1, 3


def create_first_partitions(apps, schema_editor):
    """The previous, current and next three months, so the ledger works before beat first runs."""
    now = datetime.now(UTC)
    for offset in range(-MONTHS_BEFORE, MONTHS_AHEAD + 1):
        y, m = divmod(now.year * 12 + now.month - 1 + offset, 12)
        ny, nm = divmod(y * 12 + m + 1, 12)
        schema_editor.execute(
            f'CREATE TABLE IF NOT EXISTS "transactions_y{y:04d}m{m + 1:02d}" PARTITION OF "transactions" '
            f"FOR VALUES FROM ('{y:04d}-{m + 1:02d}-01 00:00:00+00') TO ('{ny:04d}-{nm + 1:02d}-01 00:00:00+00')"
        )



class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='RecordedFill',
            fields=[
                ('fill_id', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('transaction_id', models.UUIDField(unique=True)),
                ('executed_at', models.DateTimeField()),
                ('recorded_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'db_table': 'recorded_fills',
                'constraints': [models.UniqueConstraint(fields=('fill_id', 'transaction_id', 'executed_at'), name='recorded_fills_ledger_key')],
            },
        ),
        # The ledger: Django's state is a plain model; the database gets a table partitioned by month.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Transaction',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('fill_id', models.CharField(max_length=64)),
                        ('order_id', models.CharField(max_length=64)),
                        ('user_id', models.UUIDField()),
                        ('symbol', models.CharField(max_length=32)),
                        ('base_asset', models.CharField(max_length=16)),
                        ('quote_asset', models.CharField(max_length=16)),
                        ('side', models.CharField(choices=[('BUY', 'Buy'), ('SELL', 'Sell')], max_length=4)),
                        ('price', models.DecimalField(decimal_places=18, max_digits=38)),
                        ('qty', models.DecimalField(decimal_places=18, max_digits=38)),
                        ('quote_qty', models.DecimalField(decimal_places=18, max_digits=38)),
                        ('fee', models.DecimalField(decimal_places=18, max_digits=38)),
                        ('fee_asset', models.CharField(max_length=16)),
                        ('order_status', models.CharField(max_length=16)),
                        ('is_maker', models.BooleanField(null=True)),
                        ('trade_id', models.BigIntegerField(null=True)),
                        ('executed_at', models.DateTimeField()),
                        ('recorded_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        'db_table': 'transactions',
                        'indexes': [models.Index(fields=['user_id', '-executed_at', '-id'], name='transactions_user_time_idx')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('side__in', ['BUY', 'SELL'])), name='transactions_side_valid'), models.CheckConstraint(condition=models.Q(('price__gt', 0), ('qty__gt', 0), ('quote_qty__gt', 0), ('fee__gte', 0)), name='transactions_amounts_valid')],
                    },
                ),
            ],
            database_operations=[migrations.RunSQL(CREATE_LEDGER, DROP_LEDGER)],
        ),
        migrations.RunPython(create_first_partitions, migrations.RunPython.noop),
        migrations.CreateModel(
            name='TransactionEvent',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('event_id', models.CharField(max_length=100, unique=True)),
                ('event_type', models.CharField(choices=[('order.filled', 'order filled'), ('order.cancelled', 'order cancelled'), ('order.rejected', 'order rejected')], max_length=32)),
                ('order_id', models.CharField(max_length=64)),
                ('user_id', models.UUIDField()),
                ('symbol', models.CharField(max_length=32)),
                ('fill_id', models.CharField(blank=True, max_length=64, null=True)),
                ('transaction_id', models.UUIDField(blank=True, null=True)),
                ('status', models.CharField(blank=True, max_length=16)),
                ('reason', models.CharField(blank=True, max_length=255)),
                ('data', models.JSONField()),
                ('occurred_at', models.DateTimeField()),
                ('recorded_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'db_table': 'transaction_events',
                'indexes': [models.Index(fields=['order_id'], name='transaction_events_order_idx')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('event_type__in', ['order.cancelled', 'order.rejected'])), fields=('order_id', 'event_type'), name='transaction_events_one_end_per_order'), models.UniqueConstraint(condition=models.Q(('fill_id__isnull', False)), fields=('fill_id',), name='transaction_events_one_per_fill'), models.CheckConstraint(condition=models.Q(models.Q(('event_type', 'order.filled'), ('fill_id__isnull', False), ('transaction_id__isnull', False)), models.Q(models.Q(('event_type', 'order.filled'), _negated=True), ('fill_id__isnull', True), ('transaction_id__isnull', True)), _connector='OR'), name='transaction_events_fill_only_on_filled')],
            },
        ),
    ]
