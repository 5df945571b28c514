"""The real streams server in a thread of the test process (its own asyncio loop, its Kafka reader on the test
namespace's topics as analytics_svc's principal, its database thread on the test database), and helpers to talk to
it as a Binance client does."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from candles.models import SymbolCursor
from candles.trades import Trade
from websockets.asyncio.client import ClientConnection

from common.events import Envelope
from common.testing.kafka import produce
from streams.server import Options, StreamsServer

QUEUE_BYTES = 64 * 1024
MAX_STREAMS = 6


@pytest.fixture(scope="module")
def streams(django_db_setup, django_db_blocker) -> Iterator[StreamsServer]:
    """One server for the module: its reader joins a group of its own and gets partitions once, a few seconds."""
    with django_db_blocker.unblock():
        server = StreamsServer(
            host="127.0.0.1",
            port=0,
            register=False,
            options=Options(max_streams=MAX_STREAMS, queue_bytes=QUEUE_BYTES, listen_key_check_s=0.5),
        )
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(server.run())
            except BaseException as exc:  # noqa: BLE001 - reported by the fixture below
                failure.append(exc)

        thread = threading.Thread(target=serve, name="streams-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not (server.started.is_set() and server.reader is not None and server.reader.assigned.is_set()):
            assert not failure, failure
            assert time.monotonic() < deadline, "the streams server did not start, or its reader got no partitions"
            time.sleep(0.1)
        yield server
        server.loop.call_soon_threadsafe(server.stop)
        thread.join(30)
        assert not thread.is_alive(), "the streams server did not stop"


def url(server: StreamsServer, path: str) -> str:
    return f"ws://{server.address}{path}"


@pytest.fixture
def symbol(transactional_db) -> str:
    """A symbol of the test's own, known to the platform (a trade of it was folded)."""
    name = f"T{uuid.uuid4().hex[:8].upper()}USDT"
    SymbolCursor.objects.create(symbol=name, last_trade_id=0, last_price=Decimal(1), last_trade_time=datetime.now(UTC))
    return name


def publish(bootstrap: str, topic: str, envelopes: list[tuple[str, Envelope]]) -> None:
    """Events onto the test namespace's topic (as their producers write them: keyed, one envelope each)."""
    produce(bootstrap, topic, [(key.encode(), e.to_json()) for key, e in envelopes])


def publish_trades(bootstrap: str, trades: list[Trade]) -> None:
    publish(
        bootstrap,
        "market-data",
        [(t.symbol, Envelope.new("trade", source="analytics_svc", subject=t.symbol, data=t.to_data())) for t in trades],
    )


async def receive(ws: ClientConnection, timeout: float = 20.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def request(ws: ClientConnection, method: str, params: list | None = None, request_id: int = 1):
    """Send a request and wait for its answer: once answered, what it (or the URL) subscribed is in place."""
    body = {"method": method, "id": request_id}
    if params is not None:
        body["params"] = params
    await ws.send(json.dumps(body))
    return await receive(ws)
