"""The fan-out: which connection listens to which stream, and delivery to every one of them without letting a slow
client hold up the others.

A message is encoded once per stream (and once more, wrapped as {"stream", "data"}, for combined connections) and
written to each subscriber's connection at once. Each client's queue is its connection's write buffer, bounded by
STREAMS_CLIENT_QUEUE_BYTES: a client whose unsent bytes pass the bound is disconnected with 1008 instead of
slowing the others or growing the process's memory. A writer task per client would hold a second copy per client
and switch tasks per message; writing synchronously (websockets' broadcast) costs neither.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.protocol import State

logger = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
TOO_SLOW = "Client is too slow: its queue is full"


def encode(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


class Client:
    """One websocket connection: its streams, its listenKeys and its bounded outgoing queue."""

    def __init__(self, conn: ServerConnection | None, *, combined: bool, queue_bytes: int):
        self.conn = conn
        self.combined = combined
        self.queue_bytes = queue_bytes
        self.streams: dict[str, Any] = {}  # name -> names.Stream, in subscription order
        self.listen_keys: dict[str, str] = {}  # listenKey -> user id
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent = 0

    def backlog(self) -> int:
        """Bytes written to the connection that the client has not taken yet."""
        transport = self.conn.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def write(self, data: bytes) -> None:
        broadcast([self.conn], data, text=True)

    def close(self, code: int, reason: str) -> asyncio.Task | None:
        if self.conn is None or self.conn.state is not State.OPEN:
            return None
        return asyncio.ensure_future(self.conn.close(code, reason))


class Hub:
    def __init__(self) -> None:
        self._streams: dict[str, set[Client]] = {}
        self._users: dict[str, dict[Client, set[str]]] = {}  # user id -> client -> its listenKeys of that user
        self._closing: set[asyncio.Task] = set()
        self.kicked = 0

    # --- subscriptions -------------------------------------------------------------------------------------

    def subscribe(self, client: Client, stream: Any) -> bool:
        """Add a market stream (names.Stream) to the client; False when it had it already."""
        if stream.name in client.streams:
            return False
        client.streams[stream.name] = stream
        self._streams.setdefault(stream.name, set()).add(client)
        return True

    def unsubscribe(self, client: Client, name: str) -> Any | None:
        stream = client.streams.pop(name, None)
        if stream is not None:
            self._discard(self._streams, name, client)
        key_user = client.listen_keys.pop(name, None)
        if key_user is not None:
            keys = self._users.get(key_user, {}).get(client)
            if keys is not None:
                keys.discard(name)
                if not keys:
                    self._discard(self._users, key_user, client)
        return stream

    def attach_user(self, client: Client, stream: Any, user_id: str) -> None:
        """Add a user data stream (named by its listenKey) of `user_id` to the client."""
        client.streams[stream.name] = stream
        client.listen_keys[stream.name] = user_id
        self._users.setdefault(user_id, {}).setdefault(client, set()).add(stream.name)

    def remove(self, client: Client) -> None:
        """The connection is gone: forget every subscription it had."""
        for name in list(client.streams):
            self.unsubscribe(client, name)
        client.closed = True

    @staticmethod
    def _discard(table: dict, key: str, client: Client) -> None:
        members = table.get(key)
        if members is None:
            return
        if isinstance(members, dict):
            members.pop(client, None)
        else:
            members.discard(client)
        if not members:
            del table[key]

    def listening(self, name: str) -> bool:
        return name in self._streams

    def streams(self) -> Iterable[str]:
        return self._streams.keys()

    def listen_keys(self) -> dict[str, list[Client]]:
        """Every listenKey in use, with the clients listening to it."""
        keys: dict[str, list[Client]] = {}
        for clients in self._users.values():
            for client, names in clients.items():
                for key in names:
                    keys.setdefault(key, []).append(client)
        return keys

    def has_user(self, user_id: str) -> bool:
        return user_id in self._users

    # --- delivery ------------------------------------------------------------------------------------------

    def publish(self, name: str, payload: Any) -> int:
        """Send a stream's payload to every subscriber; returns how many got it."""
        clients = self._streams.get(name)
        if not clients:
            return 0
        body = encode(payload)
        raw = wrapped = None
        delivered = 0
        for client in list(clients):
            if client.combined:
                if wrapped is None:
                    wrapped = f'{{"stream":{encode(name)},"data":{body}}}'.encode()
                delivered += self._deliver(client, wrapped)
            else:
                if raw is None:
                    raw = body.encode()
                delivered += self._deliver(client, raw)
        return delivered

    def publish_user(self, user_id: str, payload: Any) -> int:
        """Send a user data event to every connection listening to one of the user's listenKeys."""
        clients = self._users.get(user_id)
        if not clients:
            return 0
        body = encode(payload)
        delivered = 0
        for client, keys in list(clients.items()):
            for key in list(keys):
                data = f'{{"stream":{encode(key)},"data":{body}}}' if client.combined else body
                delivered += self._deliver(client, data.encode())
        return delivered

    def send(self, client: Client, payload: Any) -> bool:
        """One message to one client (an answer to its request), through the same bounded queue."""
        return bool(self._deliver(client, encode(payload).encode()))

    def _deliver(self, client: Client, data: bytes) -> int:
        if client.closed:
            return 0
        if client.backlog() + len(data) > client.queue_bytes:
            self.kick(client, POLICY_VIOLATION, TOO_SLOW)
            return 0
        client.write(data)
        client.sent += 1
        return 1

    def kick(self, client: Client, code: int, reason: str) -> None:
        """Disconnect a client: it stops receiving at once; the close handshake runs in the background."""
        if client.closed:
            return
        self.remove(client)
        client.close_code, client.close_reason = code, reason
        self.kicked += 1
        logger.info("stream client disconnected", extra={"code": code, "reason": reason})
        task = client.close(code, reason)
        if task is not None:
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
