"""The real streams server with real websockets clients: trades and order and balance events published to the test
namespace's topics arrive as Binance's payloads on /ws/<stream>, /stream?streams=... and after a SUBSCRIBE; a user
data stream made over the API gets its user's events; the exchange's limits and error answers."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pytest
from candles.trades import Trade
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from common.events import Envelope
from common.testing.auth import bearer
from common.testing.http import http
from streams.tests.conftest import MAX_STREAMS, publish, publish_trades, receive, request, url

pytestmark = pytest.mark.django_db(transaction=True)

HOUR_AGO = (time.time_ns() // 1_000_000 - 3_600_000) // 60_000 * 60_000  # a minute's start, an hour ago


def test_healthz_and_readyz_answer_over_plain_http(streams):
    health = http("GET", f"http://{streams.address}/healthz")
    ready = http("GET", f"http://{streams.address}/readyz")
    missing = http("GET", f"http://{streams.address}/nope")

    assert (health.status, health.json()) == (200, {"status": "ok", "service": "analytics_streams"})
    assert health.headers["Content-Type"] == "application/json"
    assert (ready.status, ready.json()["status"]) == (200, "ready")
    assert (missing.status, missing.json()["code"]) == (404, "not_found")


def test_a_trade_published_to_market_data_arrives_on_the_raw_trade_stream(streams, symbol, kafka_bootstrap):
    async def scenario():
        async with connect(url(streams, f"/ws/{symbol.lower()}@trade")) as ws:
            assert await request(ws, "LIST_SUBSCRIPTIONS") == {"result": [f"{symbol.lower()}@trade"], "id": 1}
            publish_trades(kafka_bootstrap, [Trade(symbol, 7, "27000.5", "0.25", HOUR_AGO + 1_000, False)])
            return await receive(ws)

    payload = asyncio.run(scenario())

    assert {k: v for k, v in payload.items() if k != "E"} == {
        "e": "trade",
        "s": symbol,
        "t": 7,
        "p": "27000.50000000",
        "q": "0.25000000",
        "T": HOUR_AGO + 1_000,
        "m": False,
        "M": True,
    }
    assert isinstance(payload["E"], int) and payload["E"] >= HOUR_AGO


def test_a_combined_stream_wraps_each_payload_with_its_stream_name(streams, symbol, kafka_bootstrap):
    lower = symbol.lower()

    async def scenario():
        async with connect(url(streams, f"/stream?streams={lower}@trade/{lower}@aggTrade")) as ws:
            await request(ws, "LIST_SUBSCRIPTIONS")
            publish_trades(kafka_bootstrap, [Trade(symbol, 8, "1.5", "2", HOUR_AGO, True)])
            return [await receive(ws), await receive(ws)]

    messages = sorted(asyncio.run(scenario()), key=lambda m: m["stream"])

    assert [m["stream"] for m in messages] == [f"{lower}@aggTrade", f"{lower}@trade"]
    assert [(m["data"]["e"], m["data"]["s"], m["data"]["p"]) for m in messages] == [
        ("aggTrade", symbol, "1.50000000"),
        ("trade", symbol, "1.50000000"),
    ]
    assert messages[0]["data"]["a"] == messages[0]["data"]["f"] == messages[0]["data"]["l"] == 8


def test_subscribe_on_ws_then_list_and_unsubscribe(streams, symbol, kafka_bootstrap):
    stream = f"{symbol.lower()}@trade"

    async def scenario():
        async with connect(url(streams, "/ws")) as ws:
            subscribed = await request(ws, "SUBSCRIBE", [stream], 1)
            listed = await request(ws, "LIST_SUBSCRIPTIONS", None, 2)
            publish_trades(kafka_bootstrap, [Trade(symbol, 9, "3", "1", HOUR_AGO, False)])
            trade = await receive(ws)
            await asyncio.sleep(1.1)  # five messages a second at most
            unsubscribed = await request(ws, "UNSUBSCRIBE", [stream], 3)
            after = await request(ws, "LIST_SUBSCRIPTIONS", None, 4)
            combined = await request(ws, "SET_PROPERTY", ["combined", True], 5)
            read_back = await request(ws, "GET_PROPERTY", ["combined"], 6)
            return subscribed, listed, trade, unsubscribed, after, combined, read_back

    subscribed, listed, trade, unsubscribed, after, combined, read_back = asyncio.run(scenario())

    assert subscribed == {"result": None, "id": 1}
    assert listed == {"result": [stream], "id": 2}
    assert (trade["e"], trade["t"]) == ("trade", 9)
    assert unsubscribed == {"result": None, "id": 3}
    assert after == {"result": [], "id": 4}
    assert (combined, read_back) == ({"result": None, "id": 5}, {"result": True, "id": 6})
    assert not streams.hub.listening(stream)


def test_a_kline_is_updated_by_each_trade_and_closed_when_its_minute_is_over(streams, symbol, kafka_bootstrap):
    stream = f"{symbol.lower()}@kline_1m"

    async def scenario():
        async with connect(url(streams, "/ws")) as ws:
            assert await request(ws, "SUBSCRIBE", [stream]) == {"result": None, "id": 1}
            publish_trades(
                kafka_bootstrap,
                [
                    Trade(symbol, 11, "100", "1", HOUR_AGO + 5_000, False),
                    Trade(symbol, 12, "104", "3", HOUR_AGO + 60_000 + 10, True),  # the next minute
                ],
            )
            return [await receive(ws) for _ in range(4)]

    klines = [m["k"] for m in asyncio.run(scenario())]

    assert [(k["t"], k["n"], k["x"]) for k in klines] == [
        (HOUR_AGO, 1, False),
        (HOUR_AGO, 1, True),  # closed: by the next minute's trade, or by the clock, whichever came first
        (HOUR_AGO + 60_000, 1, False),
        (HOUR_AGO + 60_000, 1, True),  # its minute is long over: closed by the clock
    ]
    assert (klines[0]["T"], klines[0]["i"], klines[0]["s"], klines[0]["o"], klines[0]["f"], klines[0]["L"]) == (
        HOUR_AGO + 59_999,
        "1m",
        symbol,
        "100.00000000",
        11,
        11,
    )
    assert (klines[2]["c"], klines[2]["v"], klines[2]["V"], klines[2]["q"]) == (
        "104.00000000",
        "3.00000000",
        "0.00000000",
        "312.00000000",
    )


def test_an_unknown_stream_or_symbol_gets_binances_error_answer(streams, symbol):
    async def scenario():
        async with connect(url(streams, "/ws")) as ws:
            bad_name = await request(ws, "SUBSCRIBE", [f"{symbol.lower()}@trades"], 1)
            bad_symbol = await request(ws, "SUBSCRIBE", ["nosuchcoin@trade"], 2)
            mixed = await request(ws, "SUBSCRIBE", [f"{symbol.lower()}@trade", "nosuchcoin@trade"], 3)
            listed = await request(ws, "LIST_SUBSCRIPTIONS", None, 4)
        async with connect(url(streams, "/ws/nosuchcoin@trade")) as ws:
            in_url = await receive(ws)
            with pytest.raises(ConnectionClosed):
                await receive(ws)
            closed = ws.close_code
        return bad_name, bad_symbol, mixed, listed, in_url, closed

    bad_name, bad_symbol, mixed, listed, in_url, closed = asyncio.run(scenario())

    invalid = {"code": 2, "msg": "Invalid request: invalid stream"}
    assert (bad_name, bad_symbol, mixed) == (
        {"error": invalid, "id": 1},
        {"error": invalid, "id": 2},
        {"error": invalid, "id": 3},
    )
    assert listed == {"result": [], "id": 4}  # a request with one bad name subscribes nothing
    assert (in_url, closed) == ({"error": invalid, "id": None}, 1008)


def test_a_url_that_names_no_stream_opens_an_empty_connection_as_ccxt_uses_it(streams):
    async def scenario():
        async with connect(url(streams, "/ws/0")) as ws:
            return await request(ws, "LIST_SUBSCRIPTIONS")

    assert asyncio.run(scenario()) == {"result": [], "id": 1}


def test_more_streams_than_the_limit_are_refused(streams, symbol):
    lower = symbol.lower()
    names = [f"{lower}@kline_{i}" for i in ("1m", "3m", "5m", "15m", "30m", "1h", "2h")][: MAX_STREAMS + 1]

    async def scenario():
        async with connect(url(streams, "/ws")) as ws:
            refused = await request(ws, "SUBSCRIBE", names, 1)
            accepted = await request(ws, "SUBSCRIBE", names[:MAX_STREAMS], 2)
            return refused, accepted

    refused, accepted = asyncio.run(scenario())

    assert refused == {"error": {"code": 2, "msg": "Invalid request: too many streams"}, "id": 1}
    assert accepted == {"result": None, "id": 2}


def test_more_than_five_messages_a_second_disconnects_with_1008(streams):
    async def scenario():
        async with connect(url(streams, "/ws")) as ws:
            for i in range(6):
                await ws.send(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
            answers = []
            with pytest.raises(ConnectionClosed):
                while True:
                    answers.append(await receive(ws))
            return answers, ws.close_code, ws.close_reason

    answers, code, reason = asyncio.run(scenario())

    assert [a["id"] for a in answers] == [0, 1, 2, 3, 4]
    assert (code, reason) == (1008, "Too many requests")


def test_a_client_that_cannot_keep_up_is_disconnected_and_the_others_get_every_trade(streams, symbol, kafka_bootstrap):
    lower = symbol.lower()
    stream = f"{lower}@trade"
    # The slow client's six streams bring about 2 KB a trade: more than the kernel's socket buffers take (up to 4 MB
    # here) and the 64 KB queue. Klines of hours and days: no clock closes them while the test runs.
    heavy = [stream, f"{lower}@aggTrade", *(f"{lower}@kline_{i}" for i in ("1h", "2h", "4h", "1d"))]
    count = 4000
    now = time.time_ns() // 1_000_000
    kicked = streams.hub.kicked

    async def scenario():
        slow_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # it takes little, and never reads
        host, port = streams.address.rsplit(":", 1)
        slow_socket.connect((host, int(port)))
        async with (
            connect(url(streams, "/ws/" + "/".join(heavy)), sock=slow_socket, max_queue=1) as slow,
            connect(url(streams, f"/ws/{stream}"), max_queue=None) as fast,
        ):
            await request(slow, "LIST_SUBSCRIPTIONS")
            await request(fast, "LIST_SUBSCRIPTIONS")
            publish_trades(kafka_bootstrap, [Trade(symbol, i, "1", "1", now, False) for i in range(1, count + 1)])
            ids = [(await receive(fast))["t"] for _ in range(count)]
            deadline = time.monotonic() + 20
            while streams.hub.kicked == kicked and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            slow.transport.abort()
            return ids

    ids = asyncio.run(scenario())

    assert ids == list(range(1, count + 1))
    assert streams.hub.kicked == kicked + 1
    deadline = time.monotonic() + 10  # the fast one closed too: the server forgets the stream once it has seen that
    while streams.hub.listening(stream) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not streams.hub.listening(stream)


def user_data_headers(user_id: str) -> dict[str, str]:
    token = bearer(user_id, api_key=str(uuid.uuid4()), api_key_permissions=["read", "trade"])["Authorization"]
    return {"HTTP_AUTHORIZATION": token}


def order_events(user_id: str, symbol: str) -> list[tuple[str, Envelope]]:
    order = {"order_id": str(uuid.uuid4()), "user_id": user_id, "symbol": symbol}

    def event(type_: str, **data) -> tuple[str, Envelope]:
        return order["order_id"], Envelope.new(
            type_, source="order_svc", subject=order["order_id"], data={**order, **data}
        )

    terms = {"side": "BUY", "type": "LIMIT", "client_order_id": "bot-1", "time_in_force": "GTC", "quantity": "2"}
    fill = {
        **{"fill_id": str(uuid.uuid4()), "base_asset": "T", "quote_asset": "USDT", "side": "BUY", "price": "10"},
        **{"qty": "2", "quote_qty": "20", "fee": "0.002", "fee_asset": "T", "status": "FILLED", "remaining_qty": "0"},
        **{"executed_at": "2024-01-01T00:00:01.250Z", "is_maker": True, "trade_id": 99},
    }
    return [
        event("order.created", **terms, price="10"),
        event("order.accepted", status="NEW"),
        event("order.filled", **fill),
    ]


def test_a_user_data_stream_made_over_the_api_gets_that_users_events_until_its_key_is_closed(
    streams, symbol, kafka_bootstrap, client
):
    user_id, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    key = client.post("/api/v3/userDataStream", **user_data_headers(user_id)).json()["listenKey"]
    funds = {"portfolio_id": str(uuid.uuid4()), "asset": "USDT", "amount": "500", "reason": "deposit"}
    credit = Envelope.new(
        "balance.credited", source="portfolio_svc", subject=user_id, data={"user_id": user_id, **funds}
    )

    async def scenario():
        async with connect(url(streams, f"/ws/{key}")) as ws:
            assert await request(ws, "LIST_SUBSCRIPTIONS") == {"result": [key], "id": 1}
            publish(kafka_bootstrap, "order-events", order_events(stranger, symbol) + order_events(user_id, symbol))
            publish(kafka_bootstrap, "balance-events", [(user_id, credit)])
            events = [await receive(ws) for _ in range(3)]
            await asyncio.to_thread(
                client.delete, f"/api/v3/userDataStream?listenKey={key}", **user_data_headers(user_id)
            )
            expired = await receive(ws, timeout=10)
            with pytest.raises(ConnectionClosed):
                await receive(ws)
            return events, expired, ws.close_code

    events, expired, code = asyncio.run(scenario())

    reports = [e for e in events if e["e"] == "executionReport"]
    assert [(r["x"], r["X"], r["c"], r["S"], r["o"], r["q"], r["z"], r["s"]) for r in reports] == [
        ("NEW", "NEW", "bot-1", "BUY", "LIMIT", "2.00000000", "0.00000000", symbol),
        ("TRADE", "FILLED", "bot-1", "BUY", "LIMIT", "2.00000000", "2.00000000", symbol),
    ]
    assert (reports[1]["L"], reports[1]["n"], reports[1]["N"], reports[1]["T"]) == (
        "10.00000000",
        "0.00200000",
        "T",
        1704067201250,
    )
    (update,) = [e for e in events if e["e"] == "balanceUpdate"]
    assert (update["a"], update["d"]) == ("USDT", "500.00000000")
    assert (expired["e"], expired["listenKey"], code) == ("listenKeyExpired", key, 1000)


def test_an_unknown_listen_key_is_told_it_expired_and_closed(streams):
    async def scenario():
        async with connect(url(streams, f"/ws/{'Z' * 64}")) as ws:
            message = await receive(ws)
            with pytest.raises(ConnectionClosed):
                await receive(ws)
            return message, ws.close_code

    message, code = asyncio.run(scenario())

    assert (message["e"], message["listenKey"], code) == ("listenKeyExpired", "Z" * 64, 1000)
