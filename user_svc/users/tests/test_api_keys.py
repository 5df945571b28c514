"""API keys: created over the API with the secret shown once, encrypted at rest, listed and revoked by their owner
only, limited per account, seen and revoked by operators in the admin; and the check of a SIGNED request."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from users import encryption, services
from users.models import ApiKey, User, UserEvent
from users.services.api_keys import SignedRequestRefused, verify_signed_request
from users.tests.factories import UserFactory, bearer, login

pytestmark = pytest.mark.django_db

KEYS_URL = "/api/users/me/api-keys"


@pytest.fixture
def trader(api):
    """A signed-in account: (the user, its Authorization header)."""
    user = UserFactory()
    return user, bearer(login(api, email=user.email).json()["access"])


def create(api, headers, **body):
    return api.post(KEYS_URL, {"label": "bot", **body}, format="json", **headers)


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def millis(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


# --- the API -------------------------------------------------------------------------------------------------------


def test_create_answers_the_secret_once_and_the_list_never_shows_it(api, trader):
    user, headers = trader

    created = create(api, headers, label="grid bot", permissions=["read", "trade"])
    listed = api.get(KEYS_URL, **headers)

    assert created.status_code == 201, created.json()
    body = created.json()
    key = ApiKey.objects.get()
    assert body == {
        "id": str(key.id),
        "label": "grid bot",
        "api_key": key.api_key,
        "secret": body["secret"],
        "permissions": ["read", "trade"],
        "created_at": body["created_at"],
        "last_used_at": None,
    }
    assert len(body["api_key"]) == 64 and body["api_key"].isalnum() and body["api_key"].isascii()
    assert len(body["secret"]) == 64 and body["secret"].isalnum() and body["secret"].isascii()
    assert listed.status_code == 200
    assert listed.json() == [{k: v for k, v in body.items() if k != "secret"}]
    assert body["secret"] not in listed.content.decode()
    assert key.user_id == user.id


def test_the_database_holds_only_a_ciphertext_that_decrypts_to_the_secret(api, trader):
    _, headers = trader

    secret = create(api, headers).json()["secret"]

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_keys")
        row = cursor.fetchone()
    assert not any(secret in str(column) for column in row)
    ciphertext = ApiKey.objects.get().secret_ciphertext
    assert ciphertext.startswith("gAAAAA")  # a Fernet token (version byte 0x80)
    assert encryption.decrypt(ciphertext) == secret


def test_permissions_default_to_read_and_trade_is_granted_only_when_asked_for(api, trader):
    _, headers = trader

    default = create(api, headers, label="reader")
    trading = create(api, headers, label="trader", permissions=["trade", "read"])

    assert default.json()["permissions"] == ["read"]
    assert trading.json()["permissions"] == ["read", "trade"]
    assert sorted(ApiKey.objects.values_list("label", "can_trade")) == [("reader", False), ("trader", True)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": ""}, "label"),
        ({"label": "   "}, "label"),
        ({"label": "x" * 65}, "label"),
        ({"label": None}, "label"),
        ({"label": ["bot"]}, "label"),
        ({"permissions": ["withdraw"]}, "permissions"),
        ({"permissions": []}, "permissions"),
        ({"permissions": "read"}, "permissions"),
        ({"permissions": ["trade"]}, "permissions"),  # every key reads
    ],
)
def test_an_invalid_label_or_permissions_is_a_400_and_creates_nothing(api, trader, body, field):
    _, headers = trader

    response = create(api, headers, **body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["details"]["fields"]
    assert ApiKey.objects.count() == 0
    assert not UserEvent.objects.filter(kind=UserEvent.Kind.API_KEY_CREATED).exists()


@pytest.mark.parametrize("label", ["", "  ", "x" * 65])
def test_the_service_refuses_a_blank_or_long_label_itself(label):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        services.api_key_create(user_id=UserFactory().id, label=label)

    assert list(refused.value.message_dict) == ["label"]
    assert ApiKey.objects.count() == 0


def test_a_label_of_64_characters_is_taken_trimmed(api, trader):
    _, headers = trader

    response = create(api, headers, label=f"  {'é' * 64}  ")

    assert response.status_code == 201
    assert ApiKey.objects.get().label == "é" * 64


def test_revoking_removes_the_key_erases_its_secret_and_records_who(api, trader):
    user, headers = trader
    kept = create(api, headers, label="kept").json()
    gone = create(api, headers, label="gone").json()

    response = api.delete(f"{KEYS_URL}/{gone['id']}", HTTP_X_REQUEST_ID="req-revoke-1", **headers)
    again = api.delete(f"{KEYS_URL}/{gone['id']}", **headers)

    assert response.status_code == 204
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    assert [k["id"] for k in api.get(KEYS_URL, **headers).json()] == [kept["id"]]
    row = ApiKey.objects.get(pk=gone["id"])
    assert row.revoked_at is not None and row.secret_ciphertext == ""
    assert ApiKey.objects.get(pk=kept["id"]).revoked_at is None
    event = UserEvent.objects.get(kind=UserEvent.Kind.API_KEY_REVOKED)
    assert (event.user_id, event.actor_id, event.request_id) == (user.id, user.id, "req-revoke-1")
    assert event.data == {"api_key_id": gone["id"], "label": "gone", "prefix": f"{gone['api_key'][:8]}...",
                          "permissions": ["read"]}  # fmt: skip
    created = UserEvent.objects.filter(kind=UserEvent.Kind.API_KEY_CREATED, user=user, actor=user)
    assert created.count() == 2


def test_an_account_sees_and_revokes_only_its_own_keys(api, trader):
    _, headers = trader
    other = UserFactory()
    theirs = services.api_key_create(user_id=other.id, label="theirs").key

    listed = api.get(KEYS_URL, **headers)
    revoke = api.delete(f"{KEYS_URL}/{theirs.id}", **headers)

    assert listed.json() == []
    assert revoke.status_code == 404
    assert revoke.json() == {"code": "not_found", "message": "No such API key.", "details": {}}
    theirs.refresh_from_db()
    assert theirs.revoked_at is None and theirs.secret_ciphertext != ""
    assert not UserEvent.objects.filter(kind=UserEvent.Kind.API_KEY_REVOKED).exists()


@pytest.mark.parametrize("key_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_or_malformed_key_id_is_a_json_404(api, trader, key_id):
    _, headers = trader

    response = api.delete(f"{KEYS_URL}/{key_id}", **headers)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_past_the_limit_creation_is_a_409_and_a_revoked_key_frees_its_place(api, trader, settings):
    settings.API_KEYS_PER_USER = 3
    user, headers = trader
    made = [create(api, headers, label=f"k{i}").json() for i in range(3)]

    refused = create(api, headers, label="one too many")
    api.delete(f"{KEYS_URL}/{made[0]['id']}", **headers)
    after_revoke = create(api, headers, label="in its place")

    assert refused.status_code == 409
    assert refused.json() == {
        "code": "api_key_limit_reached",
        "message": "An account holds at most 3 API keys; revoke one first.",
        "details": {"limit": 3},
    }
    assert after_revoke.status_code == 201
    assert ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() == 3
    assert UserEvent.objects.filter(kind=UserEvent.Kind.API_KEY_CREATED).count() == 4


def test_the_limit_is_per_account(api, trader, settings):
    settings.API_KEYS_PER_USER = 1
    _, headers = trader
    services.api_key_create(user_id=UserFactory().id, label="someone else's")

    assert create(api, headers).status_code == 201


def test_api_keys_need_a_token_of_an_active_account(api, trader):
    user, headers = trader

    anonymous = [api.get(KEYS_URL), api.post(KEYS_URL, {"label": "x"}, format="json")]
    User.objects.filter(pk=user.pk).update(is_active=False)
    closed = create(api, headers)

    assert [r.status_code for r in anonymous] == [401, 401]
    assert closed.status_code == 401 and closed.json()["code"] == "account_inactive"
    assert ApiKey.objects.count() == 0


# --- encryption at rest --------------------------------------------------------------------------------------------


def test_encryption_roundtrip_under_rotated_keys_and_reencryption(settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.API_KEY_ENCRYPTION_KEYS = [old]
    created = services.api_key_create(user_id=UserFactory().id, label="bot")
    revoked = services.api_key_create(user_id=UserFactory().id, label="revoked").key
    services.api_keys_revoke(key_ids=[revoked.id], actor=None)

    settings.API_KEY_ENCRYPTION_KEYS = [new, old]  # the new key first: it encrypts, both decrypt
    before = ApiKey.objects.get(pk=created.key.pk).secret_ciphertext
    readable_during_rotation = encryption.decrypt(before)
    from django.core.management import call_command

    call_command("reencrypt_api_keys")
    settings.API_KEY_ENCRYPTION_KEYS = [new]  # the old key dropped
    after = ApiKey.objects.get(pk=created.key.pk).secret_ciphertext

    assert readable_during_rotation == created.secret
    assert after != before and encryption.decrypt(after) == created.secret
    assert ApiKey.objects.get(pk=revoked.pk).secret_ciphertext == ""  # an erased secret stays erased
    assert "re-encrypted 1 API key secret(s)" in capsys.readouterr().out
    with pytest.raises(encryption.UndecryptableSecret):
        encryption.decrypt(before)


def test_a_secret_under_a_dropped_key_fails_the_reencryption_loudly(settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.API_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    services.api_key_create(user_id=UserFactory().id, label="bot")
    settings.API_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(CommandError, match="put back the key it was encrypted with"):
        call_command("reencrypt_api_keys")


def test_keys_are_read_padded_or_not_separated_by_commas_or_lines():
    padded, bare = Fernet.generate_key().decode(), Fernet.generate_key().decode().rstrip("=")

    assert encryption.parse_keys(f" {padded},{bare}\n") == [padded, f"{bare}="]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no key given"),
        ("too-short", "key 1 is not 32 bytes"),
        (f"{Fernet.generate_key().decode()},not base64 at all!", "key 2 is not 32 bytes"),
        ("é" * 43, "key 1 is not 32 bytes"),
    ],
)
def test_a_malformed_key_is_refused_without_being_printed(text, message):
    with pytest.raises(ValueError, match=message) as refused:
        encryption.parse_keys(text)

    assert not text.strip() or text.split(",")[-1] not in str(refused.value)


def test_the_local_key_comes_from_the_run_folder_and_production_requires_one(settings, monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from common import credentials
    from user_svc import settings as service_settings

    assert encryption.parse_keys(credentials.read("api-keys", "encryption")) == settings.API_KEY_ENCRYPTION_KEYS
    monkeypatch.delenv("API_KEY_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("API_KEY_ENCRYPTION_KEY_FILE", raising=False)
    monkeypatch.setitem(service_settings._shared, "PLATFORM_ENV", "production")
    with pytest.raises(ImproperlyConfigured, match="API_KEY_ENCRYPTION_KEY or API_KEY_ENCRYPTION_KEY_FILE is required"):
        service_settings._api_key_encryption_keys()
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("API_KEY_ENCRYPTION_KEY", key)
    assert service_settings._api_key_encryption_keys() == [key]


# --- the check of a signed request ---------------------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def signer():
    """A live key with trading and its secret."""
    return services.api_key_create(user_id=UserFactory().id, label="bot", permissions=["read", "trade"])


def verify(key: ApiKey, secret: str, payload: str | None = None, *, now: datetime = NOW, **overrides):
    payload = payload if payload is not None else f"symbol=BTCUSDT&side=BUY&timestamp={millis(now)}"
    arguments = {"api_key": key.api_key, "payload": payload, "signature": sign(secret, payload),
                 "timestamp": millis(now), "now": now, **overrides}  # fmt: skip
    return verify_signed_request(**arguments)


def refusal(call) -> tuple[int, str, int]:
    with pytest.raises(SignedRequestRefused) as refused:
        call()
    return refused.value.binance_code, refused.value.message, refused.value.status_code


def test_a_correctly_signed_request_names_the_user_and_the_keys_permissions(signer):
    identity = verify(signer.key, signer.secret)

    assert identity == services.SignedRequestIdentity(
        user_id=signer.key.user_id, api_key_id=signer.key.id, permissions=("read", "trade")
    )
    assert ApiKey.objects.get(pk=signer.key.pk).last_used_at == NOW


def test_binances_documented_example_verifies(settings):
    """The example of Binance's docs (SIGNED endpoint security): that key, that secret, those signatures."""
    api_key = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    key = ApiKey.objects.create(user=UserFactory(), label="docs", api_key=api_key,
                                secret_ciphertext=encryption.encrypt(secret))  # fmt: skip
    sent = datetime.fromtimestamp(1499827319559 / 1000, tz=UTC)
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"

    in_query = verify_signed_request(
        api_key=api_key,
        payload=f"{query}&{body}",
        signature="c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
        timestamp="1499827319559",
        recv_window="5000",
        now=sent,
    )
    mixed = verify_signed_request(
        api_key=api_key,
        payload=(query + body).encode(),  # the query string followed directly by the body
        signature="0FD168B8DDB4876A0358A8D14D0C9F3DA0E9B20C5D52B2A00FCF7D1C602F9A77",  # either case
        timestamp=1499827319559,
        recv_window=5000,
        now=sent + timedelta(seconds=4),
    )

    assert in_query.user_id == mixed.user_id == key.user_id
    assert in_query.permissions == ("read",)


