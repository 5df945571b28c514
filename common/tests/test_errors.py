"""Errors Django answers itself are JSON in the platform's shape, a bug's 500 included."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_a_bug_in_a_view_is_a_json_500_without_the_traceback(caplog):
    client = Client(raise_request_exception=False)

    response = client.get("/boom")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "server_error" and body["details"] == {}
    assert "RuntimeError" not in response.content.decode()
    assert any("a bug in a view" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("", None), ("7", 7), ("500", 500)])
def test_parse_count_takes_ascii_digits_in_range(raw, expected):
    from common.exceptions import parse_count

    assert parse_count(raw, "limit", minimum=1, maximum=500) == expected


@pytest.mark.parametrize("raw", ["0", "501", "\u00b2", "\u0661", " 7", "7 ", "1_0", "-1", "+7", "9" * 30])
def test_parse_count_refuses_what_is_not_a_count_in_range(raw):
    from common.exceptions import ApplicationError, parse_count

    with pytest.raises(ApplicationError) as raised:
        parse_count(raw, "limit", minimum=1, maximum=500)
    assert raised.value.details == {"parameter": "limit"}
