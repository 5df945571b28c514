"""The buckets of Binance's kline intervals in UTC: 1s..3d on epoch multiples, 1w from Mondays, 1M calendar months
(the layout GET /api/v3/klines uses, candles.intervals)."""

from __future__ import annotations

from datetime import UTC, datetime

from candles.intervals import KLINE_INTERVALS, datetime_to_ms, ms_to_datetime


def bucket(interval: str, time_ms: int) -> tuple[int, int]:
    """(open, close) in ms of the bucket of `interval` that holds `time_ms`; close is its last millisecond."""
    spec = KLINE_INTERVALS[interval]
    if spec.ms is None:  # a calendar month
        at = ms_to_datetime(time_ms)
        opened = datetime(at.year, at.month, 1, tzinfo=UTC)
        following = datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)
        return datetime_to_ms(opened), datetime_to_ms(following) - 1
    opened = time_ms - (time_ms - spec.origin_ms) % spec.ms
    return opened, opened + spec.ms - 1
