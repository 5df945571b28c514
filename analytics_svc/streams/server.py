"""The streams server: Binance's websocket market and user data streams on one asyncio loop (websockets), fed by
one Kafka reader thread; registered in etcd as `analytics_streams` so the gateway routes /ws and /stream to it.

Per connection: the streams named in its URL, then its requests (protocol.py), at most STREAMS_MAX_STREAMS streams
and STREAMS_MAX_MESSAGES_PER_S incoming messages a second (more: 1008). Delivery is the hub's (hub.py). /healthz
answers over plain HTTP; /readyz says whether the Kafka reader has its partitions (events flow from then on).
SIGTERM or SIGINT: leave the registry, close every connection with 1001, stop the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from candles.trades import Trade
from django.conf import settings
from django.db import close_old_connections, connections
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response

from common import discovery
from common.events import Envelope
from streams import names, payloads, protocol
from streams.hub import POLICY_VIOLATION, Client, Hub
from streams.listen_keys import AsyncListenKeys
from streams.market import Market, now_ms
from streams.protocol import INVALID_REQUEST, INVALID_STREAM, TOO_MANY_STREAMS, RequestError
from streams.reader import EventReader
from streams.user import UserEvents

logger = logging.getLogger(__name__)

SERVICE = "analytics_streams"  # the name it registers under: the route table's service for /ws and /stream
NORMAL = 1000
TOO_MANY_REQUESTS = "Too many requests"


@dataclass(frozen=True)
class Options:
    max_streams: int = 1024
    max_messages_per_s: int = 5
    queue_bytes: int = 1 << 20
    listen_key_check_s: float = 5.0
    ticker_refresh_s: float = 60.0
    open_orders: int = 100_000

    @classmethod
    def from_settings(cls) -> Options:
        return cls(
            max_streams=settings.STREAMS_MAX_STREAMS,
            max_messages_per_s=settings.STREAMS_MAX_MESSAGES_PER_S,
            queue_bytes=settings.STREAMS_CLIENT_QUEUE_BYTES,
            listen_key_check_s=settings.STREAMS_LISTEN_KEY_CHECK_S,
            ticker_refresh_s=settings.STREAMS_TICKER_REFRESH_S,
            open_orders=settings.STREAMS_OPEN_ORDERS,
        )


class StreamsServer:
    def __init__(
        self, *, host: str, port: int, options: Options | None = None, register: bool | None = None, service=SERVICE
    ):
        self.host, self.port = host, port
        self.options = options or Options.from_settings()
        self.register = discovery.enabled() if register is None else register
        self.service = service
        self.hub = Hub()
        self.market = Market(self.hub, run_db=self.run_db, ticker_refresh_s=self.options.ticker_refresh_s)
        self.users = UserEvents(self.hub, max_orders=self.options.open_orders)
        self.listen_keys: AsyncListenKeys | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.reader: EventReader | None = None
        self.server: Server | None = None
        self.address: str | None = None
        self.started = asyncio.Event()
        self._stop = asyncio.Event()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streams-db")
        self._registration: discovery.Registration | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = self.loop = asyncio.get_running_loop()
        self.listen_keys = AsyncListenKeys()
        try:
            await self.market.load_symbols()
        except Exception as exc:  # noqa: BLE001 - the database away: symbols are learnt from the trades seen
            logger.warning("symbols not read at start", extra={"error": repr(exc)})
        self.reader = EventReader(loop, self.on_events, on_failure=self.stop)
        self.reader.start()
        ticker = asyncio.ensure_future(self._every_second())
        try:
            async with serve(
                self.handle,
                self.host,
                self.port,
                process_request=self.process_request,
                compression=None,  # a message is encoded once for every client: no per-connection deflate
                ping_interval=20,  # as the exchange: a ping every 20 s, a minute for the pong
                ping_timeout=60,
                close_timeout=2,
                max_size=1 << 20,
                server_header=None,
            ) as server:
                self.server = server
                host, port = server.sockets[0].getsockname()[:2]
                self.address = f"{os.environ.get('DISCOVERY_ADVERTISE_HOST') or host}:{port}"
                if self.register:
                    self._registration = discovery.Registration(service=self.service, address=self.address)
                    self._registration.start()
                logger.info("streams server listening", extra={"address": self.address})
                self.started.set()
                await self._stop.wait()
                # Leave the registry first, so the gateway stops sending clients here, then close (1001).
                if self._registration is not None:
                    await asyncio.to_thread(self._registration.stop)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self.market.aclose()
            self.reader.stop()
            await asyncio.to_thread(self.reader.join, 10)
            await self.listen_keys.aclose()
            await loop.run_in_executor(self._db, connections.close_all)
            self._db.shutdown(wait=True)
            logger.info("streams server stopped")

    async def run_db(self, function, **kwargs: Any) -> Any:
        """Run a database read in the server's database thread (Django's ORM is synchronous)."""

        def call() -> Any:
            close_old_connections()
            return function(**kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._db, call)

    async def _every_second(self) -> None:
        last_check = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            try:
                self.market.tick()
                if time.monotonic() - last_check >= self.options.listen_key_check_s:
                    last_check = time.monotonic()
                    await self.expire_listen_keys()
            except Exception:  # a tick's failure must not stop the next one; logged with its traceback
                logger.exception("streams tick failed")

    async def expire_listen_keys(self) -> None:
        """Close the user data streams whose listenKey expired or was deleted, after Binance's listenKeyExpired."""
        in_use = self.hub.listen_keys()
        gone = await self.listen_keys.gone(list(in_use))
        for key in gone:
            for client in in_use[key]:
                self.hub.send(client, payloads.listen_key_expired(key, event_ms=now_ms()))
                self.hub.kick(client, NORMAL, "listenKey expired")

    # --- events --------------------------------------------------------------------------------------------

    def on_events(self, envelopes: list[Envelope]) -> None:
        trades = [Trade.from_data(e.data) for e in envelopes if e.type == "trade"]
        if trades:
            self.market.on_trades(trades)
        if len(trades) < len(envelopes):
            self.users.on_events([e for e in envelopes if e.type != "trade"])

    # --- HTTP ----------------------------------------------------------------------------------------------

    def process_request(self, conn: ServerConnection, request: HttpRequest) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return _json(conn, http.HTTPStatus.OK, {"status": "ok", "service": self.service})
        if path == "/readyz":
            ready = self.reader is not None and self.reader.assigned.is_set() and self.reader.is_alive()
            status = http.HTTPStatus.OK if ready else http.HTTPStatus.SERVICE_UNAVAILABLE
            body = {"status": "ready" if ready else "unready", "checks": {"kafka": "ok" if ready else "waiting"}}
            return _json(conn, status, body)
        if protocol.route(request.path) is None:
            return _json(
                conn,
                http.HTTPStatus.NOT_FOUND,
                {"code": "not_found", "message": f"no route for {path}", "details": {}},
            )
        return None

    # --- connections ---------------------------------------------------------------------------------------

    async def handle(self, conn: ServerConnection) -> None:
        route = protocol.route(conn.request.path)
        client = Client(conn, combined=route.combined, queue_bytes=self.options.queue_bytes)
        try:
            try:
                await self._subscribe(client, route.streams, request_id=None, from_url=True)
            except RequestError as exc:
                await conn.send(json.dumps(exc.answer(), separators=(",", ":")))
                await conn.close(POLICY_VIOLATION, exc.msg[:120])
                return
            except _ListenKeyGone as gone:
                await conn.send(json.dumps(payloads.listen_key_expired(gone.key, event_ms=now_ms())))
                await conn.close(NORMAL, "listenKey expired")
                return
            limit = protocol.RateLimit(self.options.max_messages_per_s)
            async for message in conn:
                if client.closed:
                    break
                if not limit.allow():
                    self.hub.kick(client, POLICY_VIOLATION, TOO_MANY_REQUESTS)
                    break
                answer = await self.answer(client, message)
                self.hub.send(client, answer)
            if client.close_code is not None:  # kicked: close with its code before the handler's return closes (1000)
                await conn.close(client.close_code, client.close_reason)
        except ConnectionClosed:
            pass
        finally:
            self._forget(client)

    def _forget(self, client: Client) -> None:
        streams = list(client.streams.values())
        self.hub.remove(client)
        for stream in streams:
            if stream.kind in names.MARKET_KINDS and not self.hub.listening(stream.name):
                self.market.stop(stream)

    async def answer(self, client: Client, message: str | bytes) -> dict[str, Any]:
        try:
            request = protocol.parse_request(message)
            if request.method == "SUBSCRIBE":
                await self._subscribe(client, request.params, request_id=request.id)
                return protocol.result_answer(None, request.id)
            if request.method == "UNSUBSCRIBE":
                self._unsubscribe(client, request.params, request_id=request.id)
                return protocol.result_answer(None, request.id)
            if request.method == "LIST_SUBSCRIPTIONS":
                if request.params:
                    raise RequestError(INVALID_REQUEST, protocol.TOO_MANY_PARAMETERS, request.id)
                return protocol.result_answer(list(client.streams), request.id)
            if request.method == "SET_PROPERTY":
                protocol.property_name(request, arity=2)
                client.combined = protocol.property_value(request)
                return protocol.result_answer(None, request.id)
            protocol.property_name(request, arity=1)
            return protocol.result_answer(client.combined, request.id)
        except RequestError as exc:
            return exc.answer()

    async def _subscribe(self, client: Client, raw: list[Any], *, request_id: Any, from_url: bool = False) -> None:
        """Check every stream first (a request with one bad name changes nothing), then subscribe to them all."""
        if not from_url and not raw:
            raise RequestError(INVALID_REQUEST, INVALID_STREAM, request_id)
        wanted: dict[str, names.Stream] = {}
        for name in raw:
            stream = names.parse(name)
            if stream is None:
                if from_url and "@" not in str(name):
                    # Not a stream at all (ccxt.pro connects to /ws/<its connection number>, then subscribes): the
                    # exchange opens such a connection with nothing subscribed.
                    continue
                raise RequestError(INVALID_REQUEST, INVALID_STREAM, request_id)
            wanted[stream.name] = stream
        new = [s for n, s in wanted.items() if n not in client.streams]
        if len(client.streams) + len(new) > self.options.max_streams:
            raise RequestError(INVALID_REQUEST, TOO_MANY_STREAMS, request_id)
        users: dict[str, str] = {}
        for stream in new:
            if stream.kind == names.USER_DATA:
                user_id = await self.listen_keys.user_of(stream.name)
                if user_id is None:
                    if from_url:
                        raise _ListenKeyGone(stream.name)
                    raise RequestError(INVALID_REQUEST, INVALID_STREAM, request_id)
                users[stream.name] = user_id
            elif not await self.market.symbol_known(stream.symbol):
                raise RequestError(INVALID_REQUEST, INVALID_STREAM, request_id)
        if client.closed:
            return
        for stream in new:
            if stream.kind == names.USER_DATA:
                self.hub.attach_user(client, stream, users[stream.name])
                continue
            first = not self.hub.listening(stream.name)
            self.hub.subscribe(client, stream)
            if first:
                self.market.start(stream)

    def _unsubscribe(self, client: Client, raw: list[Any], *, request_id: Any) -> None:
        parsed = [names.parse(name) for name in raw]
        if not raw or any(s is None for s in parsed):
            raise RequestError(INVALID_REQUEST, INVALID_STREAM, request_id)
        for stream in parsed:
            removed = self.hub.unsubscribe(client, stream.name) is not None
            if removed and stream.kind in names.MARKET_KINDS and not self.hub.listening(stream.name):
                self.market.stop(stream)


class _ListenKeyGone(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _json(conn: ServerConnection, status: http.HTTPStatus, body: dict[str, Any]) -> Response:
    response = conn.respond(status, json.dumps(body, separators=(",", ":")) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response
