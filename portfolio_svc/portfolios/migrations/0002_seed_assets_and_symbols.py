"""Seed the assets catalogue and the symbols this service values portfolios with."""

from django.db import migrations

ASSETS = [
    ("USDT", "Tether USD", 8),
    ("BTC", "Bitcoin", 8),
    ("ETH", "Ethereum", 8),
    ("BNB", "BNB", 8),
    ("XRP", "XRP", 8),
]
SYMBOLS = [("BTCUSDT", "BTC", "USDT"), ("ETHUSDT", "ETH", "USDT"), ("BNBUSDT", "BNB", "USDT"), ("XRPETH", "XRP", "ETH")]


def seed(apps, schema_editor):
    Asset = apps.get_model("portfolios", "Asset")
    Symbol = apps.get_model("portfolios", "Symbol")
    for code, name, precision in ASSETS:
        Asset.objects.update_or_create(code=code, defaults={"name": name, "precision": precision})
    for symbol, base, quote in SYMBOLS:
        Symbol.objects.update_or_create(symbol=symbol, defaults={"base_asset_id": base, "quote_asset_id": quote})


def unseed(apps, schema_editor):
    apps.get_model("portfolios", "Symbol").objects.filter(symbol__in=[s[0] for s in SYMBOLS]).delete()
    apps.get_model("portfolios", "Asset").objects.filter(code__in=[a[0] for a in ASSETS]).delete()


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
