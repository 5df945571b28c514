"""The platform's accounts: a UUID-keyed user identified by a case-insensitive email, its login sessions and its
API keys."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower, Now
from django.utils import timezone


def normalize_email(email: str) -> str:
    """The one spelling of an address we store and look up: trimmed and lower-cased as a whole."""
    return BaseUserManager.normalize_email(email.strip()).lower()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        # Logins and the admin find an account whatever the case the address is typed in.
        return self.get(email=normalize_email(username or ""))

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    # Set when the owner of the address followed the mail sent to it; cleared when the address changes. Logins do
    # not wait for it (a client registers and logs in at once); it says whether the address is known to be theirs.
    email_confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        db_table = "users"
        constraints = [models.UniqueConstraint(Lower("email"), name="users_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


class UserEventKind(models.TextChoices):
    REGISTERED = "registered"
    LOGGED_IN = "logged_in"
    UPDATED = "updated"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event kind, not a secret
    DEACTIVATED = "deactivated"
    # Someone asked to register the address this account already has (its owner was told by mail).
    REGISTRATION_ATTEMPTED = "registration_attempted"
    EMAIL_CONFIRMED = "email_confirmed"
    # A rotated refresh token came back: its session (token family) was ended for whoever held a copy.
    REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105 - an event kind, not a secret
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"


class UserEvent(models.Model):
    """One change in an account's life, with who made it and the request that did (the audit trail)."""

    Kind = UserEventKind

    id = models.BigAutoField(primary_key=True)
    # PROTECT: an account with history is deactivated, never deleted, so the trail outlives it.
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=32, choices=UserEventKind.choices)
    # Who made the change: the user, an operator, or nobody (a command or the system).
    actor = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    request_id = models.CharField(max_length=128, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = "user_events"
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["user", "-occurred_at"], name="user_events_user_time")]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=UserEventKind.values), name="user_events_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.user_id} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class TokenFamilyRevocation(models.TextChoices):
    LOGOUT = "logout"
    REUSED = "reused"  # a rotated refresh token of the family was presented again
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a secret
    DEACTIVATED = "deactivated"


class TokenFamily(models.Model):
    """One login's session: every refresh token rotated from that login carries the family's id (claim `fam`).

    Revoking the family ends all of them at once, those issued and those not yet issued: that is what makes a
    stolen refresh token that was already used worthless to both its holders.
    """

    Revocation = TokenFamilyRevocation

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="token_families")
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    # When the newest refresh token of the family expires: past it the family can never be used again (purged).
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, choices=TokenFamilyRevocation.choices, blank=True, default="")

    class Meta:
        db_table = "token_families"
        indexes = [
            models.Index(fields=["user"], condition=models.Q(revoked_at__isnull=True), name="token_families_live"),
            models.Index(fields=["expires_at"], name="token_families_expiry"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(revoked_at__isnull=True, revoked_reason="")
                | models.Q(revoked_at__isnull=False, revoked_reason__in=TokenFamilyRevocation.values),
                name="token_families_revocation_has_a_reason",
            ),
        ]

    def __str__(self) -> str:
        state = f"revoked ({self.revoked_reason})" if self.revoked_at else "live"
        return f"session {self.id} of {self.user_id}, {state}"


class ApiKeyPermission(models.TextChoices):
    READ = "read"  # every key: account, orders, trades
    TRADE = "trade"  # placing and cancelling orders


API_KEY_LENGTH = 64  # Binance's: 64 letters and digits, for the key and for its secret


class ApiKey(models.Model):
    """A key pair for Binance-style SIGNED requests: `api_key` names it (the X-MBX-APIKEY header), the secret signs
    (HMAC-SHA256). The secret is shown once, at creation, and stored only encrypted (users.encryption): the check
    of a signature needs it in clear, so it cannot be hashed. Revoking keeps the row (the trail) and erases the
    secret, so a revoked key can never sign again, whatever a later bug does.
    """

    Permission = ApiKeyPermission

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=64)
    api_key = models.CharField(max_length=API_KEY_LENGTH, unique=True)  # unique: its index is the lookup
    secret_ciphertext = models.TextField(blank=True, default="")  # a Fernet token; "" once revoked
    # Every key reads; trading is granted only when asked for (Binance's default: "Enable Reading" only).
    can_trade = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    last_used_at = models.DateTimeField(null=True, blank=True)  # to the minute (API_KEY_LAST_USED_RESOLUTION_S)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_keys"
        indexes = [
            models.Index(
                fields=["user", "-created_at"], condition=models.Q(revoked_at__isnull=True), name="api_keys_live"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(api_key__regex=rf"^[A-Za-z0-9]{{{API_KEY_LENGTH}}}$"), name="api_keys_key_format"
            ),
            models.CheckConstraint(
                condition=models.Q(revoked_at__isnull=True) & ~models.Q(secret_ciphertext="")
                | models.Q(revoked_at__isnull=False, secret_ciphertext=""),
                name="api_keys_secret_until_revoked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.key_prefix}) of {self.user_id}"

    @property
    def key_prefix(self) -> str:
        return f"{self.api_key[:8]}..."

    @property
    def permissions(self) -> list[str]:
        granted = [ApiKeyPermission.READ.value]
        if self.can_trade:
            granted.append(ApiKeyPermission.TRADE.value)
        return granted
