"""Test data for user_svc: accounts made directly (no events) or registered through the API."""

from __future__ import annotations

import re
import uuid

import factory
from rest_framework.test import APIClient

from users.models import User

PASSWORD = "Paper-Trading-Pass-42"


def unique_email(prefix: str = "trader") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.LazyFunction(unique_email)
    display_name = "Trader"
    password = factory.django.Password(PASSWORD)


def register(
    api: APIClient, *, email: str | None = None, password: str = PASSWORD, display_name: str = "Trader", **extra
):
    return api.post(
        "/api/auth/register",
        {"email": email or unique_email(), "password": password, "display_name": display_name},
        format="json",
        **extra,
    )


def login(api: APIClient, *, email: str, password: str = PASSWORD, **extra):
    return api.post("/api/auth/login", {"email": email, "password": password}, format="json", **extra)


def bearer(access: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {access}"}


def mailed_token(message) -> str:
    """The confirmation token a mail carries (on a line of its own)."""
    match = re.search(r"^(\.?[\w-]+:[\w-]+:[\w-]+)$", message.body, re.MULTILINE)
    assert match, message.body
    return match.group(1)


def confirm(api: APIClient, token: str):
    return api.post("/api/auth/confirm-email", {"token": token}, format="json")


def refresh(api: APIClient, token: str):
    return api.post("/api/auth/refresh", {"refresh": token}, format="json")
