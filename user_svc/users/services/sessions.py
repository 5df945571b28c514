"""Logins and their sessions: a token family per login, refresh tokens rotated within it, revoked whole.

A refresh token is good once: refreshing revokes it (a unique row per used token) and hands out the next one of
the same family. A used token that comes back means two parties hold copies (a thief and the owner, or a replay),
and nobody can tell which is which: the whole family is revoked, so the copy is worthless to both, and the owner
logs in again. Access tokens already issued live out their short lifetime (every service verifies them alone).
"""

from __future__ import annotations

import uuid

from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone
from rest_framework import status
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from common.exceptions import ApplicationError
from common.outbox.services import publish
from common.topics import Topic
from users.models import TokenFamily, User, UserEvent, normalize_email
from users.services.audit import user_event_record
from users.throttling import password_attempt_begin, password_attempt_succeeded
from users.tokens import TokenPair, UserRefreshToken, token_pair_for


class InvalidCredentials(ApplicationError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "invalid_credentials"


class InvalidToken(ApplicationError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "token_invalid"


def user_login(*, email: str, password: str, ip: str, request_id: str = "") -> tuple[User, TokenPair]:
    """Check credentials (throttled, see users.throttling) and start a session: a new token family and its pair.

    Raises PasswordThrottled (429) while the address or the account must wait, and InvalidCredentials (401) for a
    wrong email or password or an inactive account, without saying which. An unconfirmed address logs in.
    """
    email = normalize_email(email)
    password_attempt_begin(ip=ip, email=email)
    user = authenticate(None, email=email, password=password)
    if user is None:
        raise InvalidCredentials("No active account with these credentials.")
    password_attempt_succeeded(ip=ip, email=email)
    with transaction.atomic():
        now = timezone.now()
        # A targeted UPDATE: a login never overwrites a concurrent profile change.
        User.objects.filter(pk=user.pk).update(last_login=now)
        user.last_login = now
        user_event_record(user, UserEvent.Kind.LOGGED_IN, actor=user, request_id=request_id, data={"ip": ip})
        publish(Topic.USER_EVENTS, "user.logged_in", str(user.id), {"user_id": user.id})
        pair = session_start(user)
    return user, pair


def session_start(user: User) -> TokenPair:
    """A new token family for the user and the first pair of it; inside the caller's transaction."""
    family_id = uuid.uuid4()
    refresh = UserRefreshToken.for_family(user, family_id)
    TokenFamily.objects.create(id=family_id, user=user, expires_at=refresh.expires_at)
    return token_pair_for(refresh)


def token_refresh(*, refresh: str, request_id: str = "") -> TokenPair:
    """Trade a refresh token for the next pair of its family; the token is revoked (rotation).

    The family row is locked first, so refreshes within one session are serialised: of two concurrent refreshes
    with the same token exactly one gets a pair, and the other is a reuse. A reused token revokes its family
    (InvalidToken token_reused); a token of a revoked family is token_revoked; an expired or forged one, or one
    issued before sessions had families, is InvalidToken (401).
    """
    old = _decode_refresh(refresh)
    family_id = old.family_id
    if family_id is None:
        raise InvalidToken("This refresh token predates sessions; log in again.")
    with transaction.atomic():
        user = User.objects.filter(pk=old["sub"], is_active=True).first()
        if user is None:
            raise InvalidToken("The account of this token is inactive.")
        family = TokenFamily.objects.select_for_update().filter(pk=family_id, user=user).first()
        if family is None:
            raise InvalidToken("This refresh token's session is unknown; log in again.")
        if family.revoked_at is not None:
            raise InvalidToken("This refresh token has been revoked.", code="token_revoked")
        _, first_use = BlacklistedToken.objects.get_or_create(token=_outstanding(old, user))
        if first_use:
            new = UserRefreshToken.for_family(user, family.id)
            family.expires_at = new.expires_at
            family.save(update_fields=["expires_at"])
            return token_pair_for(new)
        _family_revoke(family, TokenFamily.Revocation.REUSED)
        user_event_record(
            user,
            UserEvent.Kind.REFRESH_TOKEN_REUSED,
            actor=None,
            request_id=request_id,
            data={"family": str(family.id), "jti": old["jti"]},
        )
    # Raised after the commit: the revocation must stay although the request fails.
    raise InvalidToken(
        "This refresh token was already used; its session has been ended everywhere. Log in again.",
        code="token_reused",
    )


def token_revoke(*, refresh: str) -> None:
    """Log out: end the session (the family) of a refresh token. Ending one already ended changes nothing."""
    token = _decode_refresh(refresh)
    if token.family_id is None:
        return  # a token from before sessions: refreshing it is refused anyway
    with transaction.atomic():
        family = TokenFamily.objects.select_for_update().filter(pk=token.family_id, user_id=token["sub"]).first()
        if family is not None:
            _family_revoke(family, TokenFamily.Revocation.LOGOUT)


def sessions_revoke_all(user: User, reason: str) -> int:
    """End every live session of the account (a password change, a deactivation); inside the caller's transaction."""
    return TokenFamily.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )


def token_purge_expired() -> int:
    """Forget refresh tokens (with their revocations) and sessions past their expiry: none can be used any more.

    Returns how many rows went.
    """
    now = timezone.now()
    tokens, _ = OutstandingToken.objects.filter(expires_at__lt=now).delete()
    families, _ = TokenFamily.objects.filter(expires_at__lt=now).delete()
    return tokens + families


def _family_revoke(family: TokenFamily, reason: str) -> None:
    if family.revoked_at is None:
        family.revoked_at = timezone.now()
        family.revoked_reason = reason
        family.save(update_fields=["revoked_at", "revoked_reason"])


def _decode_refresh(raw: str) -> UserRefreshToken:
    try:
        return UserRefreshToken(raw)
    except ExpiredTokenError:
        raise InvalidToken("This refresh token has expired.", code="token_expired") from None
    except TokenError as exc:
        raise InvalidToken(f"Invalid refresh token: {exc}") from None


def _outstanding(token: UserRefreshToken, user: User) -> OutstandingToken:
    row, _ = OutstandingToken.objects.get_or_create(
        jti=token["jti"],
        defaults={
            "user": user,
            "token": str(token.token),
            "created_at": datetime_from_epoch(token["iat"]) if "iat" in token else None,
            "expires_at": token.expires_at,
        },
    )
    return row