def test_a_wrong_secret_or_a_tampered_payload_is_a_bad_signature(signer):
    payload = f"symbol=BTCUSDT&quantity=1&timestamp={millis(NOW)}"
    expected = (-1022, "Signature for this request is not valid.", 400)

    wrong_secret = refusal(lambda: verify(signer.key, "x" * 64, payload))
    tampered = refusal(
        lambda: verify(
            signer.key,
            signer.secret,
            payload.replace("quantity=1", "quantity=9"),
            signature=sign(signer.secret, payload),
        )
    )
    malformed = [refusal(lambda s=s: verify(signer.key, signer.secret, signature=s)) for s in ("", "zz" * 32, "ab")]

    assert wrong_secret == tampered == expected
    assert malformed == [expected] * 3
    assert ApiKey.objects.get(pk=signer.key.pk).last_used_at is None  # a refused request is no use of the key


def test_a_revoked_key_an_unknown_key_and_a_closed_accounts_key_are_refused(signer):
    expected = (-2015, "Invalid API-key, IP, or permissions for action.", 401)
    other = services.api_key_create(user_id=UserFactory().id, label="closed")
    User.objects.filter(pk=other.key.user_id).update(is_active=False)
    unknown = ApiKey(api_key="A" * 64)

    assert verify(signer.key, signer.secret).user_id == signer.key.user_id
    services.api_key_revoke(user_id=signer.key.user_id, key_id=signer.key.id)
    assert refusal(lambda: verify(signer.key, signer.secret)) == expected  # at once: the check reads the database
    assert refusal(lambda: verify(unknown, signer.secret)) == expected
    assert refusal(lambda: verify(other.key, other.secret)) == expected


