"""`manage.py serve_streams --bind HOST:PORT`: Binance-compatible websocket streams (streams/server.py)."""

from __future__ import annotations

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streams.server import SERVICE, StreamsServer


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CommandError(f"--bind {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8006")
    return host.strip("[]"), int(port)


class Command(BaseCommand):
    help = "Serve Binance's websocket market and user data streams (/ws, /stream) from the platform's events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8006", help="HOST:PORT to listen on (port 0: any free one)")
        parser.add_argument("--service", default=SERVICE, help="the name it registers under in etcd")

    def handle(self, *args: object, **options: object) -> None:
        host, port = _address(str(options["bind"]))
        # Not a line per connection and per health check: the server logs what matters (kicks, failures) itself.
        connections = logging.getLogger("websockets.server")
        connections.setLevel(max(connections.getEffectiveLevel(), logging.WARNING))
        server = StreamsServer(host=host, port=port, service=str(options["service"]))
        asyncio.run(self._serve(server))

    async def _serve(self, server: StreamsServer) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stop)
        run = asyncio.ensure_future(server.run())
        started = asyncio.ensure_future(server.started.wait())
        await asyncio.wait([run, started], return_when=asyncio.FIRST_COMPLETED)
        if server.started.is_set():
            self.stdout.write(f"streams listening on {server.address}", ending="\n")
            self.stdout.flush()
        started.cancel()
        await run
        if server.reader is not None and server.reader.failed is not None:
            raise CommandError(f"the Kafka reader failed: {server.reader.failed!r}")
