"""The account's history: one UserEvent per change, with who made it and the request that did."""

from __future__ import annotations

from typing import Any

from users.models import User, UserEvent


def user_event_record(
    user: User, kind: str, *, actor: User | None, request_id: str, data: dict[str, Any] | None = None
) -> UserEvent:
    return UserEvent.objects.create(user=user, kind=kind, actor=actor, request_id=request_id[:128], data=data or {})
