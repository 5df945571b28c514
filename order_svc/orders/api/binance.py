"""order_svc's part of Binance's public /api/v3: exchangeInfo (the symbols and their filters), depth and
ticker/bookTicker (the platform's own book: resting LIMIT orders by price level). The market data itself (trades,
klines, tickers) is analytics_svc's; infra/routes.toml sends each path to its owner."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from common import binance, binance_limits
from common.binance import SYMBOL_PATTERN, SYMBOLS_PATTERN, BinanceError, BinanceView, param
from orders import selectors
from orders.api import schemas
from orders.models import OrderType, Symbol

# Amounts are NUMERIC(32, 8): 8 places for every asset, commissions included.
PRECISION = 8
# The pacing Binance asks of clients, which this platform's clients keep too. Nothing here enforces them yet: the
# gateway limits only /api/auth/ (request weights come with the SIGNED endpoints).
SYMBOL_STATUSES = ("TRADING", "HALT", "BREAK")
_PERMISSION_RE = re.compile(r"[A-Z0-9_]{1,32}")
DEPTH_MAX = 5000
ZERO = binance.ZERO


def _amount(value: Decimal) -> str:
    return format(value.quantize(binance.EIGHT_PLACES), "f")


def _known(names: list[str]) -> list[Symbol]:
    found = selectors.symbol_catalogue(symbols=names)
    if len(found) != len(names):
        raise binance.invalid_symbol()
    return found


def symbol_v3(symbol: Symbol, *, permission_sets: bool = True) -> dict[str, Any]:
    """A symbol as Binance's exchangeInfo lists it: what the platform's order placement checks, nothing more."""
    lot = {"minQty": _amount(symbol.min_qty), "maxQty": _amount(symbol.max_qty), "stepSize": _amount(symbol.step_size)}
    return {
        "symbol": symbol.symbol,
        "status": "TRADING" if symbol.is_trading else "BREAK",
        "baseAsset": symbol.base_asset,
        "baseAssetPrecision": PRECISION,
        "quoteAsset": symbol.quote_asset,
        "quotePrecision": PRECISION,
        "quoteAssetPrecision": PRECISION,
        "baseCommissionPrecision": PRECISION,
        "quoteCommissionPrecision": PRECISION,
        "orderTypes": [OrderType.LIMIT.value, OrderType.MARKET.value],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _amount(symbol.min_price),
                "maxPrice": _amount(symbol.max_price),
                "tickSize": _amount(symbol.tick_size),
            },
            {"filterType": "LOT_SIZE", **lot},
            # A MARKET order's quantity is held to the same lot rule, and its notional to the last price.
            {
                "filterType": "MIN_NOTIONAL",
                "minNotional": _amount(symbol.min_notional),
                "applyToMarket": True,
                "avgPriceMins": 0,
            },
            {"filterType": "MARKET_LOT_SIZE", **lot},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]] if permission_sets else [],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


def _permissions(raw: str | None) -> set[str] | None:
    """permissions=SPOT or permissions=["SPOT","MARGIN"]; None when not sent."""
    if raw is None:
        return None
    try:
        values = json.loads(raw) if raw.startswith("[") else [raw]
    except (ValueError, RecursionError):
        values = None
    listed = isinstance(values, list) and bool(values)
    if not listed or not all(isinstance(v, str) and _PERMISSION_RE.fullmatch(v) for v in values):
        raise BinanceError(binance.ILLEGAL_CHARS, "Illegal characters found in parameter 'permissions'.")
    return set(values)


class ExchangeInfoView(BinanceView):
    @extend_schema(
        summary="Exchange information, as Binance's GET /api/v3/exchangeInfo",
        description="Every listed symbol (trading or not) with the filters order placement checks. "
        "`symbol`, `symbols`, `permissions` and `symbolStatus` exclude one another.",
        parameters=[
            OpenApiParameter("symbol", {"type": "string", "pattern": SYMBOL_PATTERN}),
            OpenApiParameter(
                "symbols", {"type": "string", "pattern": SYMBOLS_PATTERN}, description='["BTCUSDT","ETHUSDT"]'
            ),
            OpenApiParameter("permissions", str, description='SPOT, or a list: ["SPOT","MARGIN"]'),
            OpenApiParameter("symbolStatus", str, enum=list(SYMBOL_STATUSES)),
            OpenApiParameter("showPermissionSets", {"type": "string", "enum": ["true", "false"]}),
        ],
        responses={200: schemas.V3_EXCHANGE_INFO},
    )
    def get(self, request: Request) -> Response:
        q = request.query_params
        names, _ = binance.parse_symbol_selection(q)
        permissions = _permissions(param(q, "permissions"))
        status = param(q, "symbolStatus")
        if status is not None and status not in SYMBOL_STATUSES:
            raise BinanceError(binance.INVALID_SYMBOL_STATUS, "Invalid symbolStatus.")
        if names is not None and (permissions is not None or status is not None):
            raise BinanceError(binance.OPTIONAL_PARAMS_BAD_COMBO, "Combination of optional parameters invalid.")
        show = binance.parse_choice(param(q, "showPermissionSets"), "showPermissionSets", ("true", "false"))
        if names is not None:
            symbols = _known(names)
        elif status == "HALT" or (permissions is not None and "SPOT" not in permissions):
            symbols = []  # no symbol is halted, and every one is SPOT only
        else:
            symbols = selectors.symbol_catalogue(trading=None if status is None else status == "TRADING")
        return Response(
            {
                "timezone": "UTC",
                "serverTime": binance.server_time_ms(),
                "rateLimits": binance_limits.rate_limits(),  # the limits common.binance_limits enforces
                "exchangeFilters": [],
                "symbols": [symbol_v3(s, permission_sets=show != "false") for s in symbols],
            }
        )


class DepthView(BinanceView):
    @extend_schema(
        summary="Order book, as Binance's GET /api/v3/depth",
        description="The platform's own book: resting LIMIT GTC orders (accepted, not yet filled or cancelled), "
        "their unfilled quantity summed by price level. Orders fill against the market-data feed, not against "
        "each other, so the book may cross.",
        parameters=[
            OpenApiParameter("symbol", {"type": "string", "pattern": SYMBOL_PATTERN}, required=True),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                description="levels per side: default 100; above 5000, 5000",
            ),
        ],
        responses={200: schemas.DEPTH},
    )
    def get(self, request: Request) -> Response:
        q = request.query_params
        symbol = binance.parse_symbol(param(q, "symbol"))
        limit = binance.parse_int(param(q, "limit"), "limit", minimum=1) or 100
        _known([symbol])
        book = selectors.book_get(symbol=symbol, limit=min(limit, DEPTH_MAX))
        return Response(
            {
                "lastUpdateId": book.last_update_id,
                "bids": [[_amount(p), _amount(qty)] for p, qty in book.bids],
                "asks": [[_amount(p), _amount(qty)] for p, qty in book.asks],
            }
        )


class BookTickerView(BinanceView):
    @extend_schema(
        summary="Best bid and ask, as Binance's GET /api/v3/ticker/bookTicker",
        description="The best level of each side of the platform's own book (see /api/v3/depth); an empty side "
        "is 0.00000000.",
        parameters=[
            OpenApiParameter("symbol", {"type": "string", "pattern": SYMBOL_PATTERN}, description="not with symbols"),
            OpenApiParameter(
                "symbols",
                {"type": "string", "pattern": SYMBOLS_PATTERN},
                description='["BTCUSDT","ETHUSDT"]; neither: every listed symbol',
            ),
        ],
        responses={200: schemas.BOOK_TICKERS},
    )
    def get(self, request: Request) -> Response:
        names, single = binance.parse_symbol_selection(request.query_params)
        symbols = _known(names) if names is not None else selectors.symbol_catalogue()
        rows = [_book_ticker(b) for b in selectors.best_prices_list(symbols=[s.symbol for s in symbols])]
        return Response(rows[0] if single else rows)


def _book_ticker(best: selectors.BestPrices) -> dict[str, str]:
    bid, ask = best.bid, best.ask
    return {
        "symbol": best.symbol,
        "bidPrice": _amount(bid[0]) if bid else ZERO,
        "bidQty": _amount(bid[1]) if bid else ZERO,
        "askPrice": _amount(ask[0]) if ask else ZERO,
        "askQty": _amount(ask[1]) if ask else ZERO,
    }
