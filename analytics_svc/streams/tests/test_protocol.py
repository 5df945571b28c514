"""The requests a client may send on a connection and the exchange's answers to bad ones; the paths it connects to."""

from __future__ import annotations

import pytest

from streams import protocol
from streams.protocol import RateLimit, Request, RequestError


def answer_to(text) -> dict:
    with pytest.raises(RequestError) as refused:
        protocol.parse_request(text)
    return refused.value.answer()


def test_a_subscription_request_is_read_as_the_exchange_reads_it():
    assert protocol.parse_request('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}') == Request(
        1, "SUBSCRIBE", ["btcusdt@trade"]
    )
    assert protocol.parse_request('{"method":"LIST_SUBSCRIPTIONS","id":"abc36"}') == Request(
        "abc36", "LIST_SUBSCRIPTIONS", []
    )
    assert protocol.parse_request('{"method":"LIST_SUBSCRIPTIONS","id":null}').id is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "{bad",
            {
                "error": {
                    "code": 3,
                    "msg": "Invalid JSON: expecting property name enclosed in double quotes at line 1 column 2",
                },
                "id": None,
            },
        ),
        ("[1]", {"error": {"code": 2, "msg": "Invalid request: expected a JSON object"}, "id": None}),
        ('{"params":[],"id":4}', {"error": {"code": 2, "msg": "Invalid request: missing field `method`"}, "id": 4}),
        (
            '{"method":"SUBSCRIB","id":5}',
            {
                "error": {
                    "code": 2,
                    "msg": "Invalid request: unknown variant `SUBSCRIB`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, "
                    "`LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`",
                },
                "id": 5,
            },
        ),
        (
            '{"method":"SUBSCRIBE","id":1.5}',
            {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}, "id": None},
        ),
        (
            '{"method":"SUBSCRIBE","id":"not-alnum"}',
            {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}, "id": None},
        ),
        (
            '{"method":"SUBSCRIBE","id":true}',
            {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}, "id": None},
        ),
        (
            '{"method":"SUBSCRIBE","id":9223372036854775808}',
            {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}, "id": None},
        ),
        (
            '{"method":"SUBSCRIBE","params":"btcusdt@trade","id":6}',
            {"error": {"code": 2, "msg": "Invalid request: params must be an array"}, "id": 6},
        ),
        (
            '{"method":"SUBSCRIBE","params":[],"id":7,"extra":1}',
            {"error": {"code": 2, "msg": "Invalid request: too many parameters"}, "id": 7},
        ),
    ],
)
def test_a_bad_request_gets_the_exchanges_error_object(text, expected):
    assert answer_to(text) == expected


def test_properties_are_combined_only_and_take_booleans():
    def property_answer(params, arity):
        request = Request(3, "SET_PROPERTY", params)
        with pytest.raises(RequestError) as refused:
            protocol.property_name(request, arity=arity)
            protocol.property_value(request)
        return refused.value.answer()

    assert property_answer(["nested", True], 2) == {"error": {"code": 0, "msg": "Unknown property"}, "id": 3}
    assert property_answer([1, True], 2) == {
        "error": {"code": 2, "msg": "Invalid request: property name must be a string"},
        "id": 3,
    }
    assert property_answer(["combined", "yes"], 2) == {
        "error": {"code": 1, "msg": "Invalid value type: expected Boolean"},
        "id": 3,
    }
    assert protocol.property_value(Request(3, "SET_PROPERTY", ["combined", False])) is False


@pytest.mark.parametrize(
    ("path", "combined", "streams"),
    [
        ("/ws", False, []),
        ("/ws/btcusdt@trade", False, ["btcusdt@trade"]),
        ("/ws/btcusdt@trade/ethusdt@kline_1m", False, ["btcusdt@trade", "ethusdt@kline_1m"]),
        ("/stream", True, []),
        ("/stream?streams=btcusdt@trade/btcusdt@aggTrade", True, ["btcusdt@trade", "btcusdt@aggTrade"]),
        ("/stream?streams=btcusdt%40trade", True, ["btcusdt@trade"]),
    ],
)
def test_the_paths_are_binances_raw_and_combined_ones(path, combined, streams):
    route = protocol.route(path)

    assert (route.combined, route.streams) == (combined, streams)


@pytest.mark.parametrize("path", ["/", "/api/v3/ping", "/wss", "/streams"])
def test_other_paths_are_no_streams(path):
    assert protocol.route(path) is None


def test_more_than_the_limit_of_messages_in_a_second_is_refused():
    now = [100.0]
    limit = RateLimit(5, clock=lambda: now[0])

    assert [limit.allow() for _ in range(5)] == [True] * 5
    assert limit.allow() is False
    now[0] += 1.0
    assert limit.allow() is True
