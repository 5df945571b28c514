"""Seed the symbols catalogue with Binance's filters (PRICE_FILTER, LOT_SIZE, MIN_NOTIONAL)."""

from decimal import Decimal

from django.db import migrations

SYMBOLS = [
    # symbol, base, quote, min price, max price, tick, min qty, max qty, step, min notional
    ("BTCUSDT", "BTC", "USDT", "0.01", "1000000", "0.01", "0.00001", "9000", "0.00001", "5"),
    ("ETHUSDT", "ETH", "USDT", "0.01", "1000000", "0.01", "0.0001", "100000", "0.0001", "5"),
    ("BNBUSDT", "BNB", "USDT", "0.01", "1000000", "0.01", "0.001", "900000", "0.001", "5"),
    ("XRPETH", "XRP", "ETH", "0.00000001", "1000", "0.00000001", "1", "90000000", "1", "0.001"),
]


def seed(apps, schema_editor):
    Symbol = apps.get_model("orders", "Symbol")
    for row in SYMBOLS:
        symbol, base, quote, *numbers = row
        min_price, max_price, tick, min_qty, max_qty, step, min_notional = map(Decimal, numbers)
        Symbol.objects.update_or_create(
            symbol=symbol,
            defaults={
                "base_asset": base,
                "quote_asset": quote,
                "min_price": min_price,
                "max_price": max_price,
                "tick_size": tick,
                "min_qty": min_qty,
                "max_qty": max_qty,
                "step_size": step,
                "min_notional": min_notional,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("orders", "Symbol").objects.filter(symbol__in=[row[0] for row in SYMBOLS]).delete()


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
