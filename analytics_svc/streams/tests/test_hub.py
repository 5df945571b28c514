"""The fan-out, the folding of trades into klines and tickers, and the user data events, without a network: clients
are fakes that record what they were sent and how much of it they have not taken."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from candles.trades import Trade

from common.events import Envelope
from streams import names
from streams.hub import Client, Hub
from streams.market import KlineState, Market
from streams.payloads import Candle
from streams.selectors import KlineSeed
from streams.user import UserEvents

MINUTE = 60_000
T0 = 1_700_000_040_000  # a minute's start
USER = "7d1f0a52-3c8e-4d7b-a0a6-0f6b2a9d4c21"


class FakeClient(Client):
    """A client that takes `takes` bytes of what it is sent and leaves the rest in its queue."""

    def __init__(self, *, combined: bool = False, queue_bytes: int = 1 << 20, takes: int | None = None):
        super().__init__(None, combined=combined, queue_bytes=queue_bytes)
        self.got: list[bytes] = []
        self.queued = 0
        self.takes = takes
        self.closed_with: tuple[int, str] | None = None

    def backlog(self) -> int:
        return self.queued

    def write(self, data: bytes) -> None:
        self.got.append(data)
        if self.takes is not None:
            self.queued += len(data)

    def close(self, code: int, reason: str):
        self.closed_with = (code, reason)

    def messages(self) -> list:
        return [json.loads(m) for m in self.got]


def stream(name: str) -> names.Stream:
    return names.parse(name)


def test_one_message_goes_to_every_subscriber_raw_or_wrapped_and_to_nobody_else():
    hub = Hub()
    raw, combined, other = FakeClient(), FakeClient(combined=True), FakeClient()
    hub.subscribe(raw, stream("btcusdt@trade"))
    hub.subscribe(combined, stream("btcusdt@trade"))
    hub.subscribe(other, stream("ethusdt@trade"))

    assert hub.publish("btcusdt@trade", {"e": "trade", "t": 1}) == 2

    assert raw.messages() == [{"e": "trade", "t": 1}]
    assert combined.messages() == [{"stream": "btcusdt@trade", "data": {"e": "trade", "t": 1}}]
    assert other.got == []
    assert hub.publish("bnbusdt@trade", {"e": "trade"}) == 0


def test_a_client_that_cannot_keep_up_is_disconnected_with_1008_and_the_others_get_everything():
    hub = Hub()
    slow = FakeClient(queue_bytes=200, takes=0)  # never reads
    fast = FakeClient()
    for client in (slow, fast):
        hub.subscribe(client, stream("btcusdt@trade"))

    for i in range(50):
        hub.publish("btcusdt@trade", {"e": "trade", "t": i, "pad": "x" * 20})

    assert len(fast.got) == 50
    assert 0 < len(slow.got) < 10
    assert slow.closed_with == (1008, "Client is too slow: its queue is full")
    assert slow.closed and hub.kicked == 1
    assert not hub.listening("nosuch") and hub.listening("btcusdt@trade")
    assert hub.publish("btcusdt@trade", {"e": "trade"}) == 1  # the slow one is gone from the stream


def test_unsubscribing_the_last_client_forgets_the_stream():
    hub = Hub()
    client = FakeClient()
    hub.subscribe(client, stream("btcusdt@trade"))

    assert hub.subscribe(client, stream("btcusdt@trade")) is False
    hub.unsubscribe(client, "btcusdt@trade")

    assert not hub.listening("btcusdt@trade")
    assert client.streams == {}


def test_user_events_go_to_each_connection_of_that_user_under_its_listen_key():
    hub = Hub()
    key_a, key_b = "a" * 64, "b" * 64
    first, second, stranger = FakeClient(), FakeClient(combined=True), FakeClient()
    hub.attach_user(first, stream(key_a), USER)
    hub.attach_user(second, stream(key_b), USER)
    hub.attach_user(stranger, stream("c" * 64), "someone-else")

    hub.publish_user(USER, {"e": "executionReport"})

    assert first.messages() == [{"e": "executionReport"}]
    assert second.messages() == [{"stream": key_b, "data": {"e": "executionReport"}}]
    assert stranger.got == []
    assert sorted(hub.listen_keys()) == sorted([key_a, key_b, "c" * 64])
    hub.remove(first)
    assert key_a not in hub.listen_keys() and hub.has_user(USER)


def trade(trade_id: int, at: int, price: str = "100", qty: str = "1", buyer_is_maker: bool = False) -> Trade:
    return Trade("BTCUSDT", trade_id, price, qty, at, buyer_is_maker)


def test_a_kline_folds_the_trades_of_its_bucket_and_closes_when_the_next_bucket_opens():
    state = KlineState("btcusdt@kline_1m", "BTCUSDT", "1m", seeding=False)

    def sent(candles):  # what would go out now (the state keeps folding into the same candle)
        return [(c.open_ms, c.trades, closed) for c, closed in candles]

    first = sent(state.fold(trade(1, T0 + 1_000, "100", "2")))
    second = sent(state.fold(trade(2, T0 + 2_000, "105", "1", buyer_is_maker=True)))
    redelivered = state.fold(trade(2, T0 + 2_000, "105", "1"))
    next_bucket = state.fold(trade(3, T0 + MINUTE + 5, "103", "1"))
    late = state.fold(trade(4, T0 + 3_000, "90", "1"))

    assert first + second == [(T0, 1, False), (T0, 2, False)]
    assert redelivered == [] and late == []
    (closed, was_closed), (opened, open_closed) = next_bucket
    assert (closed.open_ms, closed.close_ms, was_closed, closed.trades) == (T0, T0 + MINUTE - 1, True, 2)
    assert (closed.open, closed.high, closed.low, closed.close) == (
        Decimal(100),
        Decimal(105),
        Decimal(100),
        Decimal(105),
    )
    assert (closed.volume, closed.taker_buy_volume, closed.first_id, closed.last_id) == (Decimal(3), Decimal(2), 1, 2)
    assert (opened.open_ms, opened.first_id, opened.trades, open_closed) == (T0 + MINUTE, 3, 1, False)


def test_a_kline_with_no_later_trade_closes_once_its_time_is_over():
    state = KlineState("btcusdt@kline_1m", "BTCUSDT", "1m", seeding=False)
    state.fold(trade(1, T0 + 1_000))

    assert state.expire(T0 + MINUTE + 500, grace_ms=1_000) is None
    closed = state.expire(T0 + MINUTE + 1_000, grace_ms=1_000)

    assert closed is not None and closed.open_ms == T0 and state.candle is None
    assert state.fold(trade(2, T0 + 59_000)) == []  # late for the closed bucket


class FakeDatabase:
    def __init__(self, seed: KlineSeed):
        self.seed = seed
        self.release = asyncio.Event()
        self.calls: list[dict] = []

    async def __call__(self, function, **kwargs):
        self.calls.append(kwargs)
        await self.release.wait()
        return self.seed


def test_a_kline_starts_from_the_stored_candle_and_adds_only_the_trades_past_its_mark():
    async def scenario() -> list:
        hub = Hub()
        price = Decimal("100")
        stored = Candle(
            "BTCUSDT",
            "1m",
            T0,
            T0 + MINUTE - 1,
            1,
            5,
            price,
            Decimal(110),
            Decimal(90),
            price,
            Decimal(5),
            Decimal(500),
            5,
        )
        database = FakeDatabase(KlineSeed(stored, 5))
        clock = [T0 + 10_000]
        market = Market(hub, run_db=database, clock=lambda: clock[0])
        market.on_trades([trade(5, T0 + 9_000)])  # seen before the subscription, already in the stored candle
        client = FakeClient()
        kline = stream("btcusdt@kline_1m")
        hub.subscribe(client, kline)
        market.start(kline)
        await asyncio.sleep(0)
        market.on_trades([trade(6, T0 + 11_000, "120", "1")])  # arrives while the seed is read
        database.release.set()
        await asyncio.sleep(0.01)
        market.on_trades([trade(6, T0 + 11_000, "120", "1"), trade(7, T0 + 12_000, "80", "2")])
        return database.calls, client.messages()

    calls, messages = asyncio.run(scenario())

    assert calls == [{"symbol": "BTCUSDT", "interval": "1m", "open_ms": T0, "close_ms": T0 + MINUTE - 1}]
    counts = [(m["k"]["n"], m["k"]["L"], m["k"]["h"], m["k"]["l"], m["k"]["v"]) for m in messages]
    assert counts == [
        (6, 6, "120.00000000", "90.00000000", "6.00000000"),  # the seed and trade 6, sent once seeded
        (7, 7, "120.00000000", "80.00000000", "8.00000000"),  # trade 7; trade 6 again counted once
    ]
    assert [m["k"]["x"] for m in messages] == [False, False]


def test_market_trades_go_out_on_the_trade_and_agg_trade_streams():
    hub = Hub()
    market = Market(hub, run_db=None, clock=lambda: 42)
    trades, aggs = FakeClient(), FakeClient()
    hub.subscribe(trades, stream("btcusdt@trade"))
    hub.subscribe(aggs, stream("btcusdt@aggTrade"))

    market.on_trades([trade(1, T0), trade(2, T0 + 1)])

    assert [m["t"] for m in trades.messages()] == [1, 2]
    assert [(m["e"], m["a"], m["E"]) for m in aggs.messages()] == [("aggTrade", 1, 42), ("aggTrade", 2, 42)]
    assert "BTCUSDT" in market.known


def envelope(type_: str, **data) -> Envelope:
    return Envelope.new(type_, source="order_svc", subject=data.get("order_id", USER), data=data)


ORDER = {"order_id": "o-1", "user_id": USER, "symbol": "BTCUSDT"}


def test_an_orders_life_is_reported_to_its_user_from_its_terms_and_its_fills():
    hub = Hub()
    client = FakeClient()
    hub.attach_user(client, stream("k" * 64), USER)
    users = UserEvents(hub, clock=lambda: 99)
    created = envelope(
        "order.created", **ORDER, side="SELL", type="LIMIT", client_order_id="c-1", time_in_force="GTC",
        quantity="2", price="100", quote_order_qty=None,
    )  # fmt: skip
    fill = {
        **ORDER, "fill_id": "f", "base_asset": "BTC", "quote_asset": "USDT", "side": "SELL", "price": "100",
        "qty": "0.5", "quote_qty": "50", "fee": "0.05", "fee_asset": "USDT", "remaining_qty": "1.5",
        "executed_at": "2023-11-14T22:14:01.500Z", "is_maker": True, "trade_id": 3,
    }  # fmt: skip

    users.on_events(
        [
            created,
            envelope("order.accepted", **ORDER, status="NEW"),
            envelope("order.filled", **fill, status="PARTIALLY_FILLED"),
            envelope(
                "order.filled", **{**fill, "remaining_qty": "0", "qty": "1.5", "quote_qty": "150"}, status="FILLED"
            ),
        ]
    )

    reports = client.messages()
    assert [(r["x"], r["X"], r["l"], r["z"], r["Z"]) for r in reports] == [
        ("NEW", "NEW", "0.00000000", "0.00000000", "0.00000000"),
        ("TRADE", "PARTIALLY_FILLED", "0.50000000", "0.50000000", "50.00000000"),
        ("TRADE", "FILLED", "1.50000000", "2.00000000", "200.00000000"),
    ]
    assert {(r["c"], r["S"], r["o"], r["q"], r["p"], r["E"]) for r in reports} == {
        ("c-1", "SELL", "LIMIT", "2.00000000", "100.00000000", 99)
    }
    assert reports[1]["T"] == 1_700_000_041_500 and reports[1]["m"] is True
    assert users.orders == {}  # a final order is forgotten


def test_another_users_events_and_an_order_created_are_not_reported():
    hub = Hub()
    client = FakeClient()
    hub.attach_user(client, stream("k" * 64), USER)
    users = UserEvents(hub)
    other = {**ORDER, "user_id": "someone-else"}

    users.on_events([envelope("order.accepted", **other, status="NEW"), envelope(
        "order.created", **ORDER, side="BUY", type="MARKET", client_order_id="c", quote_order_qty="10"
    )])  # fmt: skip

    assert client.got == []
    assert users.orders["o-1"].type == "MARKET"


def test_a_credit_is_a_balance_update_for_its_user():
    hub = Hub()
    client = FakeClient()
    hub.attach_user(client, stream("k" * 64), USER)
    users = UserEvents(hub, clock=lambda: 7)
    credit = Envelope.new(
        "balance.credited", source="portfolio_svc", subject=USER,
        data={"user_id": USER, "portfolio_id": "p", "asset": "USDT", "amount": "25", "reason": "deposit"},
    )  # fmt: skip

    users.on_events([credit])

    (update,) = client.messages()
    assert update["e"] == "balanceUpdate" and update["a"] == "USDT" and update["d"] == "25.00000000"


@pytest.mark.parametrize("queue_bytes", [1, 10])
def test_even_an_answer_respects_the_queue_bound(queue_bytes):
    hub = Hub()
    client = FakeClient(queue_bytes=queue_bytes, takes=0)

    assert hub.send(client, {"result": None, "id": 1}) is False
    assert client.closed_with[0] == 1008


def test_a_mini_ticker_starts_from_the_stored_day_and_goes_out_once_a_second_when_it_changed():
    from streams.payloads import DayWindow

    async def scenario() -> list:
        hub = Hub()
        window = DayWindow(
            "BTCUSDT", Decimal(100), Decimal(90), Decimal(110), Decimal(80), Decimal(10), Decimal(1000), 5
        )

        async def database(function, **kwargs):
            return {"BTCUSDT": window}

        market = Market(hub, run_db=database, clock=lambda: 77)
        client = FakeClient()
        ticker = stream("btcusdt@miniTicker")
        hub.subscribe(client, ticker)
        market.start(ticker)
        await asyncio.sleep(0.01)
        market.tick()  # the seed: sent once
        market.tick()  # nothing changed: nothing sent
        market.on_trades([trade(5, T0, "200"), trade(6, T0 + 1, "120", "2"), trade(7, T0 + 2, "70", "1")])
        market.tick()
        return client.messages()

    seeded, updated = asyncio.run(scenario())

    assert (seeded["e"], seeded["c"], seeded["v"], seeded["E"]) == ("24hrMiniTicker", "100.00000000", "10.00000000", 77)
    assert (updated["c"], updated["h"], updated["l"], updated["o"], updated["v"], updated["q"]) == (
        "70.00000000", "120.00000000", "70.00000000", "90.00000000", "13.00000000", "1310.00000000"
    )  # fmt: skip
