"""Binance's integer ids: orders.number (orderId) and fills.number (a trade's id in myTrades), each from a sequence.

Existing rows are numbered in the order they were made (orders by created_at, fills by executed_at), the sequence
is set past them, and only then does the column become NOT NULL and unique with nextval() as its default: every
INSERT draws its number in the database and returns it with RETURNING. Each sequence is owned by its column, so
dropping the column drops it.
"""

from django.db import migrations, models

import orders.models

NUMBER_ORDERS = """
UPDATE orders SET number = numbered.n
FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM orders) AS numbered
WHERE orders.id = numbered.id;
SELECT setval('orders_number_seq', COALESCE((SELECT max(number) FROM orders), 0) + 1, false);
"""
NUMBER_FILLS = """
UPDATE fills SET number = numbered.n
FROM (SELECT id, row_number() OVER (ORDER BY executed_at, created_at, id) AS n FROM fills) AS numbered
WHERE fills.id = numbered.id;
SELECT setval('fills_number_seq', COALESCE((SELECT max(number) FROM fills), 0) + 1, false);
"""


def _numbered(model_name: str, table: str, sequence: str, backfill: str) -> list:
    return [
        migrations.RunSQL(f"CREATE SEQUENCE {sequence}", f"DROP SEQUENCE IF EXISTS {sequence}"),
        migrations.AddField(model_name=model_name, name="number", field=models.BigIntegerField(null=True)),
        migrations.RunSQL(backfill, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name=model_name,
            name="number",
            field=models.BigIntegerField(
                db_default=orders.models.NextVal(sequence), editable=False, unique=True
            ),
        ),
        migrations.RunSQL(f"ALTER SEQUENCE {sequence} OWNED BY {table}.number", migrations.RunSQL.noop),
    ]


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_order_traceparent")]

    operations = [
        *_numbered("order", "orders", orders.models.ORDER_NUMBER_SEQUENCE, NUMBER_ORDERS),
        *_numbered("fill", "fills", orders.models.FILL_NUMBER_SEQUENCE, NUMBER_FILLS),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["user_id", "symbol", "number"], name="order_user_symbol_number_idx"),
        ),
    ]
