"""Key rotation (`manage.py rotate_jwt_key`): a new signing key at once, the old one published and trusted until the
last token it signed has expired, then dropped; running processes follow the key files without a restart."""

from __future__ import annotations

import io
import os
import stat
import time
from datetime import timedelta

import jwt
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from common import auth, jwt_keys
from users import keys
from users.tests.factories import UserFactory, bearer, login, refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_dir(tmp_path, settings):
    """user_svc's key folder, as `infra up` makes it, that this process signs and verifies with."""
    jwt_keys.ensure_key_pair(tmp_path)
    settings.JWT_PRIVATE_KEY_FILE = str(tmp_path / "private.pem")
    settings.JWT_JWKS_FILE = str(tmp_path / "jwks.json")
    auth._verified.clear()
    return tmp_path


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_jwt_key", *args, stdout=out)
    return out.getvalue()


def test_after_a_rotation_old_tokens_still_work_and_new_ones_carry_the_new_key(api, key_dir):
    user = UserFactory()
    old = login(api, email=user.email).json()

    out = rotate()

    new_kid = keys.key_id()
    assert new_kid != kid_of(old["access"])
    assert f"signing with key {new_kid}" in out
    assert api.get("/api/users/me", **bearer(old["access"])).status_code == 200  # the old access token
    renewed = refresh(api, old["refresh"])  # the old refresh token, verified by user_svc itself
    assert renewed.status_code == 200, renewed.json()
    assert kid_of(renewed.json()["access"]) == kid_of(renewed.json()["refresh"]) == new_kid
    assert auth.verify_access_token(renewed.json()["access"])["sub"] == str(user.id)
    fresh = login(api, email=user.email).json()
    assert kid_of(fresh["access"]) == new_kid


def test_the_jwks_serves_every_live_key_and_the_old_one_until_its_last_token_expires(api, key_dir, settings):
    old_kid = keys.key_id()
    before = time.time()

    rotate()

    served = api.get("/.well-known/jwks.json").json()["keys"]
    assert [k["kid"] for k in served] == [keys.key_id(), old_kid]
    assert all(set(k) == {"kty", "e", "n", "kid", "use", "alg"} for k in served)  # public members only
    (stored,) = [k for k in jwt_keys.read_jwks(key_dir / "jwks.json") if k["kid"] == old_kid]
    longest = max(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"], settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"])
    window = longest.total_seconds() + settings.JWT_LEEWAY_S + settings.JWT_ROTATION_MARGIN_S
    assert before + window <= stored["expires_at"] <= time.time() + window + 1
    assert settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"] == timedelta(days=7)


def test_once_the_window_is_over_the_old_key_is_neither_served_nor_trusted(api, key_dir):
    user = UserFactory()
    old = login(api, email=user.email).json()
    # A rotation whose window ended a second ago: as if its tokens' lifetimes had passed.
    jwt_keys.rotate(key_dir, retire_after_s=10, now=time.time() - 11)

    served = [k["kid"] for k in api.get("/.well-known/jwks.json").json()["keys"]]
    assert served == [keys.key_id()]
    assert kid_of(old["access"]) not in served
    assert api.get("/api/users/me", **bearer(old["access"])).status_code == 401
    assert refresh(api, old["refresh"]).status_code == 401
    rotate()  # the next rotation drops it from the file
    assert kid_of(old["access"]) not in {k["kid"] for k in jwt_keys.read_jwks(key_dir / "jwks.json")}


def test_drop_old_distrusts_the_previous_keys_at_once(api, key_dir):
    user = UserFactory()
    old = login(api, email=user.email).json()

    assert "no previous key is trusted" in rotate("--drop-old")

    assert api.get("/api/users/me", **bearer(old["access"])).status_code == 401
    assert refresh(api, old["refresh"]).status_code == 401
    assert login(api, email=user.email).status_code == 200


def test_the_rotated_private_key_is_readable_by_its_owner_only(key_dir):
    rotate()

    assert stat.S_IMODE(os.stat(key_dir / "private.pem").st_mode) == 0o600
    assert keys.public_jwk()["kid"] == jwt_keys.read_jwks(key_dir / "jwks.json")[0]["kid"]


def test_rotation_refuses_when_the_verifiers_would_not_see_the_new_key(key_dir, settings, tmp_path_factory):
    settings.JWT_JWKS_FILE = str(tmp_path_factory.mktemp("elsewhere") / "jwks.json")
    before = (key_dir / "private.pem").read_bytes()

    with pytest.raises(CommandError, match="the verifiers must read"):
        rotate()
    settings.JWT_PRIVATE_KEY_FILE = ""
    with pytest.raises(CommandError, match="comes from JWT_PRIVATE_KEY"):
        rotate()

    assert (key_dir / "private.pem").read_bytes() == before
