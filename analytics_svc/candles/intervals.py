"""The candle intervals: the stored ones (names, lengths, bucket alignment on UTC epoch multiples, what each is
rolled up from), and every interval Binance's klines take, with how its buckets are laid out."""

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

DAY_MS = 24 * 60 * MINUTE_MS


@dataclass(frozen=True)
class KlineInterval:
    """An interval a klines request may name. Buckets open at origin + k * ms in the request's time zone (1w:
    Mondays; 1s..3d: epoch multiples, so a 3d bucket starts every third day from 1970-01-01); 1M has no fixed
    length (ms None): its buckets are calendar months."""

    name: str
    ms: int | None
    origin_ms: int = 0

    @property
    def stored(self) -> Interval | None:
        return INTERVALS.get(self.name)


KLINE_INTERVALS: dict[str, KlineInterval] = {
    k.name: k
    for k in (
        KlineInterval("1s", 1000),
        KlineInterval("1m", MINUTE_MS),
        KlineInterval("3m", 3 * MINUTE_MS),
        KlineInterval("5m", 5 * MINUTE_MS),
        KlineInterval("15m", 15 * MINUTE_MS),
        KlineInterval("30m", 30 * MINUTE_MS),
        KlineInterval("1h", 60 * MINUTE_MS),
        KlineInterval("2h", 2 * 60 * MINUTE_MS),
        KlineInterval("4h", 4 * 60 * MINUTE_MS),
        KlineInterval("6h", 6 * 60 * MINUTE_MS),
        KlineInterval("8h", 8 * 60 * MINUTE_MS),
        KlineInterval("12h", 12 * 60 * MINUTE_MS),
        KlineInterval("1d", DAY_MS),
        KlineInterval("3d", 3 * DAY_MS),
        KlineInterval("1w", 7 * DAY_MS, origin_ms=4 * DAY_MS),  # 1970-01-05, the first Monday
        KlineInterval("1M", None),
    )
}


def rollup_source(interval: KlineInterval, offset_ms: int) -> Interval:
    """The coarsest stored interval whose candles tile `interval`'s buckets in a zone `offset_ms` from UTC."""
    length = interval.ms or DAY_MS  # a month is whole days
    for source in sorted(INTERVALS.values(), key=lambda i: i.ms, reverse=True):
        if length % source.ms == 0 and (offset_ms - interval.origin_ms) % source.ms == 0:
            return source
    return INTERVALS["1m"]  # time zones are whole minutes


# The last millisecond a datetime holds (9999-12-31T23:59:59.999Z). Clients send times as 64-bit longs, far
# beyond it ("until forever"); a bound past it means the same as the bound itself.
MAX_MS = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)


def ms_to_datetime(ms: int) -> datetime:
    """A time in ms since the epoch, clamped to what a datetime holds (a long past year 9999 is year 9999)."""
    # timedelta arithmetic is exact; datetime.fromtimestamp(ms / 1000) goes through a float.
    return EPOCH + timedelta(milliseconds=max(0, min(ms, MAX_MS)))


def datetime_to_ms(value: datetime) -> int:
    return (value - EPOCH) // timedelta(milliseconds=1)
