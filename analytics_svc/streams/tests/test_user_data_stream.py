"""POST, PUT and DELETE /api/v3/userDataStream: listenKeys in Redis, one per account, 60 minutes from the last
keepalive, Binance's answers and errors."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from common.testing.auth import bearer
from streams import listen_keys

pytestmark = pytest.mark.django_db

PATH = "/api/v3/userDataStream"


@pytest.fixture
def user() -> str:
    return str(uuid.uuid4())


def key_headers(user_id: str, permissions=("read",)) -> dict[str, str]:
    """What the gateway forwards after user_svc accepted the X-MBX-APIKEY: a token naming the key."""
    token = bearer(user_id, api_key=str(uuid.uuid4()), api_key_permissions=list(permissions))["Authorization"]
    return {"HTTP_AUTHORIZATION": token}


def store() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def test_post_makes_a_listen_key_of_64_characters_for_the_user_and_a_second_post_answers_the_same(client, user):
    first = client.post(PATH, **key_headers(user))
    second = client.post(PATH, **key_headers(user))

    assert first.status_code == 200, first.content
    key = first.json()["listenKey"]
    assert len(key) == 64 and key.isalnum()
    assert second.json() == {"listenKey": key}
    assert store().get(listen_keys.key_name(key)) == user
    assert 3500 < store().ttl(listen_keys.key_name(key)) <= 3600
    assert listen_keys.key_name(key).startswith(f"{settings.PLATFORM_NAMESPACE}:analytics_svc:listen-key:")


def test_put_extends_the_key_for_60_minutes_and_answers_an_empty_object(client, user):
    key = client.post(PATH, **key_headers(user)).json()["listenKey"]
    store().expire(listen_keys.key_name(key), 10)

    answer = client.put(f"{PATH}?listenKey={key}", **key_headers(user))

    assert (answer.status_code, answer.json()) == (200, {})
    assert store().ttl(listen_keys.key_name(key)) > 3500


def test_delete_closes_the_key_and_a_new_post_makes_another(client, user):
    key = client.post(PATH, **key_headers(user)).json()["listenKey"]

    closed = client.delete(f"{PATH}?listenKey={key}", **key_headers(user))
    again = client.put(f"{PATH}?listenKey={key}", **key_headers(user))

    assert (closed.status_code, closed.json()) == (200, {})
    assert (again.status_code, again.json()) == (400, {"code": -1125, "msg": "This listenKey does not exist."})
    assert store().get(listen_keys.key_name(key)) is None
    assert client.post(PATH, **key_headers(user)).json()["listenKey"] != key


def test_the_key_may_come_in_the_form_body_as_binance_takes_it(client, user):
    key = client.post(PATH, **key_headers(user)).json()["listenKey"]

    answer = client.put(PATH, f"listenKey={key}", content_type="application/x-www-form-urlencoded", **key_headers(user))

    assert answer.status_code == 200, answer.content


def test_another_users_key_does_not_exist_for_this_one(client, user):
    key = client.post(PATH, **key_headers(user)).json()["listenKey"]
    stranger = str(uuid.uuid4())

    assert client.delete(f"{PATH}?listenKey={key}", **key_headers(stranger)).json()["code"] == -1125
    assert store().get(listen_keys.key_name(key)) == user  # untouched


def test_a_missing_key_is_1102(client, user):
    answer = client.put(PATH, **key_headers(user))

    assert (answer.status_code, answer.json()) == (
        400,
        {"code": -1102, "msg": "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed."},
    )


def test_without_the_gateways_api_key_token_it_is_2014(client, user):
    around_the_gateway = client.post(PATH)
    with_a_login_token = client.post(PATH, HTTP_AUTHORIZATION=bearer(user)["Authorization"])

    assert (around_the_gateway.status_code, around_the_gateway.json()["code"]) == (401, -2014)
    assert (with_a_login_token.status_code, with_a_login_token.json()["code"]) == (401, -2014)
