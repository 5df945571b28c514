"""Every read of the candles app beyond a plain .get(): candles and klines, and the market's recent activity."""

from candles.selectors.candles import (
    Kline,
    kline_list,
    latest_trade_time,
    price_list,
    symbol_exists,
    symbol_list,
    symbols_known,
)
from candles.selectors.market import (
    AveragePrice,
    DayStats,
    average_price_get,
    day_stats_list,
    trade_list,
    trade_range_list,
)

__all__ = [
    "AveragePrice",
    "DayStats",
    "Kline",
    "average_price_get",
    "day_stats_list",
    "kline_list",
    "latest_trade_time",
    "price_list",
    "symbol_exists",
    "symbol_list",
    "symbols_known",
    "trade_list",
    "trade_range_list",
]
