"""The ohlcv_candles view: every interval's candles in one relation, for the admin's interval filter."""

from django.db import migrations

COLUMNS = (
    "symbol, open_time, close_time, open, high, low, close, volume, quote_volume, trades, "
    "taker_buy_volume, taker_buy_quote_volume"
)
SELECTS = " UNION ALL ".join(
    f"SELECT '{name}:' || id AS id, '{name}'::varchar(4) AS interval, {COLUMNS} FROM ohlcv_{name}"
    for name in ("1m", "5m", "15m", "1h")
)


class Migration(migrations.Migration):
    dependencies = [("candles", "0001_initial")]

    operations = [
        migrations.RunSQL(
            f"CREATE VIEW ohlcv_candles AS {SELECTS}",
            "DROP VIEW ohlcv_candles",
        ),
    ]