@pytest.mark.parametrize("api_key", ["", "short", "A" * 63, "A" * 65, "A" * 63 + "-", "A" * 63 + "é", None])
def test_a_malformed_api_key_is_refused_before_any_lookup(signer, api_key, django_assert_num_queries):
    with django_assert_num_queries(0):
        code = refusal(lambda: verify(signer.key, signer.secret, api_key=api_key))

    assert code == (-2014, "API-key format invalid.", 401)


@pytest.mark.parametrize(
    ("sent", "recv_window", "expected"),
    [
        (NOW - timedelta(milliseconds=5000), None, None),  # the default window: 5000 ms
        (NOW - timedelta(milliseconds=5001), None, (-1021, "Timestamp for this request is outside of the recvWindow.")),
        (NOW - timedelta(seconds=59), 60000, None),
        (NOW - timedelta(seconds=61), 60000, (-1021, "Timestamp for this request is outside of the recvWindow.")),
        (NOW + timedelta(milliseconds=999), None, None),
        (NOW + timedelta(milliseconds=1000), None,
         (-1021, "Timestamp for this request was 1000ms ahead of the server's time.")),
        (NOW, 60001, (-1131, "recvWindow must be less than 60000.")),
        (NOW, "5s", (-1102, "Mandatory parameter 'recvWindow' was not sent, was empty/null, or malformed.")),
    ],
)  # fmt: skip
def test_the_timestamp_must_fall_in_the_receive_window(signer, sent, recv_window, expected):
    call = lambda: verify(signer.key, signer.secret, timestamp=millis(sent), recv_window=recv_window)  # noqa: E731

    if expected is None:
        assert call().user_id == signer.key.user_id
    else:
        assert refusal(call) == (*expected, 400)


