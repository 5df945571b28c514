"""listenKeys of the user data streams, in Redis under the run namespace's prefix: each names its user and lives
LISTEN_KEY_TTL_S (60 minutes) from its creation or last keepalive, as on the exchange.

    <prefix>analytics_svc:listen-key:<key>      -> the user id
    <prefix>analytics_svc:listen-key-user:<id>  -> the user's live key (a second POST answers the same key)

The web process writes them (POST/PUT/DELETE /api/v3/userDataStream); the streams server reads them when a client
connects with one and checks every STREAMS_LISTEN_KEY_CHECK_S that the keys in use still exist.
"""

from __future__ import annotations

import functools
import secrets
import string

import redis
import redis.asyncio
from django.conf import settings

from common import namespace
from common.binance import DISCONNECTED, BinanceError

INVALID_LISTEN_KEY = -1125
_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 64


def not_found() -> BinanceError:
    return BinanceError(INVALID_LISTEN_KEY, "This listenKey does not exist.")


def _unavailable() -> BinanceError:
    return BinanceError(
        DISCONNECTED, "Internal error; unable to process your request. Please try again.", status_code=503
    )


def key_name(listen_key: str) -> str:
    return f"{namespace.redis_prefix()}{settings.SERVICE_NAME}:listen-key:{listen_key}"


def user_name(user_id: str) -> str:
    return f"{namespace.redis_prefix()}{settings.SERVICE_NAME}:listen-key-user:{user_id}"


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)


def _redis() -> redis.Redis:
    return _client(settings.REDIS_URL)


def _new_key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))


def listen_key_create(*, user_id: str) -> str:
    """The user's live listenKey, its life extended; a new one when the user has none (Binance's POST)."""
    ttl, slot = settings.LISTEN_KEY_TTL_S, user_name(user_id)
    try:
        with _redis().pipeline(transaction=True) as pipe:
            for _ in range(5):
                try:
                    pipe.watch(slot)  # a concurrent POST of the same user: one of them makes the key, both answer it
                    existing = pipe.get(slot)
                    if existing is not None and pipe.exists(key_name(existing)):
                        pipe.multi()
                        pipe.expire(key_name(existing), ttl)
                        pipe.expire(slot, ttl)
                        pipe.execute()
                        return existing
                    key = _new_key()
                    pipe.multi()
                    pipe.set(key_name(key), user_id, ex=ttl)
                    pipe.set(slot, key, ex=ttl)
                    pipe.execute()
                    return key
                except redis.WatchError:
                    continue
    except redis.RedisError as exc:
        raise _unavailable() from exc
    raise _unavailable()


def _owned(client: redis.Redis, listen_key: str, user_id: str) -> None:
    if client.get(key_name(listen_key)) != user_id:
        raise not_found()  # another user's key does not exist for this one


def listen_key_keepalive(*, user_id: str, listen_key: str) -> None:
    client = _redis()
    try:
        _owned(client, listen_key, user_id)
        ttl = settings.LISTEN_KEY_TTL_S
        with client.pipeline(transaction=True) as pipe:
            pipe.expire(key_name(listen_key), ttl)
            pipe.expire(user_name(user_id), ttl)
            pipe.execute()
    except redis.RedisError as exc:
        raise _unavailable() from exc


def listen_key_close(*, user_id: str, listen_key: str) -> None:
    client = _redis()
    try:
        _owned(client, listen_key, user_id)
        with client.pipeline(transaction=True) as pipe:
            pipe.delete(key_name(listen_key))
            pipe.delete(user_name(user_id))
            pipe.execute()
    except redis.RedisError as exc:
        raise _unavailable() from exc


class AsyncListenKeys:
    """The streams server's reads: whose key this is, and which of the keys in use are gone."""

    def __init__(self, url: str | None = None):
        self.redis = redis.asyncio.Redis.from_url(
            url or settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
        )

    async def user_of(self, listen_key: str) -> str | None:
        return await self.redis.get(key_name(listen_key))

    async def gone(self, listen_keys: list[str]) -> list[str]:
        """The keys that expired or were closed (one round trip for all of them)."""
        if not listen_keys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in listen_keys:
                pipe.exists(key_name(key))
            found = await pipe.execute()
        return [key for key, exists in zip(listen_keys, found, strict=True) if not exists]

    async def aclose(self) -> None:
        await self.redis.aclose()
