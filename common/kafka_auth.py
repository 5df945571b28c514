"""Who a Kafka client is: the security settings every client of the platform adds to its configuration.

The broker accepts no anonymous connection. Each service is a principal of its own (its name), which the ACLs
(common/kafka.py, from the topic table in common/topics.py) let produce only the topics it owns and read only
the topics it consumes. The tools (infra/, the tests' helpers, the benchmarks' feed) act as the admin.

The usual variables configure a real cluster, TLS included; unset, the local broker's defaults apply:

    KAFKA_SECURITY_PROTOCOL         SASL_PLAINTEXT (local), or PLAINTEXT, SSL, SASL_SSL
    KAFKA_SASL_MECHANISM            SCRAM-SHA-512 (local), or SCRAM-SHA-256, PLAIN
    KAFKA_SASL_USERNAME             the service's name (local)
    KAFKA_SASL_PASSWORD             or KAFKA_SASL_PASSWORD_FILE; local: .run/secrets/kafka/<username>
    KAFKA_SSL_CA_LOCATION           the CA bundle that signed the brokers' certificates (SSL, SASL_SSL)
    KAFKA_SSL_CERTIFICATE_LOCATION  and KAFKA_SSL_KEY_LOCATION: a client certificate (mutual TLS)

The admin (topics, users, ACLs: `python -m common.kafka`) reads KAFKA_ADMIN_PASSWORD, locally
.run/secrets/kafka/admin; compose.yaml's kafka-init gives it the one its broker was started with.

Standard library only: the settings read it before any Kafka client exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from common import credentials

ADMIN = "admin"
_TLS = {
    "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
    "KAFKA_SSL_CERTIFICATE_LOCATION": "ssl.certificate.location",
    "KAFKA_SSL_KEY_LOCATION": "ssl.key.location",
}


class KafkaAuthError(ValueError):
    """The security variables do not make a usable configuration; the message says which to set."""


def security_config(principal: str, *, environ: dict[str, str] | None = None) -> dict[str, str]:
    """librdkafka's security settings for a client acting as `principal` (KAFKA_SASL_USERNAME overrides it)."""
    env = os.environ if environ is None else environ
    protocol = env.get("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT").upper()
    if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise KafkaAuthError(f"KAFKA_SECURITY_PROTOCOL={protocol!r}: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    config = {"security.protocol": protocol}
    if protocol.startswith("SASL"):
        username = env.get("KAFKA_SASL_USERNAME") or principal
        config.update(
            {
                "sasl.mechanism": env.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
                "sasl.username": username,
                "sasl.password": _password(username, env),
            }
        )
    config.update({option: env[variable] for variable, option in _TLS.items() if env.get(variable)})
    return config


def admin_config() -> dict[str, str]:
    """The admin's settings on the local broker (infra/, tests, benchmarks): never another principal's.

    PLAIN, not SCRAM: the admin is the broker's own user, defined in its configuration, and it creates the SCRAM
    users (which live in the metadata log) in the first place. SASL_PLAINTEXT stays on loopback locally."""
    local = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_SASL_")}
    if password := os.environ.get("KAFKA_ADMIN_PASSWORD"):
        local["KAFKA_SASL_PASSWORD"] = password
    return security_config(ADMIN, environ={**local, "KAFKA_SASL_MECHANISM": "PLAIN"})


def principal_password(principal: str) -> str:
    """The password `python -m common.kafka` gives a principal's SCRAM credential: KAFKA_PASSWORD_<PRINCIPAL>
    when set (compose.yaml passes each service's, the one that service's processes get as KAFKA_SASL_PASSWORD),
    else the local secret .run/secrets/kafka/<principal>, made on first use."""
    return os.environ.get(f"KAFKA_PASSWORD_{principal.upper()}") or credentials.ensure("kafka", principal)


def _password(username: str, env: dict[str, str]) -> str:
    if password := env.get("KAFKA_SASL_PASSWORD"):
        return password
    if path := env.get("KAFKA_SASL_PASSWORD_FILE"):
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise KafkaAuthError(f"KAFKA_SASL_PASSWORD_FILE={path}: {exc.strerror}") from None
    try:
        return credentials.read("kafka", username)
    except credentials.MissingSecret as exc:
        raise KafkaAuthError(f"KAFKA_SASL_PASSWORD is not set and {exc}") from None
