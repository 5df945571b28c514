"""Reads of user_svc: accounts, their history and their API keys."""

from __future__ import annotations

import uuid

from rest_framework import status

from common.exceptions import ApplicationError
from users.models import ApiKey, User, normalize_email


class AccountInactive(ApplicationError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "account_inactive"


def user_get_active(*, user_id: uuid.UUID) -> User:
    """The caller's own account; a valid token of a closed (or unknown) account is refused with 401."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise AccountInactive("This account does not exist or has been deactivated.")
    return user


def user_get_by_email(*, email: str) -> User | None:
    return User.objects.filter(email=normalize_email(email)).first()


def api_key_list(*, user_id: uuid.UUID) -> list[ApiKey]:
    """The account's live keys, newest first (at most API_KEYS_PER_USER, so no pages). Never their secrets."""
    return list(
        ApiKey.objects.filter(user_id=user_id, revoked_at__isnull=True)
        .defer("secret_ciphertext")
        .order_by("-created_at")
    )
