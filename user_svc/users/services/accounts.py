"""Accounts: registration with confirmation by mail, profile and password changes, deactivation."""

from __future__ import annotations

import uuid

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.exceptions import ApplicationError
from common.outbox.services import publish
from common.topics import Topic
from users import tasks
from users.confirmation import ConfirmationExpired, ConfirmationInvalid, confirmation_read
from users.models import TokenFamily, User, UserEvent, normalize_email
from users.services.audit import user_event_record
from users.services.sessions import session_start, sessions_revoke_all
from users.throttling import account_mail_allowed, password_attempt_begin, password_attempt_succeeded
from users.tokens import TokenPair

EMAIL_TAKEN = "An account with this email already exists."
CURRENT_PASSWORD_WRONG = "Your current password is incorrect."  # noqa: S105 - a message, not a secret
CURRENT_PASSWORD_REQUIRED = "Your current password is required to change the email."  # noqa: S105


class ConfirmationRefused(ApplicationError):
    code = "confirmation_invalid"


def user_register(
    *,
    email: str,
    password: str,
    display_name: str = "",
    actor: User | None = None,
    request_id: str = "",
    email_confirmed: bool = False,
) -> User | None:
    """Ask for an account; what the caller sees must not tell whether the address already has one.

    Both ways take the same steps: the input is validated, the password hashed (the slow part) and the INSERT
    tried. A free address gets its account (user.registered) and a confirmation mail; a taken one changes nothing
    but its history, and its owner gets a mail saying someone tried. The database decides which (its
    case-insensitive unique email), so two racing sign-ups cannot both win. Returns the new account, or None when
    the address was taken. `actor` None means the person registered themself; `email_confirmed` is for an
    operator's command vouching for the address: it is confirmed and no mail is sent either way.

    Raises ValidationError (field -> messages) for an invalid email or display name or a weak password, which
    depends only on the input, never on the accounts there are.
    """
    user = User(email=normalize_email(email), display_name=display_name.strip())
    user.full_clean(exclude=["password"], validate_unique=False, validate_constraints=False)
    _validate_password(password, user, field="password")
    user.set_password(password)
    if email_confirmed:
        user.email_confirmed_at = timezone.now()
    send_mail = not email_confirmed and account_mail_allowed(email=user.email)
    try:
        with transaction.atomic():
            user.save(force_insert=True)
            user_event_record(user, UserEvent.Kind.REGISTERED, actor=actor or user, request_id=request_id)
            publish(
                Topic.USER_EVENTS,
                "user.registered",
                str(user.id),
                {"user_id": user.id, "email": user.email, "display_name": user.display_name},
            )
            if send_mail:
                tasks.send_email_confirmation.delay_on_commit(str(user.id))
        return user
    except IntegrityError as exc:
        if not _email_taken(exc):
            raise
    with transaction.atomic():
        owner = User.objects.filter(email=user.email).first()
        if owner is not None:  # None only if the account went between the INSERT and here (never deleted)
            user_event_record(owner, UserEvent.Kind.REGISTRATION_ATTEMPTED, actor=None, request_id=request_id)
            if send_mail:
                tasks.send_registration_attempt.delay_on_commit(str(owner.id))
    return None


def user_confirm_email(*, token: str, request_id: str = "") -> User:
    """Confirm the address a mailed token names; confirming twice changes nothing.

    Raises ConfirmationRefused (400) for a forged or expired token, or one for an address the account no longer
    has (or a closed account). Nothing is published: consumers know accounts by id, not by the state of an address.
    """
    try:
        confirmation = confirmation_read(token)
    except ConfirmationExpired:
        raise ConfirmationRefused("This confirmation token has expired.", code="confirmation_expired") from None
    except ConfirmationInvalid:
        raise ConfirmationRefused("This confirmation token is not valid.") from None
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=confirmation.user_id, is_active=True).first()
        if user is None or user.email != confirmation.email:
            raise ConfirmationRefused("This confirmation token is not valid for the account's address.")
        if user.email_confirmed_at is None:
            user.email_confirmed_at = timezone.now()
            user.save(update_fields=["email_confirmed_at", "updated_at"])
            user_event_record(user, UserEvent.Kind.EMAIL_CONFIRMED, actor=user, request_id=request_id)
    return user