@pytest.mark.parametrize("timestamp", [None, "", "-1", "1.5e12", "\uff11\uff12\uff13"])
def test_a_missing_or_malformed_timestamp_is_refused(signer, timestamp):
    code = refusal(lambda: verify(signer.key, signer.secret, timestamp=timestamp))

    assert code == (-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.", 400)


def test_the_timestamp_is_judged_only_after_the_signature(signer):
    stale = NOW - timedelta(hours=1)

    code = refusal(lambda: verify(signer.key, "x" * 64, timestamp=millis(stale)))

    assert code[0] == -1022


def test_last_used_is_written_at_most_once_a_minute_and_a_check_is_one_query(signer):
    with CaptureQueriesContext(connection) as first:
        verify(signer.key, signer.secret)
    with CaptureQueriesContext(connection) as within_the_minute:
        verify(signer.key, signer.secret, now=NOW + timedelta(seconds=59))
    after_it = NOW + timedelta(seconds=60)
    verify(signer.key, signer.secret, now=after_it)

    assert [q["sql"].split()[0] for q in first.captured_queries] == ["SELECT", "UPDATE"]
    assert [q["sql"].split()[0] for q in within_the_minute.captured_queries] == ["SELECT"]
    assert ApiKey.objects.get(pk=signer.key.pk).last_used_at == after_it


def test_last_used_shows_in_the_owners_list(api, trader):
    user, headers = trader
    created = services.api_key_create(user_id=user.id, label="bot")
    now = timezone.now()

    verify(created.key, created.secret, now=now)

    assert api.get(KEYS_URL, **headers).json()[0]["last_used_at"] == now.isoformat().replace("+00:00", "Z")


# --- the admin -----------------------------------------------------------------------------------------------------


def staff(*codenames: str) -> User:
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)


