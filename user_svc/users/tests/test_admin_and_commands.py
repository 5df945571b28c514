"""Operators' tools: the admin (search, deactivate through the service, read-only history) and ensure_demo_user."""

from __future__ import annotations

import io
import json
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from common.outbox.models import OutboxMessage
from users.models import User, UserEvent
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    staff = User.objects.create_superuser("operator-test@example.com", "Operator-Pass-123")
    client.force_login(staff)
    return staff


def test_admin_finds_users_by_email(client, operator):
    wanted = UserFactory(email="findme-admin@example.com")
    UserFactory(email="someone-else@example.com")

    page = client.get("/admin/users/user/", {"q": "FINDME"})

    assert page.status_code == 200
    assert wanted.email in page.content.decode()
    assert "someone-else@example.com" not in page.content.decode()


def test_admin_deactivate_action_goes_through_the_service_and_publishes(client, operator):
    target = UserFactory()
    bystander = UserFactory()

    response = client.post(
        "/admin/users/user/",
        {"action": "deactivate", "_selected_action": [str(target.pk)]},
        HTTP_X_REQUEST_ID="req-admin-1",
    )

    assert response.status_code == 302
    target.refresh_from_db()
    bystander.refresh_from_db()
    assert (target.is_active, bystander.is_active) == (False, True)
    event = UserEvent.objects.get(user=target)
    assert (event.kind, event.actor_id, event.request_id) == ("deactivated", operator.id, "req-admin-1")
    rows = OutboxMessage.objects.filter(event_type="user.deactivated")
    assert [json.loads(bytes(r.payload))["data"] for r in rows] == [{"user_id": str(target.id)}]


def test_deactivating_twice_publishes_once(client, operator):
    target = UserFactory()

    for _ in range(2):
        client.post("/admin/users/user/", {"action": "deactivate", "_selected_action": [str(target.pk)]})

    assert OutboxMessage.objects.filter(event_type="user.deactivated").count() == 1
    assert UserEvent.objects.filter(user=target, kind="deactivated").count() == 1


def test_user_events_and_accounts_cannot_be_added_edited_or_deleted_in_the_admin(client, operator):
    user = UserFactory()
    event = UserEvent.objects.create(user=user, kind="registered")

    assert client.get("/admin/users/userevent/add/").status_code == 403
    assert client.get(f"/admin/users/userevent/{event.pk}/delete/").status_code == 403
    assert client.post(f"/admin/users/userevent/{event.pk}/change/", {"kind": "updated"}).status_code == 403
    assert client.get("/admin/users/user/add/").status_code == 403
    assert client.get(f"/admin/users/user/{user.pk}/delete/").status_code == 403
    assert client.get("/admin/users/userevent/").status_code == 200


def test_ensure_demo_user_registers_once_and_publishes_once_confirmed_and_without_mail(capsys, sent, monkeypatch):
    monkeypatch.setenv("DEMO_USER_PASSWORD", "Demo-Trader-Pass-1")
    with sent() as mails:
        call_command("ensure_demo_user", "--email", "Demo@Example.com")
        call_command("ensure_demo_user", "--email", "demo@example.com")

    user = User.objects.get()
    assert (user.email, user.display_name) == ("demo@example.com", "Demo trader")
    assert user.email_confirmed_at is not None  # the operator vouches for the address
    assert mails == []
    assert user.check_password("Demo-Trader-Pass-1")
    assert OutboxMessage.objects.filter(event_type="user.registered").count() == 1
    out = capsys.readouterr().out
    assert "registered demo user demo@example.com" in out and "exists; left unchanged" in out


def test_ensure_demo_user_refuses_a_weak_password_and_writes_nothing(monkeypatch):
    monkeypatch.setenv("DEMO_USER_PASSWORD", "password")
    with pytest.raises(CommandError, match="too common"):
        call_command("ensure_demo_user", "--email", "demo@example.com")

    assert User.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_ensure_demo_user_reads_the_password_from_stdin(monkeypatch):
    monkeypatch.delenv("DEMO_USER_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Demo-From-Stdin-7\n"))

    call_command("ensure_demo_user", "--email", "demo@example.com", "--password-stdin", stdout=io.StringIO())

    assert User.objects.get().check_password("Demo-From-Stdin-7")


def test_ensure_demo_user_refuses_a_password_on_the_command_line_and_writes_nothing(monkeypatch):
    monkeypatch.setenv("DEMO_USER_PASSWORD", "Demo-Trader-Pass-1")

    with pytest.raises(CommandError, match="a password on a command line shows in the process list"):
        call_command("ensure_demo_user", "--email", "demo@example.com", "--password", "Demo-On-Argv-8")
    monkeypatch.delenv("DEMO_USER_PASSWORD")
    with pytest.raises(CommandError, match="no password in the environment variable DEMO_USER_PASSWORD"):
        call_command("ensure_demo_user", "--email", "demo@example.com")

    assert User.objects.count() == 0
    assert OutboxMessage.objects.count() == 0
