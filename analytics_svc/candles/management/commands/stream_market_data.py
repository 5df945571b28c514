"""`manage.py stream_market_data --source replay|simulate|binance`: publish trades to the market-data topic."""

from __future__ import annotations

import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from candles.feed import binance, sources
from candles.feed.publisher import TradePublisher, stream


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM: leave through the flush, like Ctrl-C


class Command(BaseCommand):
    help = "Publish trades (Binance @trade shape, key = symbol) from a CSV replay, a simulator or Binance."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", choices=["replay", "simulate", "binance"], default="replay")
        parser.add_argument("path", nargs="?", help="replay: the CSV of trades")
        parser.add_argument("--symbols", default="", help="comma-separated, e.g. BTCUSDT,ETHUSDT")
        parser.add_argument("--topic", default=settings.MARKET_DATA_TOPIC)
        parser.add_argument("--bootstrap", default=settings.KAFKA_BOOTSTRAP_SERVERS)
        parser.add_argument("--speed", type=float, help="times real time; 0 = as fast as possible (replay default)")
        parser.add_argument("--shift-to-now", action="store_true", help="replay: move the first trade to now")
        parser.add_argument("--count", type=int, help="stop after this many trades")
        parser.add_argument("--seed", type=int, default=42, help="simulate: the random seed")
        parser.add_argument("--rate", type=float, default=3.0, help="simulate: trades per second per symbol")
        parser.add_argument("--start-ms", type=int, help="simulate: time of the start (default now)")
        parser.add_argument("--url", default=binance.BINANCE_WS, help="binance: the websocket base URL")
        parser.add_argument("--max-reconnects", type=int, help="binance: give up after this many (default never)")

    def handle(self, *args: object, **o: object) -> None:
        symbols = [s.strip().upper() for s in str(o["symbols"]).split(",") if s.strip()]
        source = o["source"]
        if source == "replay":
            if not o["path"]:
                raise CommandError("replay needs the PATH of a CSV of trades")
            path = Path(o["path"])
            if not path.is_file():
                raise CommandError(f"no such file: {path}")
            symbol = symbols[0] if symbols else sources.symbol_from_path(path)
            if not symbol or len(symbols) > 1:
                raise CommandError("replay needs exactly one symbol (--symbols XRPETH) unless the file name has it")
            shift = sources.now_ms() if o["shift_to_now"] else None
            trades = sources.replay_csv(path, symbol=symbol, shift_to_ms=shift)
            speed = o["speed"] if o["speed"] is not None else 0.0
        elif not symbols:
            raise CommandError(f"{source} needs --symbols")
        elif source == "simulate":
            trades = sources.simulate(symbols, seed=o["seed"], rate=o["rate"], start_ms=o["start_ms"])
            speed = o["speed"] if o["speed"] is not None else 1.0
        else:
            # The exchange paces itself: its trades are published as they arrive.
            trades = binance.binance_trades(symbols, base_url=o["url"], max_reconnects=o["max_reconnects"])
            speed = 0.0
        signal.signal(signal.SIGTERM, _interrupt)
        publisher = TradePublisher(bootstrap=o["bootstrap"], topic=o["topic"])
        try:
            sent = stream(sources.paced(trades, speed=speed), publisher, count=o["count"])
        except KeyboardInterrupt:
            sent = publisher.sent
        self.stdout.write(f"published {sent} trade(s) to {o['topic']}")
