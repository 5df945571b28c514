"""Views of analytics_svc's API: Binance's public market data under /api/v3/ (ping, time, klines, trades, average
price, tickers) and the browsable candle objects."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from candles import selectors
from candles.api import binance as klines
from candles.api import schemas
from candles.api.serializers import CandleQuerySerializer, CandleSerializer
from candles.intervals import datetime_to_ms
from common import binance
from common.api import ApiRootView
from common.binance import BinanceView, binance_decimal, param, rounded8
from common.exceptions import ApplicationError

DAY_MS = 86_400_000


def _known_symbol(raw: str | None) -> str:
    symbol = binance.parse_symbol(raw)
    if not selectors.symbol_exists(symbol=symbol):
        raise binance.invalid_symbol()
    return symbol


def _known_symbols(names: list[str] | None) -> list[str] | None:
    if names is not None and selectors.symbols_known(names) != set(names):
        raise binance.invalid_symbol()
    return names


class PingView(BinanceView):
    @extend_schema(summary="Test connectivity, as Binance's GET /api/v3/ping", responses={200: schemas.PING})
    def get(self, request: Request) -> Response:
        return Response({})


class TimeView(BinanceView):
    @extend_schema(summary="Server time, as Binance's GET /api/v3/time", responses={200: schemas.TIME})
    def get(self, request: Request) -> Response:
        return Response({"serverTime": binance.server_time_ms()})


class KlinesView(BinanceView):
    @extend_schema(
        summary="Klines (candlesticks) of every Binance interval, as GET /api/v3/klines",
        description="1m, 5m, 15m and 1h are stored; the other intervals are rolled up from them when read "
        "(1w opens on Mondays, 1M on the 1st); 1s comes from the trades of the last 25 hours. "
        "A bucket without trades has no kline.",
        parameters=schemas.KLINE_PARAMETERS,
        responses={200: schemas.KLINES},
    )
    def get(self, request: Request) -> Response:
        q = request.query_params
        symbol = binance.parse_symbol(param(q, "symbol"))
        interval = klines.parse_interval(param(q, "interval"))
        start, end = binance.parse_time_range(q)
        offset_ms = klines.parse_time_zone(param(q, "timeZone"))
        limit = binance.parse_int(param(q, "limit"), "limit", minimum=1, maximum=1000) or 500
        symbol = _known_symbol(symbol)
        rows = selectors.kline_list(
            symbol=symbol, interval=interval, start_ms=start, end_ms=end, limit=limit, offset_ms=offset_ms
        )
        return Response([klines.kline_row(c) for c in rows])


class UiKlinesView(KlinesView):
    @extend_schema(
        summary="Klines for charts, as Binance's GET /api/v3/uiKlines",
        description="The same parameters and rows as /api/v3/klines: the platform's candles need no presentation "
        "change (Binance documents none of its own).",
        parameters=schemas.KLINE_PARAMETERS,
        responses={200: schemas.KLINES},
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class TradesView(BinanceView):
    @extend_schema(
        summary="Recent trades, as Binance's GET /api/v3/trades",
        parameters=[schemas.SYMBOL, schemas.limit(500, 1000)],
        responses={200: schemas.TRADES},
    )
    def get(self, request: Request) -> Response:
        q = request.query_params
        symbol = binance.parse_symbol(param(q, "symbol"))
        limit = binance.parse_int(param(q, "limit"), "limit", minimum=1, maximum=1000) or 500
        trades = selectors.trade_list(symbol=_known_symbol(symbol), limit=limit)
        return Response(
            [
                {
                    "id": t.trade_id,
                    "price": binance_decimal(t.price),
                    "qty": binance_decimal(t.qty),
                    "quoteQty": binance_decimal(t.quote_qty),
                    "time": datetime_to_ms(t.traded_at),
                    "isBuyerMaker": t.is_buyer_maker,
                    "isBestMatch": True,
                }
                for t in trades
            ]
        )


class AggTradesView(BinanceView):
    @extend_schema(
        summary="Compressed trades, as Binance's GET /api/v3/aggTrades",
        description="Every market-data trade is one taker's fill here, so each trade is its own aggregate (f = l = a). "
        "From `fromId`, or in [startTime, endTime] (at most an hour apart); otherwise the latest.",
        parameters=[
            schemas.SYMBOL,
            OpenApiParameter("fromId", schemas._LONG, description="the first trade id"),
            schemas.START_TIME,
            schemas.END_TIME,
            schemas.limit(500, 1000),
        ],
        responses={200: schemas.AGG_TRADES},
    )
    def get(self, request: Request) -> Response:
        q = request.query_params
        symbol = binance.parse_symbol(param(q, "symbol"))
        from_id = binance.parse_int(param(q, "fromId"), "fromId")
        start, end = binance.parse_time_range(q)
        if start is not None and end is not None and end - start > 3_600_000:
            raise binance.BinanceError(binance.MORE_THAN_XX_HOURS, "More than 1 hours between startTime and endTime.")
        limit = binance.parse_int(param(q, "limit"), "limit", minimum=1, maximum=1000) or 500
        trades = selectors.trade_range_list(
            symbol=_known_symbol(symbol), from_id=from_id, start_ms=start, end_ms=end, limit=limit
        )
        return Response(
            [
                {
                    "a": t.trade_id,
                    "p": binance_decimal(t.price),
                    "q": binance_decimal(t.qty),
                    "f": t.trade_id,
                    "l": t.trade_id,
                    "T": datetime_to_ms(t.traded_at),
                    "m": t.is_buyer_maker,
                    "M": True,
                }
                for t in trades
            ]
        )


class AvgPriceView(BinanceView):
    @extend_schema(
        summary="Current average price, as Binance's GET /api/v3/avgPrice",
        description="The volume-weighted price of the last 5 minutes' trades; the last price when there were none.",
        parameters=[schemas.SYMBOL],
        responses={200: schemas.AVG_PRICE},
    )
    def get(self, request: Request) -> Response:
        symbol = _known_symbol(param(request.query_params, "symbol"))
        average = selectors.average_price_get(symbol=symbol, now=timezone.now())
        if average is None:
            raise binance.invalid_symbol()
        return Response(
            {
                "mins": selectors.market.AVG_PRICE_MINUTES,
                "price": rounded8(average.price),
                "closeTime": datetime_to_ms(average.close_time),
            }
        )


class Ticker24hrView(BinanceView):
    @extend_schema(
        summary="24 hour rolling window statistics, as Binance's GET /api/v3/ticker/24hr",
        description="From the 1m candles of the last 1440 minutes. bidPrice/bidQty/askPrice/askQty are 0 here: "
        "the book is order_svc's, GET /api/v3/ticker/bookTicker.",
        parameters=[
            schemas.SYMBOL_OPTIONAL,
            schemas.SYMBOLS,
            OpenApiParameter("type", str, enum=["FULL", "MINI"], description="default FULL"),
        ],
        responses={200: schemas.TICKERS_24HR},
    )
    def get(self, request: Request) -> Response:
        q = request.query_params
        names, single = binance.parse_symbol_selection(q)
        kind = param(q, "type") or "FULL"
        if kind not in ("FULL", "MINI"):
            raise binance.BinanceError(binance.INVALID_TICKER_TYPE, "Invalid ticker type.")
        names = _known_symbols(names)
        now = timezone.now()
        stats = selectors.day_stats_list(symbols=names, now=now)
        if names is not None and len(stats) != len(names):  # known, but no price yet
            raise binance.invalid_symbol()
        tickers = [_ticker(s, now_ms=datetime_to_ms(now), full=kind == "FULL") for s in stats]
        return Response(tickers[0] if single else tickers)


def _ticker(s: selectors.DayStats, *, now_ms: int, full: bool) -> dict:
    zero = Decimal(0)
    traded = s.trades > 0
    open_, last = (s.open if traded else zero), s.last_price
    mini = {
        "symbol": s.symbol,
        "openPrice": binance_decimal(open_),
        "highPrice": binance_decimal(s.high if traded else zero),
        "lowPrice": binance_decimal(s.low if traded else zero),
        "lastPrice": binance_decimal(last),
        "volume": binance_decimal(s.volume),
        "quoteVolume": binance_decimal(s.quote_volume),
        "openTime": now_ms - DAY_MS,
        "closeTime": now_ms,
        "firstId": s.first_id if traded and s.first_id is not None else -1,
        "lastId": s.last_id if traded and s.last_id is not None else -1,
        "count": s.trades,
    }
    if not full:
        return mini
    change = last - open_ if traded else zero
    percent = (change / open_ * 100).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP) if traded else Decimal("0.000")
    return {
        "symbol": s.symbol,
        "priceChange": binance_decimal(change),
        "priceChangePercent": format(percent, "f"),
        "weightedAvgPrice": rounded8(s.quote_volume / s.volume) if traded and s.volume else binance.ZERO,
        "prevClosePrice": binance_decimal(s.prev_close if s.prev_close is not None else zero),
        "lastPrice": mini["lastPrice"],
        "lastQty": binance_decimal(s.last_qty if s.last_qty is not None else zero),
        "bidPrice": binance.ZERO,
        "bidQty": binance.ZERO,
        "askPrice": binance.ZERO,
        "askQty": binance.ZERO,
        **{k: v for k, v in mini.items() if k not in ("symbol", "lastPrice")},
    }


class TickerPriceView(BinanceView):
    @extend_schema(
        summary="Latest price, as Binance's GET /api/v3/ticker/price",
        parameters=[schemas.SYMBOL_OPTIONAL, schemas.SYMBOLS],
        responses={200: schemas.PRICES},
    )
    def get(self, request: Request) -> Response:
        names, single = binance.parse_symbol_selection(request.query_params)
        names = _known_symbols(names)
        prices = selectors.price_list(symbols=names)
        if names is not None and len(prices) != len(names):  # known, but no price yet
            raise binance.invalid_symbol()
        rows = [{"symbol": c.symbol, "price": binance_decimal(c.last_price)} for c in prices]
        return Response(rows[0] if single else rows)


class PublicView(APIView):
    # Market data is public, as on the exchange.
    permission_classes = [AllowAny]
    authentication_classes = []


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
        "ping": "ping",
        "time": "time",
        "klines": "klines",
        "ui_klines": "ui-klines",
        "trades": "trades",
        "agg_trades": "agg-trades",
        "avg_price": "avg-price",
        "ticker_24hr": "ticker-24hr",
        "ticker_price": "ticker-price",
        "candles": "candle-list",
        "user_data_stream": "user-data-stream",
        "chart": "chart",
    }
