"""Serializers of the transactions API: query filters in, transactions and totals out."""

from __future__ import annotations

from rest_framework import serializers

from transactions.models import Side, Transaction
from transactions.selectors import TransactionFilters

AMOUNT = {"max_digits": 38, "decimal_places": 18, "coerce_to_string": True, "normalize_output": True}


class TransactionFilterSerializer(serializers.Serializer):
    symbol = serializers.RegexField(r"^[A-Za-z0-9]{1,32}$", required=False, help_text="e.g. BTCUSDT")
    side = serializers.ChoiceField(choices=Side.choices, required=False)
    start = serializers.DateTimeField(required=False, help_text="ISO 8601, inclusive (no zone: UTC)")
    end = serializers.DateTimeField(required=False, help_text="ISO 8601, exclusive (no zone: UTC)")

    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": "end must be after start"})
        return attrs

    def to_filters(self) -> TransactionFilters:
        data = self.validated_data
        symbol = data.get("symbol")
        return TransactionFilters(
            symbol=symbol.upper() if symbol else None,
            side=data.get("side"),
            start=data.get("start"),
            end=data.get("end"),
        )


class TransactionOutputSerializer(serializers.ModelSerializer):
    price = serializers.DecimalField(**AMOUNT)
    qty = serializers.DecimalField(**AMOUNT)
    quote_qty = serializers.DecimalField(**AMOUNT)
    fee = serializers.DecimalField(**AMOUNT)

    class Meta:
        model = Transaction
        fields = [
            "id",
            "fill_id",
            "order_id",
            "symbol",
            "base_asset",
            "quote_asset",
            "side",
            "price",
            "qty",
            "quote_qty",
            "fee",
            "fee_asset",
            "order_status",
            "is_maker",
            "executed_at",
        ]
        read_only_fields = fields


class TransactionPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TransactionOutputSerializer(many=True)


class AssetTotalsSerializer(serializers.Serializer):
    asset = serializers.CharField()
    bought = serializers.DecimalField(**AMOUNT, help_text="acquired by fills: base on BUY, quote on SELL")
    sold = serializers.DecimalField(**AMOUNT, help_text="given up by fills: quote on BUY, base on SELL")
    fees = serializers.DecimalField(**AMOUNT, help_text="fees charged in this asset")
    net = serializers.DecimalField(**AMOUNT, help_text="bought - sold - fees")


class SummarySerializer(serializers.Serializer):
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    assets = AssetTotalsSerializer(many=True)
