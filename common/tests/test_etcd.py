"""Where an etcd client finds its user and password: the environment first, the local secret in local mode only."""

from __future__ import annotations

import pytest

from common import credentials, etcd


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("ETCD_USER", "ETCD_PASSWORD", "ETCD_PASSWORD_FILE", "ETCD_URL", "PLATFORM_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLATFORM_RUN_DIR", str(tmp_path / "run"))  # a secrets folder of this test's own


def test_a_process_signs_in_as_the_user_it_names_with_that_users_local_secret():
    made = credentials.ensure("etcd", etcd.WATCHER)

    client = etcd.client(etcd.WATCHER)

    assert (client.user, client.password()) == (etcd.WATCHER, made)
    assert (client.host, client.port) == ("127.0.0.1", 52379)


def test_the_environment_gives_the_user_the_password_and_the_url(monkeypatch):
    monkeypatch.setenv("ETCD_USER", "registry-writer")
    monkeypatch.setenv("ETCD_PASSWORD", "from-the-environment")
    monkeypatch.setenv("ETCD_URL", "http://etcd:2379")

    client = etcd.client(etcd.SERVICES)

    assert (client.user, client.password(), client.host, client.port) == (
        "registry-writer",
        "from-the-environment",
        "etcd",
        2379,
    )
    assert not credentials.path("etcd", "registry-writer").exists()


def test_a_password_file_is_read_and_a_missing_one_is_named(monkeypatch, tmp_path):
    secret = tmp_path / "etcd-password"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("ETCD_PASSWORD_FILE", str(secret))

    assert etcd.password(etcd.SERVICES) == "from-a-file"
    monkeypatch.setenv("ETCD_PASSWORD_FILE", str(tmp_path / "nowhere"))
    with pytest.raises(etcd.EtcdAuthError, match=r"ETCD_PASSWORD_FILE points at .*nowhere, which does not exist"):
        etcd.password(etcd.SERVICES)


def test_production_never_falls_back_to_a_local_secret(monkeypatch):
    credentials.ensure("etcd", etcd.SERVICES)
    monkeypatch.setenv("PLATFORM_ENV", "production")

    with pytest.raises(etcd.EtcdAuthError, match="ETCD_PASSWORD or ETCD_PASSWORD_FILE is required"):
        etcd.client(etcd.SERVICES).password()


def test_local_mode_without_the_secret_says_to_run_infra_up():
    with pytest.raises(credentials.MissingSecret, match="infra up"):
        etcd.client(etcd.SERVICES).password()


def test_etcd_errors_are_read_from_the_gateways_json():
    refused = etcd.Etcd3Exception('{"error":"etcdserver: permission denied","code":7}', "Forbidden")

    assert etcd.etcd_error(refused) == "etcdserver: permission denied"
    assert etcd.etcd_error(etcd.Etcd3Exception("not json", "Bad Gateway")) == "not json"
