"""Reads of user_svc: accounts and their history."""

from __future__ import annotations

import uuid

from rest_framework import status

from common.exceptions import ApplicationError
from users.models import User, normalize_email


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
