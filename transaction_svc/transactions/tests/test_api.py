"""The transactions API: one user's history with filters and stable cursors, the CSV export, the summary."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from common.testing.auth import bearer
from transactions.partitions import Month
from transactions.tests.factories import record_fill

pytestmark = pytest.mark.django_db

ME = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
OTHER = uuid.UUID("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")
MONTH = Month.of(datetime.now(UTC))
T0 = MONTH.start + timedelta(days=1)


def _client(user_id: uuid.UUID = ME) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user_id)["Authorization"])
    return client


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_the_list_needs_a_token():
    response = APIClient().get("/api/transactions/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_user_sees_only_their_own_transactions_everywhere():
    mine = record_fill(user_id=ME, executed_at=T0)
    record_fill(user_id=OTHER, executed_at=T0, fill_id="theirs")

    listed = _client().get("/api/transactions/").json()
    exported = b"".join(_client().get("/api/transactions/export.csv").streaming_content).decode()
    summary = _client().get("/api/transactions/summary").json()

    assert [t["id"] for t in listed["results"]] == [str(mine.id)]
    assert "theirs" not in exported and str(mine.id) in exported
    assert [a["asset"] for a in summary["assets"]] == ["BTC", "USDT"]
    assert _client(OTHER).get("/api/transactions/").json()["results"][0]["fill_id"] == "theirs"


def test_a_transaction_is_listed_with_decimal_strings_and_utc_times():
    record = record_fill(
        user_id=ME,
        executed_at=T0.replace(microsecond=250000),
        fill_id="f-1",
        order_id="o-1",
        price="30000.10",
        qty="0.25000000",
        quote_qty="7500.025",
        fee="0.00025",
    )

    body = _client().get("/api/transactions/").json()

    assert body == {
        "next": None,
        "previous": None,
        "results": [
            {
                "id": str(record.id),
                "fill_id": "f-1",
                "order_id": "o-1",
                "symbol": "BTCUSDT",
                "base_asset": "BTC",
                "quote_asset": "USDT",
                "side": "BUY",
                "price": "30000.1",
                "qty": "0.25",
                "quote_qty": "7500.025",
                "fee": "0.00025",
                "fee_asset": "BTC",
                "order_status": "FILLED",
                "is_maker": None,
                "executed_at": _iso(T0.replace(microsecond=250000)),
            }
        ],
    }


def test_the_list_filters_by_symbol_side_and_time_range():
    wanted = record_fill(user_id=ME, symbol="ethusdt".upper(), side="SELL", executed_at=T0 + timedelta(hours=2))
    record_fill(user_id=ME, symbol="ETHUSDT", side="BUY", executed_at=T0 + timedelta(hours=2))
    record_fill(user_id=ME, symbol="BTCUSDT", side="SELL", executed_at=T0 + timedelta(hours=2))
    record_fill(user_id=ME, symbol="ETHUSDT", side="SELL", executed_at=T0)  # before the range
    record_fill(user_id=ME, symbol="ETHUSDT", side="SELL", executed_at=T0 + timedelta(hours=3))  # end is exclusive

    response = _client().get(
        "/api/transactions/",
        {
            "symbol": "ethusdt",
            "side": "SELL",
            "start": _iso(T0 + timedelta(hours=1)),
            "end": _iso(T0 + timedelta(hours=3)),
        },
    )

    assert response.status_code == 200
    assert [t["id"] for t in response.json()["results"]] == [str(wanted.id)]


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"side": "HOLD"}, "invalid", 'side: "HOLD" is not a valid choice.'),
        ({"start": "2025-02-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}, "invalid", "end: end must be after start"),
        ({"start": "yesterday"}, "invalid", None),
        ({"cursor": "not-a-cursor"}, "invalid_cursor", "the cursor is not valid"),
        ({"page_size": "0"}, "invalid", "page_size must be an integer from 1 to 500"),
        # A digit to str.isdigit, not to int(): it once reached int() and answered 500.
        ({"page_size": "\u00b2"}, "invalid", "page_size must be an integer from 1 to 500"),
        ({"page_size": "\u0661"}, "invalid", "page_size must be an integer from 1 to 500"),
    ],
)
def test_bad_query_parameters_answer_400_with_the_error_shape(params, code, message):
    response = _client().get("/api/transactions/", params)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    if message:
        assert body["message"] == message


def _page_ids(response) -> list[str]:
    return [t["id"] for t in response.json()["results"]]


def test_cursor_pages_stay_exact_while_new_transactions_arrive():
    # Five rows, two sharing one execution time (fills of one trade): a keyset on the time alone would trip.
    times = [T0 + timedelta(minutes=m) for m in (5, 4, 4, 2, 1)]
    rows = [record_fill(user_id=ME, executed_at=t) for t in times]
    expected = [str(r.id) for r in sorted(rows, key=lambda r: (r.executed_at, r.id.bytes), reverse=True)]
    client = _client()

    first = client.get("/api/transactions/", {"page_size": 2})
    record_fill(user_id=ME, executed_at=T0 + timedelta(minutes=10))  # newer: belongs before page one
    record_fill(user_id=ME, executed_at=T0 + timedelta(minutes=4, seconds=30))  # inside what page one covered
    second = client.get(first.json()["next"])
    third = client.get(second.json()["next"])

    assert _page_ids(first) + _page_ids(second) + _page_ids(third) == expected
    assert third.json()["next"] is None
    assert first.json()["previous"] is None


def test_the_previous_link_goes_back_to_the_newer_page():
    rows = [record_fill(user_id=ME, executed_at=T0 + timedelta(minutes=m)) for m in range(5)]
    client = _client()
    first = client.get("/api/transactions/", {"page_size": 2})
    second = client.get(first.json()["next"])

    back = client.get(second.json()["previous"])

    assert _page_ids(back) == _page_ids(first) == [str(rows[4].id), str(rows[3].id)]
    assert back.json()["previous"] is None
    assert _page_ids(client.get(back.json()["next"])) == _page_ids(second)


def _csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_csv_export_has_a_header_decimal_strings_and_utc_times_with_the_same_filters():
    sell = record_fill(
        user_id=ME, side="SELL", executed_at=T0 + timedelta(hours=1), price="31000.5", qty="0.1", quote_qty="3100.05",
        fee="3.100050", fee_asset="USDT", fill_id="f-s", order_id="o-s",
    )  # fmt: skip
    record_fill(user_id=ME, side="BUY", executed_at=T0)

    response = _client().get("/api/transactions/export.csv", {"side": "SELL"}, HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="transactions.csv"'
    assert _csv_rows(response) == [
        [
            "executed_at", "transaction_id", "order_id", "fill_id", "symbol", "side", "base_asset", "quote_asset",
            "price", "qty", "quote_qty", "fee", "fee_asset",
        ],
        [
            _iso(T0 + timedelta(hours=1)), str(sell.id), "o-s", "f-s", "BTCUSDT", "SELL", "BTC", "USDT",
            "31000.5", "0.1", "3100.05", "3.10005", "USDT",
        ],
    ]  # fmt: skip


def test_a_bad_export_filter_answers_json_even_when_csv_is_asked_for():
    response = _client().get("/api/transactions/export.csv", {"side": "HOLD"}, HTTP_ACCEPT="text/csv")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def _insert_bulk(user_id: uuid.UUID, count: int, start: datetime) -> None:
    """`count` fills one second apart, straight in SQL: the ledger row and its recorded_fills key."""
    params = {"user": str(user_id), "count": count, "start": start}
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bulk_fills ON COMMIT DROP AS SELECT i, gen_random_uuid() AS id, "
            "%(start)s::timestamptz + i * interval '1 second' AS executed_at "
            "FROM generate_series(1, %(count)s) AS i",
            params,
        )
        cursor.execute(
            "INSERT INTO recorded_fills (fill_id, transaction_id, executed_at, recorded_at) "
            "SELECT 'bulk-' || i, id, executed_at, now() FROM bulk_fills"
        )
        cursor.execute(
            "INSERT INTO transactions (id, fill_id, order_id, user_id, symbol, base_asset, quote_asset, side, price, "
            "qty, quote_qty, fee, fee_asset, order_status, executed_at, recorded_at) "
            "SELECT id, 'bulk-' || i, 'order-' || (i / 10), %(user)s::uuid, 'BTCUSDT', 'BTC', 'USDT', "
            "CASE WHEN i %% 2 = 0 THEN 'BUY' ELSE 'SELL' END, 30000.5, 0.001, 30.0005, 0.00001, 'BTC', 'FILLED', "
            "executed_at, now() FROM bulk_fills",
            params,
        )


def test_exporting_100000_rows_streams_them_through_a_server_side_cursor():
    _insert_bulk(ME, 100_000, MONTH.start)
    record_fill(user_id=OTHER, executed_at=T0)

    response = _client().get("/api/transactions/export.csv")

    assert isinstance(response, StreamingHttpResponse) and response.streaming
    chunks = iter(response.streaming_content)
    header_and_first = next(chunks).decode()
    with connection.cursor() as cursor:  # mid-stream: rows come from a cursor held open in the database
        cursor.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE '_django_curs_%%'")
        open_cursors = cursor.fetchone()[0]
    rest = [chunk.decode() for chunk in chunks]
    lines = (header_and_first + "".join(rest)).splitlines()

    assert open_cursors == 1
    assert len(rest) >= 100_000 // 500  # many chunks, none holding the whole export
    assert lines[0].startswith("executed_at,transaction_id,")
    assert len(lines) == 1 + 100_000
    assert lines[1].endswith(",bulk-100000,BTCUSDT,BUY,BTC,USDT,30000.5,0.001,30.0005,0.00001,BTC")
    assert lines[1].startswith(_iso(MONTH.start + timedelta(seconds=100_000)))


def test_the_summary_gives_per_asset_bought_sold_and_fees_over_a_range():
    record_fill(user_id=ME, side="BUY", qty="0.5", quote_qty="15000", fee="0.0005", fee_asset="BTC", executed_at=T0)
    record_fill(user_id=ME, side="SELL", qty="0.2", quote_qty="6200", fee="6.2", fee_asset="USDT", executed_at=T0)
    record_fill(
        user_id=ME, symbol="ETHBTC", base_asset="ETH", quote_asset="BTC", side="BUY", qty="2", quote_qty="0.1",
        fee="0.002", fee_asset="ETH", executed_at=T0,
    )  # fmt: skip
    record_fill(user_id=ME, side="BUY", qty="9", quote_qty="9", executed_at=T0 - timedelta(days=40))  # out of range

    response = _client().get("/api/transactions/summary", {"start": _iso(MONTH.start), "end": _iso(MONTH.end)})

    assert response.status_code == 200
    assert response.json() == {
        "start": _iso(MONTH.start),
        "end": _iso(MONTH.end),
        "assets": [
            {"asset": "BTC", "bought": "0.5", "sold": "0.3", "fees": "0.0005", "net": "0.1995"},
            {"asset": "ETH", "bought": "2", "sold": "0", "fees": "0.002", "net": "1.998"},
            {"asset": "USDT", "bought": "6200", "sold": "15000", "fees": "6.2", "net": "-8806.2"},
        ],
    }
