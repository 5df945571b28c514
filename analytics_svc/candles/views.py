"""The chart page: candlesticks drawn in the browser from the klines endpoint."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from candles import selectors
from candles.intervals import INTERVALS
from common.binance import SYMBOL_RE


@require_GET
def chart(request: HttpRequest) -> HttpResponse:
    symbols = selectors.symbol_list()
    symbol = request.GET.get("symbol") or (symbols[0] if symbols else "BTCUSDT")
    interval = request.GET.get("interval") or "1m"
    if not SYMBOL_RE.match(symbol) or interval not in INTERVALS:
        return render(
            request,
            "candles/chart.html",
            {"error": "Unknown symbol or interval.", "symbols": symbols, "intervals": list(INTERVALS)},
            status=400,
        )
    context = {"symbol": symbol, "interval": interval, "symbols": symbols, "intervals": list(INTERVALS)}
    return render(request, "candles/chart.html", context)
