"""Celery tasks of user_svc: thin, each calls one service."""

from __future__ import annotations

from celery import shared_task

from users import services


@shared_task(ignore_result=True)
def purge_expired_tokens() -> int:
    return services.token_purge_expired()
