"""The market-data feed: CSV replay and its pacing, the seeded simulator, and the Binance websocket source."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from websockets.sync.server import ServerConnection, serve

from candles.feed import sources
from candles.feed.binance import parse_frame
from candles.tests.conftest import GOLDEN_TRADE_COUNT, GOLDEN_TRADES
from candles.trades import Trade
from common.events import Envelope
from common.testing.kafka import read_topic

FRAMES = Path(__file__).parent / "fixtures" / "binance_trade_frames.jsonl"


def published(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, Envelope]]:
    return [(m.key(), Envelope.from_json(m.value())) for m in read_topic(bootstrap, topic, expected=expected)]


def test_replay_publishes_one_trade_envelope_per_row_keyed_by_symbol(replay, kafka_bootstrap, kafka_topic):
    replay()

    messages = published(kafka_bootstrap, kafka_topic, GOLDEN_TRADE_COUNT)

    assert len(messages) == GOLDEN_TRADE_COUNT
    key, first = min(messages, key=lambda m: m[1].data["t"])
    assert key == b"XRPETH" and first.type == "trade" and first.subject == "XRPETH"
    assert first.source == "analytics_svc"
    assert first.data == {
        "e": "trade",
        "E": 1570752011620,
        "s": "XRPETH",
        "t": 13519807,
        "p": "0.00141342",
        "q": "23.0",
        "T": 1570752011620,
        "m": True,
    }


def test_replay_shifted_to_now_moves_every_time_by_the_same_offset():
    original = list(sources.replay_csv(GOLDEN_TRADES, symbol="XRPETH"))[:50]
    shifted = list(sources.replay_csv(GOLDEN_TRADES, symbol="XRPETH", shift_to_ms=1_800_000_000_000))[:50]

    assert shifted[0].time_ms == 1_800_000_000_000
    assert {s.time_ms - o.time_ms for o, s in zip(original, shifted, strict=True)} == {
        1_800_000_000_000 - 1570752011620
    }
    assert [s.trade_id for s in shifted] == [o.trade_id for o in original]


def test_pacing_waits_the_trades_gaps_divided_by_the_speed():
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    trades = [Trade("X", i, "1", "1", 1_000 + at, False) for i, at in enumerate([0, 0, 2_000, 6_000])]

    out = list(sources.paced(trades, speed=2.0, sleep=sleep, clock=lambda: now[0]))

    assert out == trades
    assert slept == [1.0, 2.0]
    assert list(sources.paced(trades, speed=0, sleep=sleep)) == trades and len(slept) == 2


def test_the_simulator_is_seeded_realistic_and_rounded_to_tick_and_step():
    symbols = ["BTCUSDT", "ETHUSDT", "XRPETH", "BNBUSDT"]
    run = list(_take(sources.simulate(symbols, seed=7, start_ms=1_700_000_000_000), 4000))
    same = list(_take(sources.simulate(symbols, seed=7, start_ms=1_700_000_000_000), 4000))
    other = list(_take(sources.simulate(symbols, seed=8, start_ms=1_700_000_000_000), 4000))

    assert run == same and run != other
    assert [t.time_ms for t in run] == sorted(t.time_ms for t in run)
    for symbol, (low, high) in {
        "BTCUSDT": (50_000, 70_000),
        "ETHUSDT": (2_500, 3_500),
        "XRPETH": (Decimal("0.00015"), Decimal("0.00025")),
        "BNBUSDT": (400, 600),
    }.items():
        market = sources.MARKETS[symbol]
        mine = [t for t in run if t.symbol == symbol]
        assert 800 < len(mine) < 1200  # the same rate for every symbol
        ids = [t.trade_id for t in mine]
        assert ids == list(range(ids[0], ids[0] + len(ids))) and ids[0] == 1_700_000_000_000 * 1000
        for t in mine:
            price, qty = Decimal(t.price), Decimal(t.qty)
            assert low < price < high
            assert price % market.tick == 0 and qty % market.step == 0 and qty >= market.step
            assert Decimal(t.price).as_tuple().exponent == market.tick.as_tuple().exponent


def test_the_simulator_runs_at_its_rate_per_symbol():
    trades = list(_take(sources.simulate(["BTCUSDT", "ETHUSDT"], seed=1, rate=4.0, start_ms=0), 8000))

    seconds = (trades[-1].time_ms - trades[0].time_ms) / 1000
    assert 3.6 < len(trades) / seconds / 2 < 4.4


def test_simulate_command_publishes_valid_trades_for_every_symbol(kafka_bootstrap, kafka_topic):
    call_command(
        "stream_market_data", "--source", "simulate", "--symbols", "BTCUSDT,ETHUSDT,XRPETH,BNBUSDT",
        "--speed", "0", "--count", "40", "--topic", kafka_topic, "--bootstrap", kafka_bootstrap,
    )  # fmt: skip

    messages = published(kafka_bootstrap, kafka_topic, 40)

    assert len(messages) == 40
    assert {key for key, _ in messages} == {b"BTCUSDT", b"ETHUSDT", b"XRPETH", b"BNBUSDT"}
    assert all(key.decode() == e.data["s"] == e.subject for key, e in messages)


def test_a_binance_frame_is_read_ignoring_unknown_and_old_keys():
    frames = FRAMES.read_text().splitlines()

    assert parse_frame(frames[0]) is None  # the subscription answer
    assert parse_frame(frames[1]) == Trade("XRPETH", 13519807, "0.00141342", "23.00000000", 1570752011620, True)
    assert parse_frame(frames[5]).trade_id == 190151433
    bare = json.loads(frames[3])["data"]
    assert parse_frame(json.dumps(bare)).symbol == "BTCUSDT"


@pytest.fixture
def exchange() -> Iterator[tuple[str, list[str]]]:
    """A local websocket server replaying recorded frames: the first connection drops after four frames,
    the second starts again two frames back (the exchange does not resume) with a gap in BTCUSDT."""
    frames = FRAMES.read_text().splitlines()
    paths: list[str] = []
    connections = iter([frames[:5], frames[3:]])

    def handler(ws: ServerConnection) -> None:
        paths.append(ws.request.path)
        for frame in next(connections, []):
            ws.send(frame)

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.socket.getsockname()[1]
        yield f"ws://127.0.0.1:{port}", paths
        server.shutdown()
    thread.join(5)


def test_binance_source_reconnects_drops_repeats_logs_gaps_and_publishes(
    exchange, kafka_bootstrap, kafka_topic, caplog
):
    url, paths = exchange
    caplog.set_level(logging.INFO, logger="candles.feed.binance")

    call_command(
        "stream_market_data", "--source", "binance", "--symbols", "XRPETH,BTCUSDT", "--url", url,
        "--max-reconnects", "2", "--topic", kafka_topic, "--bootstrap", kafka_bootstrap,
    )  # fmt: skip

    messages = published(kafka_bootstrap, kafka_topic, 8)
    ids = sorted((e.data["s"], e.data["t"]) for _, e in messages)
    assert ids == [("BTCUSDT", 190151432), ("BTCUSDT", 190151433), ("BTCUSDT", 190151437)] + [
        ("XRPETH", i) for i in range(13519807, 13519812)
    ]
    assert paths[0] == "/stream?streams=xrpeth@trade/btcusdt@trade" and len(paths) >= 2
    gaps = [r for r in caplog.records if r.getMessage() == "trade id gap"]
    assert [(g.symbol, g.after, g.next, g.missing) for g in gaps] == [("BTCUSDT", 190151433, 190151437, 3)]
    assert any(r.getMessage() == "market-data websocket lost; reconnecting" for r in caplog.records)
    assert all("b" not in e.data and "a" not in e.data for _, e in messages)


def _take(iterator, n):
    for _, item in zip(range(n), iterator, strict=False):
        yield item
