"""Every write of user_svc: accounts, logins and tokens. Each function owns its transaction and its events."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from common.exceptions import ApplicationError
from common.outbox.services import publish
from common.topics import Topic
from users.models import User, UserEvent, normalize_email
from users.throttling import login_attempt_begin, login_attempt_succeeded
from users.tokens import TokenPair, UserRefreshToken, token_pair_for

EMAIL_TAKEN = "An account with this email already exists."
UPDATABLE_FIELDS = ("email", "display_name")


class InvalidCredentials(ApplicationError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "invalid_credentials"


class InvalidToken(ApplicationError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "token_invalid"


# --- accounts -------------------------------------------------------------------------------------


def user_register(
    *,
    email: str,
    password: str,
    display_name: str = "",
    actor: User | None = None,
    request_id: str = "",
) -> User:
    """Create an account and publish user.registered; `actor` None means the person registered themself.

    Raises ValidationError (field -> messages) for an invalid or taken email or a weak password.
    """
    user = User(email=normalize_email(email), display_name=display_name.strip())
    user.full_clean(exclude=["password"], validate_unique=False, validate_constraints=False)
    _validate_password(password, user, field="password")
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save(force_insert=True)
            _record(user, UserEvent.Kind.REGISTERED, actor=actor or user, request_id=request_id)
            publish(
                Topic.USER_EVENTS,
                "user.registered",
                str(user.id),
                {"user_id": user.id, "email": user.email, "display_name": user.display_name},
            )
    except IntegrityError as exc:
        # The database decides uniqueness (case-insensitively), so two racing sign-ups cannot both win.
        _raise_if_email_taken(exc)
        raise
    return user


def user_update(
    *,
    user_id: uuid.UUID,
    actor: User | None,
    request_id: str = "",
    email: str | None = None,
    display_name: str | None = None,
) -> User:
    """Change profile fields; publishes user.updated naming the fields that really changed (if any)."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        changed: list[str] = []
        if email is not None and normalize_email(email) != user.email:
            user.email = normalize_email(email)
            changed.append("email")
        if display_name is not None and display_name.strip() != user.display_name:
            user.display_name = display_name.strip()
            changed.append("display_name")
        if not changed:
            return user
        user.full_clean(exclude=["password"], validate_unique=False, validate_constraints=False)
        try:
            with transaction.atomic():
                user.save(update_fields=[*changed, "updated_at"])
        except IntegrityError as exc:
            _raise_if_email_taken(exc)
            raise
        _record(user, UserEvent.Kind.UPDATED, actor=actor, request_id=request_id, data={"changed": changed})
        publish(Topic.USER_EVENTS, "user.updated", str(user.id), {"user_id": user.id, "changed": changed})
    return user


def user_change_password(
    *, user_id: uuid.UUID, current_password: str, new_password: str, request_id: str = ""
) -> TokenPair:
    """Set a new password, revoke every refresh token of the account and return a fresh pair for this client."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        if not user.check_password(current_password):
            raise ValidationError({"current_password": ["Your current password is incorrect."]})
        _validate_password(new_password, user, field="new_password")
        user.set_password(new_password)
        user.save(update_fields=["password", "updated_at"])
        _record(user, UserEvent.Kind.PASSWORD_CHANGED, actor=user, request_id=request_id)
        # Consumers learn that the account changed, never anything about the secret itself.
        publish(Topic.USER_EVENTS, "user.updated", str(user.id), {"user_id": user.id, "changed": ["password"]})
        _revoke_refresh_tokens(user)
        return token_pair_for(UserRefreshToken.for_user(user))


def user_deactivate(*, user_id: uuid.UUID, actor: User | None, request_id: str = "") -> User:
    """Close an account: no more logins or refreshes; publishes user.deactivated once (idempotent)."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        if not user.is_active:
            return user
        user.is_active = False
        user.save(update_fields=["is_active", "updated_at"])
        _record(user, UserEvent.Kind.DEACTIVATED, actor=actor, request_id=request_id)
        publish(Topic.USER_EVENTS, "user.deactivated", str(user.id), {"user_id": user.id})
        _revoke_refresh_tokens(user)
    return user


