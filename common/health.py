"""Liveness (/healthz: the process answers) and readiness (/readyz: its database and Kafka answer)."""

from __future__ import annotations

import threading

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from common.kafka import client_config

KAFKA_TIMEOUT_S = 2.0
_admins: dict[str, AdminClient] = {}
_admins_lock = threading.Lock()


def _admin(bootstrap: str) -> AdminClient:
    # One client per process: librdkafka keeps the connection, so a readiness probe costs one round trip.
    with _admins_lock:
        if bootstrap not in _admins:
            _admins[bootstrap] = AdminClient(client_config(bootstrap, **{"socket.timeout.ms": 2000}))
        return _admins[bootstrap]


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"database unreachable: {exc}".strip()
    return None


def check_kafka() -> str | None:
    bootstrap = settings.KAFKA_BOOTSTRAP_SERVERS
    try:
        metadata = _admin(bootstrap).list_topics(timeout=KAFKA_TIMEOUT_S)
    except KafkaException as exc:
        return f"kafka unreachable at {bootstrap}: {exc}"
    if not metadata.brokers:
        return f"kafka unreachable at {bootstrap}: no broker in metadata"
    return None


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "service": settings.SERVICE_NAME})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database(), "kafka": check_kafka()}
    failing = {name: error for name, error in checks.items() if error}
    body = {
        "status": "ready" if not failing else "unavailable",
        "service": settings.SERVICE_NAME,
        "checks": {name: (error or "ok") for name, error in checks.items()},
    }
    if failing:
        body["failing"] = sorted(failing)
    return JsonResponse(body, status=200 if not failing else 503)
