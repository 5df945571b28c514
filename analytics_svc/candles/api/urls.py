"""API routes of analytics_svc: Binance's public market data under /api/v3/ and the browsable candles.

/api/v3/exchangeInfo, /api/v3/depth and /api/v3/ticker/bookTicker are order_svc's (it owns the symbols and the
resting orders): infra/routes.toml sends them there, every other /api/v3/ path comes here.
"""

from django.urls import path

from candles.api import views

urlpatterns = [
    path("", views.AnalyticsApiRootView.as_view(), name="api-root"),
    path("v3/ping", views.PingView.as_view(), name="ping"),
    path("v3/time", views.TimeView.as_view(), name="time"),
    path("v3/klines", views.KlinesView.as_view(), name="klines"),
    path("v3/uiKlines", views.UiKlinesView.as_view(), name="ui-klines"),
    path("v3/trades", views.TradesView.as_view(), name="trades"),
    path("v3/aggTrades", views.AggTradesView.as_view(), name="agg-trades"),
    path("v3/avgPrice", views.AvgPriceView.as_view(), name="avg-price"),
    path("v3/ticker/24hr", views.Ticker24hrView.as_view(), name="ticker-24hr"),
    path("v3/ticker/price", views.TickerPriceView.as_view(), name="ticker-price"),
    path("candles/", views.CandleListView.as_view(), name="candle-list"),
]