# --- logins and tokens ----------------------------------------------------------------------------


def user_login(*, email: str, password: str, ip: str, request_id: str = "") -> tuple[User, TokenPair]:
    """Check credentials (throttled per address and per account) and issue a token pair.

    Raises LoginThrottled (429) past the limits and InvalidCredentials (401) for a wrong email or
    password or an inactive account, without saying which.
    """
    email = normalize_email(email)
    login_attempt_begin(ip=ip, email=email)
    user = authenticate(None, email=email, password=password)
    if user is None:
        raise InvalidCredentials("No active account with these credentials.")
    login_attempt_succeeded(ip=ip, email=email)
    with transaction.atomic():
        now = timezone.now()
        # A targeted UPDATE: a login never overwrites a concurrent profile change.
        User.objects.filter(pk=user.pk).update(last_login=now)
        user.last_login = now
        _record(user, UserEvent.Kind.LOGGED_IN, actor=user, request_id=request_id, data={"ip": ip})
        publish(Topic.USER_EVENTS, "user.logged_in", str(user.id), {"user_id": user.id})
        pair = token_pair_for(UserRefreshToken.for_user(user))
    return user, pair


def token_refresh(*, refresh: str) -> TokenPair:
    """Trade a refresh token for a new pair; the old refresh token is revoked (rotation).

    Revoking is an insert that the database allows once per token, so of two concurrent refreshes with
    the same token exactly one succeeds; a revoked, expired or forged token is InvalidToken (401).
    """
    old = _decode_refresh(refresh)
    with transaction.atomic():
        user = User.objects.filter(pk=old["sub"], is_active=True).first()
        if user is None:
            raise InvalidToken("The account of this token is inactive.")
        _, created = BlacklistedToken.objects.get_or_create(token=_outstanding(old, user))
        if not created:
            raise InvalidToken("This refresh token has been revoked.", code="token_revoked")
        return token_pair_for(UserRefreshToken.for_user(user))


def token_revoke(*, refresh: str) -> None:
    """Log out: revoke a refresh token. Revoking one already revoked changes nothing (idempotent)."""
    token = _decode_refresh(refresh)
    with transaction.atomic():
        user = User.objects.filter(pk=token["sub"]).first()
        BlacklistedToken.objects.get_or_create(token=_outstanding(token, user))


def token_purge_expired() -> int:
    """Forget refresh tokens past their expiry (and their revocations): they can no longer be used anyway."""
    deleted, _ = OutstandingToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


# --- helpers --------------------------------------------------------------------------------------


def _record(
    user: User, kind: str, *, actor: User | None, request_id: str, data: dict[str, Any] | None = None
) -> UserEvent:
    return UserEvent.objects.create(user=user, kind=kind, actor=actor, request_id=request_id[:128], data=data or {})


def _validate_password(password: str, user: User, *, field: str) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from None


def _raise_if_email_taken(exc: IntegrityError) -> None:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
    if "email" in constraint:
        raise ValidationError({"email": [EMAIL_TAKEN]}) from None


def _decode_refresh(raw: str) -> UserRefreshToken:
    try:
        return UserRefreshToken(raw)
    except ExpiredTokenError:
        raise InvalidToken("This refresh token has expired.", code="token_expired") from None
    except TokenError as exc:
        raise InvalidToken(f"Invalid refresh token: {exc}") from None


def _outstanding(token: UserRefreshToken, user: User | None) -> OutstandingToken:
    row, _ = OutstandingToken.objects.get_or_create(
        jti=token["jti"],
        defaults={
            "user": user,
            "token": str(token.token),
            "created_at": datetime_from_epoch(token["iat"]) if "iat" in token else None,
            "expires_at": datetime_from_epoch(token["exp"]),
        },
    )
    return row


def _revoke_refresh_tokens(user: User) -> int:
    live = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True)
    revoked = BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in live], ignore_conflicts=True)
    return len(revoked)
