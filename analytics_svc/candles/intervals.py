"""The candle intervals: their names (Binance's), lengths and bucket alignment on UTC epoch multiples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Interval:
    name: str
    ms: int
    table: str
    child: str | None  # the interval this one is rolled up from (None: folded from trades)

    @property
    def span(self) -> timedelta:
        return timedelta(milliseconds=self.ms)

    def bucket(self, time_ms: int) -> int:
        """The open time (ms) of the bucket holding `time_ms`: a multiple of the interval since the epoch."""
        return time_ms - time_ms % self.ms


INTERVALS: dict[str, Interval] = {
    i.name: i
    for i in (
        Interval("1m", MINUTE_MS, "ohlcv_1m", None),
        Interval("5m", 5 * MINUTE_MS, "ohlcv_5m", "1m"),
        Interval("15m", 15 * MINUTE_MS, "ohlcv_15m", "5m"),
        Interval("1h", 60 * MINUTE_MS, "ohlcv_1h", "15m"),
    )
}
ROLLUPS = [i for i in INTERVALS.values() if i.child is not None]


# The last millisecond a datetime holds (9999-12-31T23:59:59.999Z). Clients send times as 64-bit longs, far
# beyond it ("until forever"); a bound past it means the same as the bound itself.
MAX_MS = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)


def ms_to_datetime(ms: int) -> datetime:
    """A time in ms since the epoch, clamped to what a datetime holds (a long past year 9999 is year 9999)."""
    # timedelta arithmetic is exact; datetime.fromtimestamp(ms / 1000) goes through a float.
    return EPOCH + timedelta(milliseconds=max(0, min(ms, MAX_MS)))


def datetime_to_ms(value: datetime) -> int:
    return (value - EPOCH) // timedelta(milliseconds=1)
