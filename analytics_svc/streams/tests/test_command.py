"""`manage.py serve_streams` as a real process: it registers in etcd as analytics_streams, and on SIGTERM leaves the
registry, closes its connections with 1001 and exits."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from common import etcd, namespace
from common.discovery import wait_registered
from common.testing.processes import Proc, run_database_url

SERVICE_DIR = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def registered(address: str) -> bool:
    client = etcd.client(etcd.SERVICES, timeout=3)
    prefix = f"{namespace.registry_prefix()}analytics_streams/"
    return any(json.loads(value)["address"] == address for value, _ in client.get_prefix(prefix))


def test_the_command_registers_and_stops_cleanly_on_sigterm(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "analytics_svc.settings",
        "DATABASE_URL": run_database_url(),
        "DISCOVERY_ENABLED": "true",
        "PYTHONUNBUFFERED": "1",
    }
    proc = Proc(
        [sys.executable, "manage.py", "serve_streams", "--bind", "127.0.0.1:0"],
        tmp_path / "streams.log",
        env,
        cwd=SERVICE_DIR,
    )
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"streams listening on (\S+)", proc.output())):
            assert proc.popen.poll() is None, proc.output()
            assert time.monotonic() < deadline, proc.output()
            time.sleep(0.2)
        address = found[1]
        assert wait_registered("analytics_streams", address, timeout=15), proc.output()

        async def scenario() -> int:
            async with connect(f"ws://{address}/ws") as ws:
                await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
                assert json.loads(await ws.recv()) == {"result": [], "id": 1}
                os.kill(proc.popen.pid, signal.SIGTERM)
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 20)
                return ws.close_code

        assert asyncio.run(scenario()) == 1001
        assert proc.popen.wait(30) == 0, proc.output()
        assert not registered(address)
        assert "streams server stopped" in proc.output()
    finally:
        proc.kill()


def test_a_server_whose_kafka_reader_dies_stops_rather_than_serve_no_events(monkeypatch):
    from streams import reader
    from streams.server import StreamsServer

    monkeypatch.setattr(reader, "reader_config", lambda: {"bootstrap.servers": "127.0.0.1:9"})  # no group
    server = StreamsServer(host="127.0.0.1", port=0, register=False)

    asyncio.run(asyncio.wait_for(server.run(), 30))

    assert server.reader.failed is not None and "group.id" in str(server.reader.failed)
