"""Views of the candles API: Binance-compatible klines and ticker price, and browsable candle objects."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from candles import selectors
from candles.api import binance, schemas
from candles.api.serializers import CandleQuerySerializer, CandleSerializer
from candles.intervals import datetime_to_ms
from common.api import ApiRootView
from common.exceptions import ApplicationError


class PublicView(APIView):
    # Market data is public, as on the exchange.
    permission_classes = [AllowAny]
    authentication_classes = []


class BinanceView(PublicView):
    """An /api/v3/ endpoint: errors as Binance renders them."""

    def get_exception_handler(self):
        return binance.exception_handler


def _known_symbol(raw: str | None) -> str:
    symbol = binance.parse_symbol(raw)
    if not selectors.symbol_exists(symbol=symbol):
        raise binance.BinanceError(binance.BAD_SYMBOL, "Invalid symbol.")
    return symbol


class KlinesView(BinanceView):
    @extend_schema(
        summary="Klines (candlesticks), as Binance's GET /api/v3/klines",
        parameters=[
            OpenApiParameter("symbol", str, required=True),
            OpenApiParameter("interval", str, required=True, enum=["1m", "5m", "15m", "1h"]),
            OpenApiParameter("startTime", int, description="open time at or after, ms since the epoch"),
            OpenApiParameter("endTime", int, description="open time at or before, ms since the epoch"),
            OpenApiParameter("limit", int, description="default 500, max 1000"),
        ],
        responses={200: schemas.KLINES},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        symbol = binance.parse_symbol(params.get("symbol"))
        interval = binance.parse_interval(params.get("interval"))
        start = binance.parse_int(params.get("startTime"), "startTime")
        end = binance.parse_int(params.get("endTime"), "endTime")
        limit = binance.parse_int(params.get("limit"), "limit", minimum=1, maximum=1000) or 500
        if start is not None and end is not None and start > end:
            raise binance.BinanceError(binance.START_TIME_GREATER_THAN_END_TIME, "Start time is greater than end time.")
        symbol = _known_symbol(symbol)
        candles = selectors.kline_list(symbol=symbol, interval=interval, start_ms=start, end_ms=end, limit=limit)
        return Response([binance.kline_row(c) for c in candles])


class TickerPriceView(BinanceView):
    @extend_schema(
        summary="Latest price, as Binance's GET /api/v3/ticker/price",
        parameters=[OpenApiParameter("symbol", str, description="omit for every symbol")],
        responses={200: schemas.PRICES},
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("symbol")
        if raw is None:
            return Response([_price(c) for c in selectors.price_list()])
        prices = selectors.price_list(symbol=_known_symbol(raw))
        if not prices:
            raise binance.BinanceError(binance.BAD_SYMBOL, "Invalid symbol.")
        return Response(_price(prices[0]))


def _price(cursor) -> dict[str, str]:
    return {"symbol": cursor.symbol, "price": binance.binance_decimal(cursor.last_price)}


class CandleListView(PublicView):
    """Candles of one symbol and interval as objects, oldest first (the latest `limit` without a start)."""

    @extend_schema(parameters=[CandleQuerySerializer], responses=CandleSerializer(many=True))
    def get(self, request: Request) -> Response:
        query = CandleQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        if not selectors.symbol_exists(symbol=q["symbol"]):
            raise ApplicationError(f"Unknown symbol {q['symbol']}.", code="invalid_symbol")
        candles = selectors.kline_list(
            symbol=q["symbol"],
            interval=q["interval"],
            start_ms=_ms(q.get("start")),
            end_ms=_ms(q.get("end")),
            limit=q["limit"],
        )
        return Response(CandleSerializer(candles, many=True).data)


def _ms(value):
    return None if value is None else datetime_to_ms(value)


class AnalyticsApiRootView(ApiRootView):
    endpoints = {
        "klines": "klines",
        "ticker_price": "ticker-price",
        "candles": "candle-list",
        "chart": "chart",
    }
