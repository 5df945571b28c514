"""Binance's request weights and limits for every /api/v3 answer, whichever service gives it.

Each /api/v3 request costs its endpoint's weight (Binance's, from binance-spot-api-docs; some depend on the
parameters: a deeper book, more symbols). The weight used in the current minute is counted per client IP and, for a
request that came with an API key (the gateway's token names it), per key, in Redis windows that every service
shares, so a client's weight is the same whichever service answers. Every /api/v3 answer says the IP's weight so
far in `X-MBX-USED-WEIGHT-1M`; past the limit the answer is 429 with Binance's -1003 and `Retry-After`, and the
view never runs. New orders (POST /api/v3/order) count per account in 10-second and one-day windows
(`X-MBX-ORDER-COUNT-10S`, `X-MBX-ORDER-COUNT-1D`; past either, 429 -1015).

The limits are settings (BINANCE_REQUEST_WEIGHT_1M, BINANCE_ORDERS_10S, BINANCE_ORDERS_1D) and exchangeInfo's
`rateLimits` is `rate_limits()`, the same table. Fixed windows (a minute starts at :00), as Binance's. If Redis
cannot be reached the request is served uncounted (fail open: a cache outage must not stop trading) and the
headers are left out.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from common import namespace
from common.schema import BINANCE_PREFIX

logger = logging.getLogger(__name__)

TOO_MANY_REQUESTS = -1003
TOO_MANY_ORDERS = -1015


def _depth(request: HttpRequest) -> int:
    limit = _int(request.GET.get("limit"), 100)
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _symbols(one: int, few: int, many: int, all_: int, *, few_up_to: int = 20, many_up_to: int = 100):
    """A ticker's weight: one symbol, a list of n symbols, or all of them."""

    def weight(request: HttpRequest) -> int:
        if request.GET.get("symbol"):
            return one
        listed = request.GET.get("symbols")
        if listed:
            count = listed.count(",") + 1
            return few if count <= few_up_to else many if count <= many_up_to else all_
        return all_

    return weight


def _per_symbol(one: int, all_: int):
    return lambda request: one if request.GET.get("symbol") else all_


def _int(raw: str | None, default: int) -> int:
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 10 else default


# (method, path) -> weight, or a function of the request for the weights that depend on its parameters.
WEIGHTS: dict[tuple[str, str], int | Callable[[HttpRequest], int]] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/depth"): _depth,
    ("GET", "/api/v3/trades"): 25,
    ("GET", "/api/v3/aggTrades"): 4,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/uiKlines"): 2,
    ("GET", "/api/v3/avgPrice"): 2,
    ("GET", "/api/v3/ticker/24hr"): _symbols(2, 2, 40, 80),
    ("GET", "/api/v3/ticker/price"): _symbols(2, 4, 4, 4),
    ("GET", "/api/v3/ticker/bookTicker"): _symbols(2, 4, 4, 4),
    ("POST", "/api/v3/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/test"): 1,
    ("GET", "/api/v3/openOrders"): _per_symbol(6, 80),
    ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/myTrades"): 20,
    ("POST", "/api/v3/userDataStream"): 2,
    ("PUT", "/api/v3/userDataStream"): 2,
    ("DELETE", "/api/v3/userDataStream"): 2,
}
NEW_ORDER = ("POST", "/api/v3/order")


def weight_of(request: HttpRequest) -> int:
    weight = WEIGHTS.get((request.method, request.path), 1)
    return weight(request) if callable(weight) else weight


def rate_limits() -> list[dict[str, object]]:
    """exchangeInfo's `rateLimits`: the limits this module enforces."""
    return [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": settings.BINANCE_REQUEST_WEIGHT_1M},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": settings.BINANCE_ORDERS_10S},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": settings.BINANCE_ORDERS_1D},
    ]  # fmt: skip


@functools.cache
def _redis(url: str) -> redis.Redis:
    # Short timeouts: a slow or gone Redis costs a request at most this, then it is served uncounted.
    return redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)


