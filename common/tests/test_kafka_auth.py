"""Who a Kafka client is: the variables that make its security settings (common/kafka_auth.py)."""

from __future__ import annotations

import pytest

from common import credentials, kafka_auth


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORM_RUN_DIR", str(tmp_path))
    for name in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KAFKA_ADMIN_PASSWORD", raising=False)
    return tmp_path


def test_a_service_logs_in_as_itself_with_the_password_it_is_given(run_dir):
    config = kafka_auth.security_config("order_svc", environ={"KAFKA_SASL_PASSWORD": "given"})

    assert config == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "order_svc",
        "sasl.password": "given",
    }


def test_without_a_password_or_a_local_secret_the_error_says_what_to_run(run_dir):
    with pytest.raises(kafka_auth.KafkaAuthError, match="infra up"):
        kafka_auth.security_config("order_svc", environ={})


def test_the_admin_takes_kafka_admin_password_over_the_local_secret_and_never_a_services(run_dir, monkeypatch):
    credentials.write_private(credentials.path("kafka", "admin"), "local-admin\n")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "a-services-password")

    assert kafka_auth.admin_config()["sasl.password"] == "local-admin"
    monkeypatch.setenv("KAFKA_ADMIN_PASSWORD", "from-compose")
    assert kafka_auth.admin_config() == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "admin",
        "sasl.password": "from-compose",
    }


def test_a_principals_password_comes_from_its_variable_else_from_a_local_secret_made_once(run_dir, monkeypatch):
    monkeypatch.setenv("KAFKA_PASSWORD_ORDER_SVC", "from-compose")

    assert kafka_auth.principal_password("order_svc") == "from-compose"
    assert not credentials.path("kafka", "order_svc").exists()
    made = kafka_auth.principal_password("user_svc")
    assert len(made) >= 32
    assert kafka_auth.principal_password("user_svc") == made == credentials.read("kafka", "user_svc")
