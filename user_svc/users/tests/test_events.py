"""Events through the outbox to the real `user-events` topic, and concurrent token use, on a committed database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from common.events import Envelope
from common.outbox import relay
from common.outbox.models import OutboxMessage
from common.testing.kafka import end_offsets, read_since
from common.topics import Topic
from users import services
from users.mail import CONFIRMATION_SUBJECT
from users.models import TokenFamily, User, UserEvent
from users.tests.factories import UserFactory, register, unique_email

pytestmark = pytest.mark.django_db(transaction=True)


def test_registering_publishes_exactly_one_user_registered_that_arrives_on_user_events(
    api, kafka_bootstrap, mailoutbox
):
    email = unique_email()
    start = end_offsets(kafka_bootstrap, Topic.USER_EVENTS)
    began = timezone.now()

    response = register(api, email=email, display_name="Ada", HTTP_X_REQUEST_ID="req-register-1")
    relayed = relay.relay_pending()
    user_id = str(User.objects.get(email=email).id)
    ours = [m for m in read_since(kafka_bootstrap, Topic.USER_EVENTS, start) if m.key() == user_id.encode()]

    assert response.status_code == 202
    # Queued at the commit (the test's tasks run where they are queued): the confirmation mail went out.
    assert [(m.to, m.subject) for m in mailoutbox] == [([email], CONFIRMATION_SUBJECT)]
    assert (relayed.sent, relayed.failed) == (1, 0)
    assert len(ours) == 1
    envelope = Envelope.from_json(ours[0].value())  # validates the envelope and the data against the contract
    assert (envelope.type, envelope.source, envelope.subject, envelope.specversion) == (
        "user.registered",
        "user_svc",
        user_id,
        "1.0",
    )
    assert envelope.data == {"user_id": user_id, "email": email, "display_name": "Ada"}
    assert envelope.dataschema == "urn:platform:event:user.registered:v1"
    assert envelope.correlationid == "req-register-1"
    assert ("ce_type", b"user.registered") in (ours[0].headers() or [])
    row = OutboxMessage.objects.get()
    assert (row.event_id, row.published_at is not None) == (envelope.id, True)
    event = UserEvent.objects.get()
    assert (str(event.user_id), event.kind, str(event.actor_id), event.request_id) == (
        user_id,
        "registered",
        user_id,
        "req-register-1",
    )
    assert began <= event.occurred_at <= timezone.now() + timedelta(seconds=1)


def test_a_registration_that_fails_validation_publishes_nothing(api):
    response = register(api, password="password")

    assert response.status_code == 400
    assert User.objects.count() == 0
    assert UserEvent.objects.count() == 0
    assert OutboxMessage.objects.count() == 0
    assert relay.relay_pending().sent == 0


def test_two_concurrent_refreshes_with_one_token_give_one_pair_and_then_end_the_session():
    user = UserFactory()
    _, pair = services.user_login(email=user.email, password="Paper-Trading-Pass-42", ip="192.0.2.1")
    barrier = threading.Barrier(2)
    issued: list[str] = []

    def attempt(_: int) -> str:
        try:
            barrier.wait(timeout=10)
            issued.append(services.token_refresh(refresh=pair.refresh).refresh)
            return "refreshed"
        except services.InvalidToken as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(attempt, range(2)))

    # The loser presented a used token, which is what a thief's replay looks like: the session ends for both.
    assert outcomes == ["refreshed", "token_reused"]
    with pytest.raises(services.InvalidToken) as refused:
        services.token_refresh(refresh=issued[0])
    assert refused.value.code == "token_revoked"
    assert TokenFamily.objects.get(user=user).revoked_reason == "reused"