@dataclass(frozen=True)
class Window:
    name: str  # the header's suffix: 1M, 10S, 1D
    seconds: int

    def key(self, kind: str, who: str, now: float) -> str:
        return f"{namespace.redis_prefix()}binance:{self.name}:{kind}:{who}:{int(now // self.seconds)}"

    def retry_after(self, now: float) -> int:
        return max(1, int(self.seconds - now % self.seconds + 0.999))


MINUTE, TEN_SECONDS, DAY = Window("1M", 60), Window("10S", 10), Window("1D", 86400)


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or the X-Forwarded-For entry the trusted proxies (settings.TRUSTED_PROXIES: the gateway) put
    there; no more entries are believed than there are proxies, so a client cannot pick its own address."""
    proxies = settings.TRUSTED_PROXIES
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies and forwarded:
        return forwarded[-min(proxies, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "")


def _token_claims(request: HttpRequest) -> dict | None:
    """The claims of the request's access token when it is valid (verification is cached: DRF's own check of the
    same token is then free), else None: the view refuses it itself."""
    from rest_framework.exceptions import AuthenticationFailed

    from common.auth import verify_access_token

    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer "):
        return None
    try:
        return verify_access_token(header.removeprefix("Bearer ").strip())
    except AuthenticationFailed:
        return None


def _too_many(code: int, msg: str, retry_after: int) -> HttpResponse:
    response = JsonResponse({"code": code, "msg": msg}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


class BinanceLimitsMiddleware:
    """Counts every /api/v3 request's weight (and new orders) before its view runs; see the module's docstring."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self._warned_at = 0.0

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(BINANCE_PREFIX):
            return self.get_response(request)
        now = time.time()
        try:
            counted = self._count(request, now)
        except redis.RedisError as exc:
            if now - self._warned_at > 60:  # once a minute, not once a request
                self._warned_at = now
                logger.warning("binance limits not counted: redis unavailable", extra={"error": str(exc)})
            return self.get_response(request)
        headers, refusal = counted
        response = refusal or self.get_response(request)
        for name, value in headers.items():
            response[name] = str(value)
        return response

    def _count(self, request: HttpRequest, now: float) -> tuple[dict[str, int], HttpResponse | None]:
        weight = weight_of(request)
        claims = _token_claims(request)
        api_key = claims.get("api_key") if claims else None
        counters = {"ip": (MINUTE.key("ip", client_ip(request), now), MINUTE, weight)}
        if api_key:
            counters["key"] = (MINUTE.key("key", str(api_key), now), MINUTE, weight)
        if claims is not None and (request.method, request.path) == NEW_ORDER:
            counters["10S"] = (TEN_SECONDS.key("uid", claims["sub"], now), TEN_SECONDS, 1)
            counters["1D"] = (DAY.key("uid", claims["sub"], now), DAY, 1)
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
        for key, window, amount in counters.values():
            pipe.incrby(key, amount)
            pipe.expire(key, window.seconds + 1)
        used = dict(zip(counters, pipe.execute()[::2], strict=True))  # one round trip for every counter

        headers = {"X-MBX-USED-WEIGHT-1M": used["ip"]}
        limit = settings.BINANCE_REQUEST_WEIGHT_1M
        over = [who for who, name in (("ip", "IP"), ("key", "API key")) if used.get(who, 0) > limit]
        if over:
            who = "IP" if "ip" in over else "API key"
            msg = (
                f"Too much request weight used; current limit of {who} request weight per minute is {limit}. "
                "Please use WebSocket Streams for live updates to avoid polling the API."
            )
            return headers, _too_many(TOO_MANY_REQUESTS, msg, MINUTE.retry_after(now))
        if "10S" in used:
            headers |= {"X-MBX-ORDER-COUNT-10S": used["10S"], "X-MBX-ORDER-COUNT-1D": used["1D"]}
            for name, window, limit_, interval in (
                ("10S", TEN_SECONDS, settings.BINANCE_ORDERS_10S, "TEN_SECONDS"),
                ("1D", DAY, settings.BINANCE_ORDERS_1D, "DAY"),
            ):
                if used[name] > limit_:
                    msg = f"Too many new orders; current limit is {limit_} orders per {interval}."
                    return headers, _too_many(TOO_MANY_ORDERS, msg, window.retry_after(now))
        return headers, None
