"""The platform's accounts: a UUID-keyed user identified by a case-insensitive email."""

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
