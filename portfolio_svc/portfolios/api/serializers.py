"""Serializers of portfolio_svc's API: translation only, amounts as strings."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portfolios.amounts import amount_str


@extend_schema_field({"type": "string", "format": "decimal", "example": "10000.00000000"})
class AmountField(serializers.Field):
    """A Decimal as the string JSON carries (8 decimals unless the amount needs more)."""

    def to_representation(self, value):
        return None if value is None else amount_str(value)


class BalanceSerializer(serializers.Serializer):
    asset = serializers.CharField(source="asset_id")
    available = AmountField()
    locked = AmountField()
    total = AmountField()


class BalanceListItemSerializer(BalanceSerializer):
    portfolio_id = serializers.UUIDField()
    updated_at = serializers.DateTimeField()


class PortfolioSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    is_default = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    balances = BalanceSerializer(many=True, source="balances.all")


class AssetValueSerializer(serializers.Serializer):
    asset = serializers.CharField()
    quantity = AmountField()
    price = AmountField(allow_null=True)
    value = AmountField(allow_null=True)


class ValuationSerializer(serializers.Serializer):
    quote_asset = serializers.CharField()
    total = AmountField()
    assets = AssetValueSerializer(many=True)
    missing_prices = serializers.ListField(child=serializers.CharField())


class PortfolioDetailSerializer(PortfolioSerializer):
    valuation = ValuationSerializer()


class PortfolioCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, trim_whitespace=True)


class BalanceFilterSerializer(serializers.Serializer):
    portfolio = serializers.UUIDField(required=False)
    asset = serializers.CharField(required=False, max_length=16)