def user_update(
    *,
    user_id: uuid.UUID,
    actor: User | None,
    request_id: str = "",
    email: str | None = None,
    display_name: str | None = None,
    current_password: str | None = None,
    ip: str = "",
) -> User:
    """Change profile fields; publishes user.updated naming the fields that really changed (if any).

    A new email needs the current password, checked and throttled like a login (users.throttling): a stolen
    session must not be enough to move the account to another address. The password is checked before the new
    address is, so a wrong password tells nothing about it. The new address is unconfirmed, and a confirmation
    mail goes to it.
    """
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        changed: list[str] = []
        if email is not None and normalize_email(email) != user.email:
            _current_password_check(user, current_password, ip=ip, missing=CURRENT_PASSWORD_REQUIRED)
            user.email = normalize_email(email)
            user.email_confirmed_at = None
            changed.append("email")
        if display_name is not None and display_name.strip() != user.display_name:
            user.display_name = display_name.strip()
            changed.append("display_name")
        if not changed:
            return user
        user.full_clean(exclude=["password"], validate_unique=False, validate_constraints=False)
        also = ["email_confirmed_at"] if "email" in changed else []
        try:
            with transaction.atomic():
                user.save(update_fields=[*changed, *also, "updated_at"])
        except IntegrityError as exc:
            if _email_taken(exc):
                raise ValidationError({"email": [EMAIL_TAKEN]}) from None
            raise
        user_event_record(user, UserEvent.Kind.UPDATED, actor=actor, request_id=request_id, data={"changed": changed})
        publish(Topic.USER_EVENTS, "user.updated", str(user.id), {"user_id": user.id, "changed": changed})
        if "email" in changed and account_mail_allowed(email=user.email):
            tasks.send_email_confirmation.delay_on_commit(str(user.id))
    return user


def user_change_password(
    *, user_id: uuid.UUID, current_password: str, new_password: str, ip: str, request_id: str = ""
) -> TokenPair:
    """Set a new password, end every session of the account and start a fresh one for this client.

    The current password is checked and throttled like a login (users.throttling): wrong ones count.
    """
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        _current_password_check(user, current_password, ip=ip)
        _validate_password(new_password, user, field="new_password")
        user.set_password(new_password)
        user.save(update_fields=["password", "updated_at"])
        user_event_record(user, UserEvent.Kind.PASSWORD_CHANGED, actor=user, request_id=request_id)
        # Consumers learn that the account changed, never anything about the secret itself.
        publish(Topic.USER_EVENTS, "user.updated", str(user.id), {"user_id": user.id, "changed": ["password"]})
        sessions_revoke_all(user, TokenFamily.Revocation.PASSWORD_CHANGED)
        return session_start(user)


def user_deactivate(*, user_id: uuid.UUID, actor: User | None, request_id: str = "") -> User:
    """Close an account: no more logins or refreshes; publishes user.deactivated once (idempotent)."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        if not user.is_active:
            return user
        user.is_active = False
        user.save(update_fields=["is_active", "updated_at"])
        user_event_record(user, UserEvent.Kind.DEACTIVATED, actor=actor, request_id=request_id)
        publish(Topic.USER_EVENTS, "user.deactivated", str(user.id), {"user_id": user.id})
        sessions_revoke_all(user, TokenFamily.Revocation.DEACTIVATED)
    return user


def _current_password_check(user: User, password: str | None, *, ip: str, missing: str = "") -> None:
    """The caller proves they know the account's password; counted against the same limits as logins."""
    if not password:
        raise ValidationError({"current_password": [missing or CURRENT_PASSWORD_WRONG]})
    password_attempt_begin(ip=ip, email=user.email)
    if not user.check_password(password):
        raise ValidationError({"current_password": [CURRENT_PASSWORD_WRONG]})
    password_attempt_succeeded(ip=ip, email=user.email)


def _validate_password(password: str, user: User, *, field: str) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from None


def _email_taken(exc: IntegrityError) -> bool:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
    return "email" in constraint