def test_operators_list_keys_by_prefix_never_the_key_or_its_secret(client):
    created = services.api_key_create(user_id=UserFactory(email="owner-keys@example.com").id, label="grid bot")
    client.force_login(staff("view_apikey"))

    listing = client.get("/admin/users/apikey/").content.decode()
    detail = client.get(f"/admin/users/apikey/{created.key.pk}/change/").content.decode()
    found = client.get("/admin/users/apikey/", {"q": created.key.api_key[:10]}).content.decode()

    for page in (listing, detail):
        assert "grid bot" in page and "owner-keys@example.com" in page and f"{created.key.api_key[:8]}..." in page
        assert created.key.api_key not in page
        assert created.secret not in page and created.key.secret_ciphertext not in page
    assert "grid bot" in found


def test_an_operator_with_the_change_permission_revokes_keys_through_the_service(client):
    target = services.api_key_create(user_id=UserFactory().id, label="leaked").key
    bystander = services.api_key_create(user_id=UserFactory().id, label="fine").key
    operator = staff("view_apikey", "change_apikey")
    client.force_login(operator)

    offered = 'value="revoke"' in client.get("/admin/users/apikey/").content.decode()
    response = client.post(
        "/admin/users/apikey/", {"action": "revoke", "_selected_action": [str(target.pk)]}, HTTP_X_REQUEST_ID="req-a1"
    )

    assert offered and response.status_code == 302
    target.refresh_from_db()
    bystander.refresh_from_db()
    assert (target.revoked_at is not None, target.secret_ciphertext) == (True, "")
    assert bystander.revoked_at is None
    event = UserEvent.objects.get(kind=UserEvent.Kind.API_KEY_REVOKED)
    assert (event.user_id, event.actor_id, event.request_id) == (target.user_id, operator.id, "req-a1")


def test_a_view_only_operator_cannot_revoke_and_nobody_edits_keys_by_hand(client):
    key = services.api_key_create(user_id=UserFactory().id, label="bot").key
    client.force_login(staff("view_apikey"))

    page = client.get("/admin/users/apikey/")
    posted = client.post("/admin/users/apikey/", {"action": "revoke", "_selected_action": [str(key.pk)]})
    client.force_login(User.objects.create_superuser("root-keys@example.com", "Operator-Pass-123"))
    edits = [
        client.get("/admin/users/apikey/add/").status_code,
        client.post(f"/admin/users/apikey/{key.pk}/change/", {"label": "renamed"}).status_code,
        client.get(f"/admin/users/apikey/{key.pk}/delete/").status_code,
    ]

    assert page.status_code == 200 and 'value="revoke"' not in page.content.decode()
    assert posted.status_code in (200, 302)
    key.refresh_from_db()
    assert key.revoked_at is None and key.label == "bot"
    assert edits == [403, 403, 403]


def test_the_api_key_admin_is_for_staff_only(client):
    client.force_login(UserFactory())

    response = client.get("/admin/users/apikey/")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
