"""user_svc's key folder (common.jwt_keys): a private key that is never readable by others, a JWK set naming every
trusted key, and rotations that keep the old public keys until their tokens have expired."""

from __future__ import annotations

import json
import os
import stat

import pytest

from common import jwt_keys


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def jwks(directory) -> list[dict]:
    return json.loads((directory / "jwks.json").read_text())["keys"]


def test_the_private_key_is_created_0600_from_the_start_never_chmod_ed_after(tmp_path, monkeypatch):
    chmodded = []
    real_chmod = os.chmod
    monkeypatch.setattr(os, "chmod", lambda path, m, **kw: (chmodded.append(str(path)), real_chmod(path, m, **kw)))
    old_umask = os.umask(0)  # a file created with open()'s default would be 0666
    try:
        private, public = jwt_keys.ensure_key_pair(tmp_path / "jwt")
    finally:
        os.umask(old_umask)

    assert mode(private) == 0o600
    assert not [p for p in chmodded if p.endswith("private.pem") or "private.pem." in p]
    assert mode(public) == 0o644 and mode(tmp_path / "jwt" / "jwks.json") == 0o644
    assert "PRIVATE" not in (tmp_path / "jwt" / "jwks.json").read_text() + public.read_text()


def test_the_jwk_set_names_the_signing_key_by_its_thumbprint(tmp_path):
    jwt_keys.ensure_key_pair(tmp_path)

    (jwk,) = jwks(tmp_path)
    current = jwt_keys.jwk_of(jwt_keys._signing_key(tmp_path).public_key())
    assert jwk == current
    assert set(jwk) == {"kty", "e", "n", "kid", "use", "alg"}  # public members only


def test_a_folder_from_before_the_jwk_set_gets_one_for_its_key(tmp_path):
    jwt_keys.ensure_key_pair(tmp_path)
    before = (tmp_path / "private.pem").read_bytes()
    (tmp_path / "jwks.json").unlink()

    jwt_keys.ensure_key_pair(tmp_path)

    assert (tmp_path / "private.pem").read_bytes() == before  # the key kept, so live tokens stay valid
    assert [k["kid"] for k in jwks(tmp_path)] == [jwt_keys.jwk_of(jwt_keys._signing_key(tmp_path).public_key())["kid"]]


def test_a_rotation_signs_with_a_new_key_and_keeps_the_old_one_until_its_tokens_expire(tmp_path):
    jwt_keys.ensure_key_pair(tmp_path)
    (old,) = jwks(tmp_path)

    new_kid, kept = jwt_keys.rotate(tmp_path, retire_after_s=604_830, now=1_000_000.5)

    assert kept == [old["kid"]]
    assert [k["kid"] for k in jwks(tmp_path)] == [new_kid, old["kid"]]
    assert jwks(tmp_path)[1]["expires_at"] == 1_604_831  # rounded up: never a second early
    assert "expires_at" not in jwks(tmp_path)[0]
    assert jwt_keys.jwk_of(jwt_keys._signing_key(tmp_path).public_key())["kid"] == new_kid
    assert mode(tmp_path / "private.pem") == 0o600


def test_a_second_rotation_keeps_the_first_retired_key_s_end_and_expired_keys_are_dropped(tmp_path):
    jwt_keys.ensure_key_pair(tmp_path)
    (first,) = jwks(tmp_path)
    second, _ = jwt_keys.rotate(tmp_path, retire_after_s=100, now=1000)

    third, kept = jwt_keys.rotate(tmp_path, retire_after_s=100, now=1050)

    assert kept == [second, first["kid"]]
    assert {k["kid"]: k.get("expires_at") for k in jwks(tmp_path)} == {third: None, second: 1150, first["kid"]: 1100}
    jwt_keys.ensure_key_pair(tmp_path, now=1100)  # `infra up` after the first key's last token expired
    assert [k["kid"] for k in jwks(tmp_path)] == [third, second]


def test_a_rotation_with_no_window_distrusts_the_old_keys_at_once(tmp_path):
    jwt_keys.ensure_key_pair(tmp_path)

    new_kid, kept = jwt_keys.rotate(tmp_path, retire_after_s=0)

    assert kept == []
    assert [k["kid"] for k in jwks(tmp_path)] == [new_kid]


def test_a_rotation_publishes_the_new_key_before_it_replaces_the_signing_key(tmp_path, monkeypatch):
    jwt_keys.ensure_key_pair(tmp_path)
    seen = []
    real = jwt_keys.credentials.write_private

    def write_private(target, content):
        seen.append([k["kid"] for k in jwks(tmp_path)])  # what a verifier reads while the key is replaced
        real(target, content)

    monkeypatch.setattr(jwt_keys.credentials, "write_private", write_private)

    new_kid, _ = jwt_keys.rotate(tmp_path, retire_after_s=60)

    assert len(seen) == 1 and new_kid in seen[0]


@pytest.mark.parametrize("content", ["not json", '{"keys": [{"kty": "RSA"}]}', "[]"])
def test_a_file_that_is_not_a_jwk_set_is_refused(tmp_path, content):
    (tmp_path / "jwks.json").write_text(content)

    with pytest.raises(ValueError):
        jwt_keys.read_jwks(tmp_path / "jwks.json")
