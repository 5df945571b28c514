"""The gateway's check of a Binance /api/v3 request (POST /internal/binance/check): the raw query string and body
as the client sent them in, an access token for the owning service or Binance's refusal out."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from common import auth
from common.binance import API_KEY_CLAIM, API_KEY_PERMISSIONS_CLAIM
from users import services
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/internal/binance/check"


@pytest.fixture
def key():
    return services.api_key_create(user_id=UserFactory().id, label="bot", permissions=["read", "trade"])


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


def check(api, **body):
    return api.post(URL, body, format="json")


def test_a_signed_query_string_earns_a_short_lived_token_for_the_keys_user(api, key, settings):
    query = f"symbol=BTCUSDT&timestamp={now_ms()}"
    answer = check(api, api_key=key.key.api_key, query=f"{query}&signature={sign(key.secret, query)}", body="")

    assert answer.status_code == 200, answer.json()
    claims = auth.verify_access_token(answer.json()["token"])
    assert claims["sub"] == str(key.key.user_id)
    assert claims[API_KEY_CLAIM] == str(key.key.id)
    assert claims[API_KEY_PERMISSIONS_CLAIM] == ["read", "trade"]
    assert claims["exp"] - claims["iat"] == settings.API_KEY_TOKEN_LIFETIME_S == answer.json()["expires_in"]


def test_the_signature_covers_the_query_string_followed_directly_by_the_body(api, key):
    # Binance's mixed example: totalParams = query + body, no separator; the signature may sit in either part.
    query, body = "symbol=BTCUSDT&side=BUY", f"type=MARKET&quantity=1&timestamp={now_ms()}"
    signature = sign(key.secret, query + body)

    in_body = check(api, api_key=key.key.api_key, query=query, body=f"{body}&signature={signature}")
    in_query = check(api, api_key=key.key.api_key, query=f"{query}&signature={signature}", body=body)
    joined = check(api, api_key=key.key.api_key, query="", body=f"{query}&{body}&signature={signature}")

    assert in_body.status_code == in_query.status_code == 200
    assert joined.status_code == 400 and joined.json()["code"] == -1022


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"api_key": "short"}, -2014, 401),
        ({"api_key": "A" * 64}, -2015, 401),
        ({"signature": "0" * 64}, -1022, 400),
        ({"signature": None}, -1102, 400),
        ({"timestamp": 1}, -1021, 400),
        ({"recvWindow": 60001}, -1131, 400),
        ({"twice": True}, -1101, 400),
    ],
)
def test_refusals_are_binances_code_and_status(api, key, change, code, status):
    stamp = change.get("timestamp", now_ms())
    query = f"symbol=BTCUSDT&timestamp={stamp}"
    if "recvWindow" in change:
        query += f"&recvWindow={change['recvWindow']}"
    signature = change.get("signature", sign(key.secret, query))
    raw = query if signature is None else f"{query}&signature={signature}"
    if change.get("twice"):
        raw += f"&signature={signature}"

    answer = check(api, api_key=change.get("api_key", key.key.api_key), query=raw, body="")

    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert set(answer.json()) == {"code", "msg"}


def test_a_revoked_key_is_refused_with_the_next_request(api, key):
    query = f"timestamp={now_ms()}"
    raw = f"{query}&signature={sign(key.secret, query)}"
    assert check(api, api_key=key.key.api_key, query=raw, body="").status_code == 200

    services.api_key_revoke(user_id=key.key.user_id, key_id=key.key.id)

    answer = check(api, api_key=key.key.api_key, query=raw, body="")
    assert (answer.status_code, answer.json()["code"]) == (401, -2015)


def test_an_api_key_only_request_needs_no_signature_and_a_read_key_earns_read_only(api):
    reader = services.api_key_create(user_id=UserFactory().id, label="ro", permissions=["read"])

    answer = check(api, api_key=reader.key.api_key, query="", body="", signed=False)

    assert answer.status_code == 200
    assert auth.verify_access_token(answer.json()["token"])[API_KEY_PERMISSIONS_CLAIM] == ["read"]
    unknown = check(api, api_key="B" * 64, query="", body="", signed=False)
    assert (unknown.status_code, unknown.json()["code"]) == (401, -2015)


@pytest.mark.parametrize(
    "body", [{"api_key": 5, "query": "", "body": ""}, {"signed": "yes"}, {"query": ["a"]}, ["not", "an", "object"]]
)
def test_a_malformed_check_is_a_binance_400_not_a_500(api, key, body):
    answer = api.post(URL, body, format="json")

    assert answer.status_code == 400
    assert answer.json()["code"] == -1102


def test_a_deactivated_account_s_key_is_refused(api, key):
    query = f"timestamp={now_ms()}"
    key.key.user.is_active = False
    key.key.user.save(update_fields=["is_active"])

    answer = check(api, api_key=key.key.api_key, query=f"{query}&signature={sign(key.secret, query)}", body="")

    assert (answer.status_code, answer.json()["code"]) == (401, -2015)
