"""Request parsing and Binance-shaped responses of the orders API (translation only)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.exceptions import ApplicationError
from orders.filters import MANDATORY_PARAM, parse_decimal
from orders.models import Fill, Order, Symbol


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _amount(value) -> str | None:
    return None if value is None else format(value, "f")


@extend_schema_field({"type": "string", "description": "a decimal number, as a string (or a JSON number)"})
class RawValueField(serializers.Field):
    """The value as sent (string, number or anything else): parse_decimal decides, with Binance's error."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class OrderPlaceSerializer(serializers.Serializer):
    """Binance's names (camelCase) and ours (snake_case) are both accepted; numbers are strings or JSON numbers."""

    symbol = serializers.CharField(max_length=32)
    side = serializers.CharField(max_length=16)
    type = serializers.CharField(max_length=16)
    time_in_force = serializers.CharField(max_length=16, required=False, allow_null=True, allow_blank=True)
    quantity = RawValueField(required=False, allow_null=True)
    price = RawValueField(required=False, allow_null=True)
    quote_order_qty = RawValueField(required=False, allow_null=True)
    client_order_id = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)

    ALIASES = {
        "timeInForce": "time_in_force",
        "quoteOrderQty": "quote_order_qty",
        "newClientOrderId": "client_order_id",
        "clientOrderId": "client_order_id",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if hasattr(data, "items"):
            data = {self.ALIASES.get(k, k): v for k, v in data.items()}
        try:
            values = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            field = next(iter(exc.detail)) if isinstance(exc.detail, dict) else "body"
            raise ApplicationError(
                f"Mandatory parameter '{field}' was not sent, was empty/null, or malformed.",
                code=MANDATORY_PARAM,
                details={"fields": exc.detail},
            ) from None
        for name in ("quantity", "price", "quote_order_qty"):
            values[name] = parse_decimal(name, values.get(name))
        values["symbol"] = values["symbol"].upper()
        values["side"] = values["side"].upper()
        values["type_"] = values.pop("type").upper()
        values["time_in_force"] = (values.get("time_in_force") or "").upper() or None
        values["client_order_id"] = values.get("client_order_id") or None
        return values


class FillOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Fill
        fields = ["price", "qty", "commission", "commissionAsset", "tradeId", "isMaker", "time"]

    commission = serializers.DecimalField(source="fee", max_digits=32, decimal_places=8)
    commissionAsset = serializers.CharField(source="fee_asset")
    tradeId = serializers.IntegerField(source="trade_id")
    isMaker = serializers.BooleanField(source="is_maker")
    time = serializers.SerializerMethodField()

    def get_time(self, fill: Fill) -> int:
        return _ms(fill.executed_at)


def order_output(order: Order, *, fills: Iterable[Fill] | None = None) -> dict[str, Any]:
    """Binance's order response (FULL), plus the reason an order ended without filling.

    `fills` when the caller knows them (a new order has none); the order's own otherwise (prefetch them).
    """
    return {
        "symbol": order.symbol_id,
        "orderId": str(order.id),
        "clientOrderId": order.client_order_id,
        "transactTime": _ms(order.created_at),
        "updateTime": _ms(order.updated_at),
        "price": _amount(order.price) or "0.00000000",
        "origQty": _amount(order.quantity) or "0.00000000",
        "executedQty": _amount(order.executed_qty),
        "cummulativeQuoteQty": _amount(order.cumulative_quote_qty),  # sic: Binance's spelling
        "origQuoteOrderQty": _amount(order.quote_order_qty) or "0.00000000",
        "status": order.status,
        "timeInForce": order.time_in_force or "GTC",
        "type": order.type,
        "side": order.side,
        "reason": order.reason,
        "fills": FillOutputSerializer(order.fills.all() if fills is None else fills, many=True).data,
    }


def symbol_output(symbol: Symbol) -> dict[str, Any]:
    return {
        "symbol": symbol.symbol,
        "status": "TRADING" if symbol.is_trading else "BREAK",
        "baseAsset": symbol.base_asset,
        "quoteAsset": symbol.quote_asset,
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK"],
        "quoteOrderQtyMarketAllowed": True,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _amount(symbol.min_price),
                "maxPrice": _amount(symbol.max_price),
                "tickSize": _amount(symbol.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": _amount(symbol.min_qty),
                "maxQty": _amount(symbol.max_qty),
                "stepSize": _amount(symbol.step_size),
            },
            {"filterType": "MIN_NOTIONAL", "minNotional": _amount(symbol.min_notional), "applyToMarket": True},
        ],
    }
